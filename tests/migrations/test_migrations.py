"""Migrations: upgrade an empty file, models and migrations agree, round trip; the audit views;
the pragmas and read-only readers of ``engine.store.Database``."""

from __future__ import annotations

import pathlib
import sqlite3
import subprocess
import sys
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine

import migrations
from engine.store import Database, JournalContext, alembic_config
from engine.store.database import BUSY_TIMEOUT_MS
from models import metadata

REPO = pathlib.Path(__file__).resolve().parents[2]
TABLES = {"containers", "history", "operations", "operation_steps", "images", "api_requests",
          "config_generations"}
VIEWS = {
    "container_history": ["container_id", "container_name", "seq", "event", "from_state",
                          "to_state", "step", "outcome", "error", "actor", "request_id", "at"],
    "start_attempts": ["attempt_id", "container_id", "container_name", "started_at",
                       "finished_at", "outcome", "failed_step", "error", "exit_code",
                       "duration_ms"],
    "operation_step_log": ["operation_id", "operation", "container_id", "container_name",
                           "step_index", "kind", "step", "status", "started_at", "finished_at",
                           "duration_ms", "error"],
}


@pytest.fixture
def db_file(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "berth.db"


@pytest.fixture
def sql_engine(db_file: pathlib.Path) -> Iterator[Engine]:
    built = create_engine(f"sqlite:///{db_file}")
    yield built
    built.dispose()


def migrate(sql_engine: Engine, revision: str) -> None:
    with sql_engine.connect() as connection:
        if revision == "base":
            command.downgrade(alembic_config(connection), revision)
        else:
            command.upgrade(alembic_config(connection), revision)
        connection.commit()


def schema(db_file: pathlib.Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(db_file) as connection:
        return connection.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
            "ORDER BY type, name"
        ).fetchall()


def names(db_file: pathlib.Path, kind: str) -> set[str]:
    return {name for type_, name, _ in schema(db_file) if type_ == kind}


def schema_diff(sql_engine: Engine) -> list[object]:
    """What ``alembic check`` compares: the models against the migrated database."""
    with sql_engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        return list(compare_metadata(context, metadata))


def test_upgrade_an_empty_file_to_head(sql_engine: Engine, db_file: pathlib.Path) -> None:
    migrate(sql_engine, "head")
    assert names(db_file, "table") == TABLES | {"alembic_version"}
    assert names(db_file, "view") == set(VIEWS)
    with sql_engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    # migrations.HEAD lets the engine skip Alembic on an up-to-date database: it must name
    # the newest script.
    newest = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert current == migrations.HEAD == newest


def test_models_and_migrations_agree(sql_engine: Engine) -> None:
    migrate(sql_engine, "head")
    assert schema_diff(sql_engine) == []


def test_alembic_command_line(db_file: pathlib.Path) -> None:
    def alembic(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "alembic", "-x", f"db={db_file}", *args],
                              cwd=REPO, capture_output=True, text=True, check=False)

    upgraded = alembic("upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr
    assert names(db_file, "table") == TABLES | {"alembic_version"}
    assert names(db_file, "view") == set(VIEWS)
    checked = alembic("check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "No new upgrade operations detected" in checked.stdout + checked.stderr


def test_downgrade_and_upgrade_round_trip(sql_engine: Engine, db_file: pathlib.Path) -> None:
    migrate(sql_engine, "head")
    before = schema(db_file)
    migrate(sql_engine, "base")
    assert names(db_file, "table") == {"alembic_version"}
    assert names(db_file, "view") == set()
    assert names(db_file, "index") == set()
    migrate(sql_engine, "head")
    assert schema(db_file) == before
    assert schema_diff(sql_engine) == []


@pytest.mark.parametrize("view", list(VIEWS))
def test_audit_views_have_the_documented_columns(sql_engine: Engine, db_file: pathlib.Path,
                                                 view: str) -> None:
    migrate(sql_engine, "head")
    with sqlite3.connect(db_file) as connection:
        present = [row[1] for row in connection.execute(f"PRAGMA table_info({view})")]
        connection.execute(f"SELECT * FROM {view}").fetchall()  # the view compiles
    missing = [column for column in VIEWS[view] if column not in present]
    assert missing == []


# -- engine.store.Database -------------------------------------------------------------------
@pytest.fixture
def database(db_file: pathlib.Path) -> Iterator[Database]:
    opened = Database(str(db_file))
    yield opened
    opened.close()


def test_database_migrates_a_fresh_file(database: Database, db_file: pathlib.Path) -> None:
    assert names(db_file, "table") == TABLES | {"alembic_version"}
    assert names(db_file, "view") == set(VIEWS)


def test_database_pragmas(database: Database, db_file: pathlib.Path) -> None:
    with sqlite3.connect(db_file) as other:  # journal_mode is stored in the file
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    connection = database._write_connection
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert connection.execute("PRAGMA foreign_keys").fetchone() == (1,)
    assert connection.execute("PRAGMA busy_timeout").fetchone() == (BUSY_TIMEOUT_MS,)
    assert BUSY_TIMEOUT_MS > 0
    with database.read() as reader:
        assert reader._connection.execute("PRAGMA busy_timeout").fetchone()[0] > 0


def test_foreign_keys_are_enforced(database: Database) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"), database.write() as writer:
        writer.begin_operation("no-such-container", "start", "in_progress", JournalContext(), 0)


def test_readers_are_read_only(database: Database) -> None:
    with database.read() as reader, pytest.raises(sqlite3.OperationalError,
                                                   match=r"readonly|read-only|read only"):
        reader._connection.execute(
            "INSERT INTO containers (id, name, state, version, last_seq, image, config, "
            "created_at, exit_code, error, pid, oom_killed, restart_count, "
            "has_been_started_before, has_been_manually_stopped, auto_remove, restart_policy, "
            "restart_max_retries, runtime) "
            "VALUES ('x', 'x', 'created', 1, 1, '', '{}', 0, 0, '', 0, 0, 0, 0, 0, 0, 'no', 0, '')"
        )
    with database.read() as reader:
        assert reader.containers(include_removed=True) == []


def test_image_names_take_dockers_familiar_form(sql_engine: Engine, db_file: pathlib.Path
                                                ) -> None:
    """Names an older version stored as given (``docker.io/library/x``) would be found by no
    lookup since references take the familiar form: 0006 renames them; one whose familiar
    name a later import took goes, its image kept dangling if nothing else names it."""
    migrate(sql_engine, "0005")
    rows = [("docker.io/library/old:1", "sha256:" + "a" * 64),
            ("library/plain:latest", "sha256:" + "b" * 64),
            ("docker.io/team/app:2", "sha256:" + "c" * 64),
            ("docker.io/library/taken:latest", "sha256:" + "d" * 64),
            ("taken:latest", "sha256:" + "e" * 64),
            ("localhost:5000/library/x:latest", "sha256:" + "f" * 64),
            ("docker.io/library/sha256:v2", "sha256:" + "8" * 64),  # its familiar name is
            ("sha256:" + "9" * 64, "sha256:" + "9" * 64)]
    with sqlite3.connect(db_file) as connection:
        connection.executemany("INSERT INTO images VALUES (?, ?, 1, 2)", rows)
    migrate(sql_engine, "head")
    with sqlite3.connect(db_file) as connection:
        stored = dict(connection.execute("SELECT reference, digest FROM images"))
    assert stored == {"old:1": "sha256:" + "a" * 64, "plain:latest": "sha256:" + "b" * 64,
                      "team/app:2": "sha256:" + "c" * 64, "taken:latest": "sha256:" + "e" * 64,
                      "sha256:" + "d" * 64: "sha256:" + "d" * 64,  # dangling now
                      "localhost:5000/library/x:latest": "sha256:" + "f" * 64,
                      "docker.io/library/sha256:v2": "sha256:" + "8" * 64,  # reserved: kept
                      "sha256:" + "9" * 64: "sha256:" + "9" * 64}
