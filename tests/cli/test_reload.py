"""Reload through the API and on SIGHUP against a real daemon; an invalid configuration is
refused, the running one stays and the daemon keeps serving."""

from __future__ import annotations

import json
import pathlib
import signal
import time

from tests.cli.conftest import Cli, start_daemon, stop_daemon


def generation(cli: Cli) -> int:
    return int(json.loads(cli.ok("info", "--format", "json"))["configGeneration"])


def test_reload_api_and_sighup(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"runtimes": {"wrapped": {"path": "/bin/true",
                                                           "runtimeArgs": ["--a"]}}}))
    daemon = start_daemon(root, "--config", str(config), backend="fake")
    cli = Cli(root)
    try:
        assert generation(cli) == 1
        info = json.loads(cli.ok("info", "--format", "json"))
        wrapped = {r["name"]: r for r in info["runtimes"]}["wrapped"]
        assert wrapped["binary"].startswith(str(root / "runtimes" / "wrapped."))
        assert wrapped["binary"].endswith(wrapped["digest"])
        for broken in ("{not json", '{"bogus": 1}', '{"runtimes": {"runc": {"path": "/x"}}}',
                       '{"runtimes": {"k": {"runtimeType": "io.containerd.kata.v2"}}}'):
            config.write_text(broken)
            refused = cli("reload")
            assert refused.returncode == 1
            assert refused.stderr.startswith("Error response from daemon: ")
            assert generation(cli) == 1  # the running configuration stays
        config.write_text(json.dumps({"runtimes": {"wrapped": {"path": "/bin/true"}}}))
        assert cli.ok("reload").strip() == "configuration generation 2"
        config.write_text(json.dumps({"experimental": True}))
        daemon.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while generation(cli) != 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert generation(cli) == 3
        assert daemon.poll() is None
    finally:
        stop_daemon(daemon)
