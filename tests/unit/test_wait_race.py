"""An exit is recorded for the run it ended, never for the next one (a restart in between)."""

from __future__ import annotations

import pathlib
import threading
import time
from typing import Any

import pytest

from engine.composition import open_engine
from engine.errors import Deadline
from engine.failpoint import Failpoints
from engine.runtime import TaskStatus
from engine.service import Engine
from engine.state import ContainerState
from engine.testing import FakeHost, FakeRuntime
from tests.conftest import make_config


def test_an_old_runs_exit_does_not_end_the_restarted_run(
        engine: Engine, fake_runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    record = engine.create(make_config("web"))
    engine.start("web")
    first_run = engine.inspect("web").resources_operation_id
    original = engine._wait
    raced: list[bool] = []

    def exit_then_restart(target: Any, timeout: float | None, **options: Any) -> Any:
        """The first run exits and the waiter gets its exit; before the waiter takes the lock,
        a restart runs (its stop records that exit, then it starts a new run): the race of
        the exit monitor and ``berth restart``."""
        if raced:
            return original(target, timeout, **options)
        raced.append(True)
        fake_runtime.exit(record.id, 3)
        task = original(target, timeout, **options)
        engine.restart("web", timeout=0)
        return task

    monkeypatch.setattr(engine, "_wait", exit_then_restart)
    with pytest.raises(Deadline):  # it went on waiting, for the new run
        engine.wait("web", timeout=0.2)
    after = engine.inspect("web")
    assert after.state is ContainerState.RUNNING
    assert after.resources_operation_id != first_run
    assert fake_runtime.tasks()[record.id].status is TaskStatus.RUNNING


def test_a_wait_during_the_exit_cleanup_gets_the_exit_code(tmp_path: pathlib.Path) -> None:
    """While the exit's Cleanup runs the container reads ``exiting`` and its exit code is not
    written yet: a wait then waits for the cleanup, it never answers 0."""
    runtime = FakeRuntime()
    engine, _ = open_engine(tmp_path, runtime=runtime, host=FakeHost(str(tmp_path)),
                            failpoints=Failpoints(
                                {"cleanup.delete_runtime_container": "sleep(300)"}))
    engine.create(make_config("web"))
    engine.start("web")
    killer = threading.Thread(target=engine.kill, args=("web",))
    killer.start()
    deadline = time.monotonic() + 10
    while engine.inspect("web").state is not ContainerState.EXITING:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    done = engine.wait("web", timeout=30)
    killer.join()
    assert (done.state, done.exit_code) == (ContainerState.EXITED, 137)


def test_a_wait_for_a_container_removed_after_its_exit_gets_its_exit_code(
        engine: Engine, fake_runtime: FakeRuntime) -> None:
    """`berth wait` racing `rm -f`, and `run --rm`: the removed container's exit code."""
    record = engine.create(make_config("web"))
    engine.start("web")
    engine.remove("web", force=True)
    assert engine.wait(record.id, timeout=5).exit_code == 137


def test_an_exit_is_never_before_the_start(engine: Engine, fake_runtime: FakeRuntime) -> None:
    """The supervisor's reap time can precede the StartedAt the daemon took after ``runc
    start`` returned (a process that ends at once): FinishedAt is clamped, never earlier."""
    record = engine.create(make_config("quick"))
    engine.start("quick")
    started_at = engine.inspect("quick").started_at
    assert started_at is not None
    fake_runtime.exit(record.id, 0)
    fake_runtime._tasks[record.id].exited_at = started_at - 8  # reaped "before" it started
    done = engine.wait("quick", timeout=5)
    assert done.finished_at == started_at
