"""Alembic environment.

The program passes its own connection in ``config.attributes["connection"]`` (the daemon, the
CLI and the tests all migrate that way). The ``alembic`` command line gets a connection to the
database named by ``-x db=PATH`` or by ``sqlalchemy.url`` in alembic.ini.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from models import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    db_path = context.get_x_argument(as_dictionary=True).get("db")
    url = f"sqlite:///{db_path}" if db_path else config.get_main_option("sqlalchemy.url")
    assert url, "no database: pass -x db=PATH"
    engine = create_engine(url)
    with engine.connect() as new_connection:
        _run(new_connection)
        new_connection.commit()
    engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        render_as_batch=True,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    _run_online()
