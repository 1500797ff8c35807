"""32 API clients creating, starting and removing containers for 30 s against a real daemon
process: no "database is locked", no internal error, and the daemon keeps serving."""

from __future__ import annotations

import pathlib

from engine.testing.load import run_clients
from tests.cli.conftest import Cli, start_daemon, stop_daemon

CLIENTS = 32
SECONDS = 30.0


def test_thirty_two_clients_for_thirty_seconds(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "root"
    daemon = start_daemon(root, backend="fake")
    try:
        report = run_clients(f"unix://{root / 'berth.sock'}", clients=CLIENTS, seconds=SECONDS)
        print(f"{CLIENTS} clients: {report.operations} operations in {report.seconds:.1f} s, "
              f"{report.per_second:.0f} ops/s")
        assert report.failures == []
        assert report.operations > 0
        assert not any("locked" in message for _, message in report.failures)
        cli = Cli(root)
        assert cli("version").returncode == 0
        assert cli.ok("ps", "-a", "--format", "json") == ""
    finally:
        stop_daemon(daemon)
