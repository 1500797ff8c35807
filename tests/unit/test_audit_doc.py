"""Every ```sql query of docs/audit.md runs in the stock sqlite3 shell on a real journal."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

import pytest

from engine.errors import Unknown
from engine.service import Engine
from engine.testing import FakeHost
from tests.conftest import make_config

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "audit.md"
QUERIES = re.findall(r"^```sql\n(.*?)^```$", DOC.read_text(), flags=re.MULTILINE | re.DOTALL)
PLACEHOLDER = "'web'"
NAME = "audit-demo"
MAY_BE_EMPTY = "-- may be empty"


@pytest.fixture
def journal(engine: Engine, fake_host: FakeHost) -> str:
    """A journal with a successful start, a stop and a failed start of ``NAME``."""
    engine.create(make_config(NAME))
    engine.start(NAME)
    engine.stop(NAME, timeout=0)
    fake_host.faults.add("acquire:network", RuntimeError("boom"))
    with pytest.raises(Unknown, match="boom"):
        engine.start(NAME)
    return engine.saga.db.path


def sqlite3_shell(database: str, query: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("sqlite3")
    assert executable is not None, "the sqlite3 shell is not installed"
    return subprocess.run([executable, "-readonly", "-bail", database], input=query,
                          capture_output=True, text=True, check=False)


def test_the_doc_has_example_queries() -> None:
    assert 6 <= len(QUERIES) <= 8
    assert sum(PLACEHOLDER in query for query in QUERIES) >= 2


@pytest.mark.parametrize("query", QUERIES, ids=[f"query{n}" for n in range(1, len(QUERIES) + 1)])
def test_query_runs_in_the_sqlite3_shell(journal: str, query: str) -> None:
    # The engine is still open: this reads the journal while the "daemon" runs.
    result = sqlite3_shell(journal, query.replace(PLACEHOLDER, f"'{NAME}'"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    rows = result.stdout.splitlines()
    if MAY_BE_EMPTY not in query:
        assert rows, f"no rows for:\n{query}"


def test_readonly_shell_cannot_write(journal: str) -> None:
    result = sqlite3_shell(journal, "DELETE FROM history;")
    assert result.returncode != 0
    assert "readonly" in result.stderr


def test_the_in_flight_query_names_the_step_a_crashed_start_reached(tmp_path: pathlib.Path
                                                                    ) -> None:
    """A crash while the rootfs mounts leaves the network and spec rows pending (planned with
    its intent): the query names the step the start reached, not a planned one (helper-49)."""
    from engine.composition import DB_FILE
    from tests.crash.test_crash_recovery import drive

    in_flight = next(query for query in QUERIES if "last_step" in query)
    assert drive(tmp_path, "create") == 0
    assert drive(tmp_path, "start", "start.mount_rootfs=crash") == 137
    result = sqlite3_shell(str(tmp_path / DB_FILE), in_flight)  # as the crash left it
    assert result.returncode == 0, result.stderr
    (row,) = result.stdout.splitlines()
    assert row.split("|")[-1] == "mount_rootfs (running)", row
