"""The SQLite database: opening, migrating and the two kinds of transaction.

Contract:
* WAL journal, a busy timeout, foreign keys on.
* Every write runs in ``BEGIN IMMEDIATE`` (``Database.write``): the write lock is taken up front,
  so a transaction never fails half-way while upgrading a read lock to a write lock. Writers of
  this process are also serialized by a mutex, so they queue in Python instead of sleeping in
  SQLite's busy handler; the busy timeout covers other processes (admin SQL, a second daemon).
* Readers use separate read-only connections (``Database.read``), in deferred transactions:
  in WAL mode they see a consistent snapshot and never block the writer.
* Durability: ``synchronous=NORMAL`` by default. In WAL mode a commit is then durable against a
  crash of the daemon process (the case the journal exists for: the kernel keeps the written WAL),
  but the last commits can be lost on power loss or a kernel crash; the database stays
  consistent. Everything those commits described lives in volatile places too (mounts, network
  namespaces, runc's state under /run), so after a reboot recovery reconciles the journal with
  what is really there. ``durability="full"`` (``BERTH_DB_SYNC=full``) fsyncs every commit.
* The schema is migrated to the newest Alembic revision on open.
"""

from __future__ import annotations

import contextlib
import pathlib
import threading
from collections.abc import Iterator
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import StaticPool

import migrations
from engine.errors import InvalidParameter, System
from engine.store.reader import Reader
from engine.store.writer import Writer

Durability = Literal["normal", "full", "off"]
MEMORY = ":memory:"

BUSY_TIMEOUT_MS = 5000


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for the packaged migrations, bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(pathlib.Path(migrations.__file__).parent))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _pragmas_for(durability: Durability, *, memory: bool) -> list[str]:
    if memory:
        return ["PRAGMA journal_mode=OFF", "PRAGMA synchronous=OFF", "PRAGMA foreign_keys=ON"]
    return [
        "PRAGMA journal_mode=WAL",
        f"PRAGMA synchronous={durability.upper()}",
        f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
        "PRAGMA foreign_keys=ON",
    ]


def _install_transaction_hooks(engine: Engine, begin_sql: str, pragmas: list[str]) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql(begin_sql)


class Database:
    """One SQLite database file (or an in-memory one), migrated, with write and read access."""

    def __init__(self, path: str, *, durability: Durability = "normal") -> None:
        if durability not in ("normal", "full", "off"):
            raise InvalidParameter(f"invalid database durability {durability!r}")
        self.path = path
        self.memory = path == MEMORY
        self._write_lock = threading.Lock()
        pragmas = _pragmas_for(durability, memory=self.memory)
        url = "sqlite+pysqlite://" if self.memory else f"sqlite+pysqlite:///{path}"
        self._write_engine = create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        _install_transaction_hooks(self._write_engine, "BEGIN IMMEDIATE", pragmas)
        try:
            self._write_connection = self._write_engine.connect()
            self._migrate()
        except Exception as exc:
            self._write_engine.dispose()
            raise System(f"cannot open database {path}: {exc}") from exc
        self._writer = Writer(self._write_connection)
        self._read_engine: Engine | None = None
        if not self.memory:
            self._read_engine = create_engine(
                f"sqlite+pysqlite:///file:{path}?mode=ro&uri=true",
                connect_args={"check_same_thread": False},
                pool_size=8,
                max_overflow=24,
            )
            _install_transaction_hooks(
                self._read_engine,
                "BEGIN",
                [f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}", "PRAGMA query_only=1"],
            )

    def _migrate(self) -> None:
        command.upgrade(alembic_config(self._write_connection), "head")
        self._write_connection.commit()

    @contextlib.contextmanager
    def write(self) -> Iterator[Writer]:
        """A ``BEGIN IMMEDIATE`` transaction; commits on success, rolls back on error."""
        with self._write_lock:
            connection = self._write_connection
            connection.begin()
            try:
                yield self._writer
            except BaseException:
                connection.rollback()
                raise
            connection.commit()

    @contextlib.contextmanager
    def read(self) -> Iterator[Reader]:
        """A read-only snapshot transaction."""
        if self._read_engine is None:
            with self._write_lock:
                connection = self._write_connection
                connection.begin()
                try:
                    yield Reader(connection)
                finally:
                    connection.rollback()
            return
        with self._read_engine.connect() as connection:
            connection.begin()
            try:
                yield Reader(connection)
            finally:
                connection.rollback()

    def close(self) -> None:
        self._write_connection.close()
        self._write_engine.dispose()
        if self._read_engine is not None:
            self._read_engine.dispose()
