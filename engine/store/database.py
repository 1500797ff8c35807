"""The SQLite database: opening, migrating and the two kinds of transaction.

Contract:
* WAL journal, a busy timeout, foreign keys on.
* Every write runs in ``BEGIN IMMEDIATE`` (``Database.write``): the write lock is taken up front,
  so a transaction never fails half-way while upgrading a read lock to a write lock. Writers of
  this process are also serialized by a mutex, so they queue in Python instead of sleeping in
  SQLite's busy handler; the busy timeout covers other processes (admin SQL, a second daemon).
* Readers use read-only connections, one per thread (``Database.read``), in deferred
  transactions: in WAL mode they see a consistent snapshot and never block the writer.
* Durability: ``synchronous=NORMAL`` by default. In WAL mode a commit is then durable against a
  crash of the daemon process (the case the journal exists for: the kernel keeps the written WAL),
  but the last commits can be lost on power loss or a kernel crash; the database stays
  consistent. Everything those commits described lives in volatile places too (mounts, network
  namespaces, runc's state under /run), so after a reboot recovery reconciles the journal with
  what is really there. ``durability="full"`` (``BERTH_DB_SYNC=full``) fsyncs every commit.
* The WAL is checkpointed every 4000 pages (16 MiB) instead of SQLite's 1000: hot pages (the
  containers row, the newest history page) are then copied once per checkpoint rather than four
  times. Measured on these machines (commit time per start+stop cycle): 1000 pages 0.77-0.90 ms,
  4000 pages 0.56-0.57 ms, 20000 pages 0.58-0.59 ms; a background checkpoint thread was worse
  (1.4 ms: its fsync stalls the writer's WAL appends).
* The schema is migrated to the newest Alembic revision on open, through SQLAlchemy.
  Statements then run on the DBAPI connections (see ``engine.store.statement``).
"""

from __future__ import annotations

import contextlib
import pathlib
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any, Literal, cast

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import NullPool, StaticPool

import migrations
from engine.errors import InvalidParameter, System
from engine.store.reader import Reader
from engine.store.writer import Writer

Durability = Literal["normal", "full", "off"]
MEMORY = ":memory:"

BUSY_TIMEOUT_MS = 5000
WAL_AUTOCHECKPOINT_PAGES = 4000


def alembic_config(connection: Connection | None = None) -> Any:
    """An Alembic configuration for the packaged migrations, bound to ``connection``."""
    from alembic.config import Config

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
        f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}",
        f"PRAGMA synchronous={durability.upper()}",
        f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
        "PRAGMA foreign_keys=ON",
    ]


def _install_hooks(engine: Engine, begin_sql: str, pragmas: list[str]) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let the program, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql(begin_sql)


class _WriteTransaction:
    """``Database.write()``: a plain class, not a generator context manager (it runs six
    times per container start)."""

    __slots__ = ("_database",)

    def __init__(self, database: Database) -> None:
        self._database = database

    def __enter__(self) -> Writer:
        database = self._database
        database._write_lock.acquire()
        try:
            database._write_connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            database._write_lock.release()
            raise System(f"database: cannot begin a write transaction: {exc}") from exc
        return database._writer

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 _traceback: Any) -> None:
        database = self._database
        connection = database._write_connection
        try:
            if kind is not None:
                connection.execute("ROLLBACK")
                return
            try:
                connection.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
                raise System(f"database: commit failed: {exc}") from exc
            database.commits += 1
        finally:
            database._write_lock.release()


def _revision(connection: sqlite3.Connection) -> str | None:
    """The database's Alembic revision, or None before the first migration."""
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    return str(row[0]) if row else None


class Database:
    """One SQLite database file (or an in-memory one), migrated, with write and read access."""

    def __init__(self, path: str, *, durability: Durability = "normal") -> None:
        if durability not in ("normal", "full", "off"):
            raise InvalidParameter(f"invalid database durability {durability!r}")
        self.path = path
        self.memory = path == MEMORY
        self.commits = 0  # write transactions committed (read by the benchmarks)
        self._write_lock = threading.Lock()
        url = "sqlite+pysqlite://" if self.memory else f"sqlite+pysqlite:///{path}"
        self._write_engine = create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        _install_hooks(self._write_engine, "BEGIN IMMEDIATE",
                       _pragmas_for(durability, memory=self.memory))
        try:
            self._write_proxy = self._write_engine.raw_connection()
            if _revision(cast(sqlite3.Connection, self._write_proxy.driver_connection)) != (
                    migrations.HEAD):
                self._migrate()
        except Exception as exc:
            self._write_engine.dispose()
            raise System(f"cannot open database {path}: {exc}") from exc
        self._write_connection = cast(sqlite3.Connection, self._write_proxy.driver_connection)
        self._writer = Writer(self._write_connection)
        self._transaction = _WriteTransaction(self)
        self._local = threading.local()
        self._readers: list[tuple[threading.Thread, Any]] = []  # (its thread, connection)
        self._readers_guard = threading.Lock()
        self._read_engine: Engine | None = None
        if not self.memory:
            self._read_engine = create_engine(
                f"sqlite+pysqlite:///file:{path}?mode=ro&uri=true",
                connect_args={"check_same_thread": False},
                poolclass=NullPool,
            )
            _install_hooks(self._read_engine, "BEGIN",
                           [f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}", "PRAGMA query_only=1"])

    def _migrate(self) -> None:
        from alembic import command

        with self._write_engine.connect() as connection:
            command.upgrade(alembic_config(connection), "head")
            connection.commit()

    def write(self) -> _WriteTransaction:
        """A ``BEGIN IMMEDIATE`` transaction (``with db.write() as writer:``); commits on
        success, rolls back on error. Raises System if the database refuses the transaction or
        the commit."""
        return self._transaction

    @contextlib.contextmanager
    def read(self, *, snapshot: bool = True) -> Iterator[Reader]:
        """Reads on this thread's read-only connection; with ``snapshot`` (the default) in
        one transaction, so that several queries see the same state. A single query is atomic
        by itself and needs none."""
        if self._read_engine is None:
            with self._write_lock:
                yield Reader(self._write_connection)
            return
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._open_reader(self._read_engine)
        if not snapshot:
            yield Reader(connection)
            return
        connection.execute("BEGIN")
        try:
            yield Reader(connection)
        finally:
            connection.execute("ROLLBACK")

    def _open_reader(self, engine: Engine) -> sqlite3.Connection:
        # Opened through SQLAlchemy's engine (its connect hook sets the pragmas) and kept per
        # thread: checking a connection out of a pool for every read cost more than the read.
        # The connections of threads that have ended (an exit monitor's, a request's) are
        # closed here: kept, they cost two descriptors a container for the daemon's life.
        proxy = engine.raw_connection()
        connection = cast(sqlite3.Connection, proxy.driver_connection)
        self._local.connection = connection
        with self._readers_guard:
            ended = [entry for entry in self._readers if not entry[0].is_alive()]
            self._readers = [entry for entry in self._readers if entry[0].is_alive()]
            self._readers.append((threading.current_thread(), proxy))
        for _thread, stale in ended:
            with contextlib.suppress(Exception):
                stale.close()
        return connection

    def close(self) -> None:
        with self._readers_guard:
            for _thread, proxy in self._readers:
                with contextlib.suppress(Exception):
                    proxy.close()
            self._readers.clear()
        self._write_proxy.close()
        self._write_engine.dispose()
        if self._read_engine is not None:
            self._read_engine.dispose()
