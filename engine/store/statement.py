"""SQL compiled once from the models, executed on the DBAPI connection.

SQLAlchemy owns the schema (``models``), the migrations and the text of every statement; the
hot path runs that compiled text directly on the sqlite3 connection. Building and compiling a
Core statement on every call cost ~40 us per statement here, about five times the statement
itself, and a start writes ~25 rows (see bench/journal_overhead.py).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Table, and_, bindparam, insert, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql import ClauseElement

_DIALECT = sqlite.dialect(paramstyle="named")


def compile_sql(statement: ClauseElement) -> str:
    return str(statement.compile(dialect=_DIALECT, compile_kwargs={"render_postcompile": True}))


def insert_sql(table: Table, *, skip: Iterable[str] = ()) -> str:
    """``INSERT INTO t (c...) VALUES (:c...)`` over every column but ``skip``."""
    skipped = set(skip)
    columns = [column.name for column in table.columns if column.name not in skipped]
    return compile_sql(insert(table).values({name: bindparam(name) for name in columns}))


def positional_insert_sql(table: Table, columns: Iterable[str]) -> str:
    """``INSERT INTO t (c...) VALUES (?, ...)``: rows bound as tuples, in ``columns`` order
    (binding by name costs a lookup per column per row)."""
    names = list(columns)
    unknown = set(names) - {column.name for column in table.columns}
    assert not unknown, unknown
    return (f"INSERT INTO {table.name} ({', '.join(names)}) "
            f"VALUES ({', '.join('?' for _ in names)})")


def select_sql(table: Table, where: Mapping[str, str], *, order_by: Iterable[str] = ()
               ) -> str:
    """``SELECT * FROM t WHERE col = :param AND ...`` (``where`` maps column -> parameter)."""
    statement = select(table)
    if where:
        statement = statement.where(
            and_(*(table.c[column] == bindparam(param) for column, param in where.items()))
        )
    for column in order_by:
        statement = statement.order_by(table.c[column])
    return compile_sql(statement)


@functools.lru_cache(maxsize=512)
def update_sql(table: Table, columns: tuple[str, ...], where: tuple[str, ...]) -> str:
    """``UPDATE t SET c = :c ... WHERE w = :_w ...`` (where-parameters are prefixed ``_``)."""
    statement = (
        update(table)
        .where(and_(*(table.c[name] == bindparam(f"_{name}") for name in where)))
        .values({name: bindparam(name) for name in columns})
    )
    return compile_sql(statement)


_ENCODER = json.JSONEncoder(separators=(",", ":"))  # json.dumps with options builds one per call


def to_json(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else _ENCODER.encode(dict(value))


def from_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)
