"""A real ``berth daemon`` subprocess (runc backend) on a temporary root, driven through the real
``berth`` executable."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.integration.conftest import build_busybox_rootfs, leaks, stop_supervisor

BERTH = shutil.which("berth") or "berth"


class Cli:
    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.environment = {**os.environ, "BERTH_ROOT": str(root)}
        self.environment.pop("BERTH_HOST", None)

    def __call__(self, *arguments: str, timeout: float = 60
                 ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([BERTH, *arguments], env=self.environment, capture_output=True,
                              text=True, timeout=timeout, check=False)

    def ok(self, *arguments: str) -> str:
        result = self(*arguments)
        assert result.returncode == 0, (arguments, result.stdout, result.stderr)
        return result.stdout


def start_daemon(root: pathlib.Path, *extra: str, backend: str = "runc"
                 ) -> subprocess.Popen[str]:
    environment = {**os.environ, "BERTH_ROOT": str(root)}
    daemon = subprocess.Popen([BERTH, "daemon", "--backend", backend, *extra], env=environment,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while not (root / "berth.sock").exists():
        assert daemon.poll() is None, daemon.stdout.read() if daemon.stdout else ""
        assert time.monotonic() < deadline, "the daemon did not start"
        time.sleep(0.05)
    return daemon


def stop_daemon(daemon: subprocess.Popen[str]) -> None:
    daemon.terminate()
    try:
        daemon.wait(20)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    root = tmp_path_factory.mktemp("cli") / "root"
    image = build_busybox_rootfs(tmp_path_factory.mktemp("image") / "rootfs")
    daemon = start_daemon(root)
    cli = Cli(root)
    try:
        cli.ok("import", str(image), "busybox")
        yield cli
        for container in cli.ok("ps", "-aq", "--no-trunc").split():
            cli("rm", "-f", container)
        assert daemon.poll() is None, "the daemon died during the tests"
    finally:
        stop_daemon(daemon)
        stop_supervisor(root)
    assert leaks(root) == {}
