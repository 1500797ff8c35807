"""The daemon's exit monitor keeps watching a container until its exit is recorded."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from engine import daemon
from engine.daemon import ExitMonitor
from engine.errors import InvalidParameter, NotFound


class FlakyEngine:
    """An engine whose ``wait`` fails ``failures`` times, then records the exit."""

    def __init__(self, failures: int, final: BaseException | None = None) -> None:
        self.failures = failures
        self.final = final
        self.calls = 0
        self.done = threading.Event()
        self.closing = threading.Event()  # as Engine.closing: never set here

    def wait(self, container_id: str) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise OSError("the runtime refused for a moment")
        self.done.set()
        if self.final is not None:
            raise self.final
        return None


def settle(monitor: ExitMonitor, engine: FlakyEngine) -> None:
    assert engine.done.wait(30)
    deadline = time.monotonic() + 30
    while monitor._watching and time.monotonic() < deadline:
        time.sleep(0.001)


@pytest.mark.parametrize("final", [None, NotFound("removed meanwhile")])
def test_a_failed_wait_is_tried_again_until_the_exit_is_recorded(
        monkeypatch: pytest.MonkeyPatch, final: BaseException | None) -> None:
    monkeypatch.setattr(daemon, "RETRY_SECONDS", 0.001)
    engine = FlakyEngine(failures=3, final=final)
    monitor = ExitMonitor(engine)  # type: ignore[arg-type]
    monitor.watch("c1")
    settle(monitor, engine)
    assert engine.calls == 4
    assert monitor._watching == set()


def test_a_container_whose_runtime_is_gone_is_given_up_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daemon, "RETRY_SECONDS", 0.001)
    engine = FlakyEngine(failures=0, final=InvalidParameter("unknown runtime specified runc2"))
    monitor = ExitMonitor(engine)  # type: ignore[arg-type]
    monitor.watch("c1")
    settle(monitor, engine)
    assert engine.calls == 1


class BlockingEngine:
    """An engine whose first ``wait`` blocks until released; it counts the waits."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = threading.Event()
        self.second = threading.Event()

    def wait(self, container_id: str) -> Any:
        self.calls += 1
        if self.calls == 1:
            assert self.release.wait(30)
        else:
            self.second.set()
        return None


def test_a_run_started_while_the_last_one_is_still_watched_is_watched_too() -> None:
    engine = BlockingEngine()
    monitor = ExitMonitor(engine)  # type: ignore[arg-type]
    monitor.watch("c1")
    monitor.watch("c1")  # the restart's start event, while the first watcher is still on
    engine.release.set()
    assert engine.second.wait(30)
    assert engine.calls == 2
