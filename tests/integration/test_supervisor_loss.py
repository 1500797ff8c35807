"""A supervisor that dies (SIGKILL) loses the exits of its containers, not the engine.

Its containers keep running, re-parented away from it; nobody can read their exit status any
more, so each one ends as moby ends a lost task: exit 255, found by asking runc. The next create
starts another supervisor, and everything else (stop, rm -f, the leak check) works as before.
"""

from __future__ import annotations

import os
import pathlib
import signal
import time

import pytest

from engine.container_config import ContainerConfig
from engine.service import Engine
from engine.state import ContainerState
from engine.supervisor import PID_FILE
from tests.integration.conftest import REASON, RealEngines, available

pytestmark = pytest.mark.skipif(not available, reason=REASON)


def run(engine: Engine, name: str, *command: str) -> None:
    engine.create(ContainerConfig(image="busybox", command=command, name=name))
    engine.start(name)


def kill_supervisor(engines: RealEngines) -> int:
    pid = int((engines.root / PID_FILE).read_text())
    os.kill(pid, signal.SIGKILL)
    status = pathlib.Path(f"/proc/{pid}/status")
    deadline = time.monotonic() + 10
    while status.exists() and "zombie" not in status.read_text():  # gone, or dead unreaped
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return pid


def test_exits_a_dead_supervisor_would_have_seen_are_255(engines: RealEngines) -> None:
    engine = engines.open()
    run(engine, "short", "sleep", "1")
    run(engine, "long", "sleep", "1000")
    dead = kill_supervisor(engines)
    short = engine.wait("short", timeout=30)
    assert (short.state, short.exit_code) == (ContainerState.EXITED, 255)
    stopped = engine.stop("long", timeout=1)
    assert (stopped.state, stopped.exit_code) == (ContainerState.EXITED, 255)
    # The next container gets a new supervisor, which captures its exit as usual.
    run(engine, "after", "sh", "-c", "exit 5")
    assert engine.wait("after", timeout=30).exit_code == 5
    assert int((engines.root / PID_FILE).read_text()) != dead


def test_rm_force_of_an_orphaned_container(engines: RealEngines) -> None:
    engine = engines.open()
    run(engine, "orphan", "sleep", "1000")
    kill_supervisor(engines)
    engine.remove("orphan", force=True)
    assert engine.list_containers(all=True) == []
