"""Crash the engine's process at every failpoint of start, cleanup and removal; restart; check
that recovery converges: no unfinished operation, no transient state, nothing leaked.

Each case runs the operation in a subprocess (tests/crash/driver.py) whose failpoint exits it
with status 137 (as SIGKILL would), then opens the engine again in this process, which runs
recovery, and inspects the journal and the fake runtime's and host's persisted state.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess
import sys

import pytest

from engine import steps
from engine.composition import open_engine
from engine.failpoint import CRASH_STATUS
from engine.runtime import TaskState
from engine.service import Engine
from engine.state import ContainerState
from engine.testing import FakeHost, FakeRuntime

DRIVER = pathlib.Path(__file__).with_name("driver.py")
TRANSIENT = {ContainerState.STARTING, ContainerState.ROLLING_BACK, ContainerState.EXITING,
             ContainerState.REMOVING}

pytestmark = pytest.mark.crash


def drive(root: pathlib.Path, action: str, failpoints: str = "") -> int:
    environment = dict(os.environ, BERTH_FAILPOINTS=failpoints)
    result = subprocess.run([sys.executable, str(DRIVER), str(root), action, "web"],
                            env=environment, capture_output=True, text=True, timeout=60)
    assert result.returncode in (0, 1, CRASH_STATUS), result.stderr
    return result.returncode


def reopen(root: pathlib.Path) -> tuple[Engine, FakeRuntime, FakeHost]:
    runtime = FakeRuntime(root / "fake" / "runtime")
    host = FakeHost(str(root), root / "fake" / "host")
    engine, _ = open_engine(root, runtime=runtime, host=host, backend="fake")
    return engine, runtime, host


def assert_converged(engine: Engine, runtime: FakeRuntime, host: FakeHost) -> None:
    with engine.saga.db.read() as reader:
        assert reader.unfinished_operations() == []
        records = reader.containers(include_removed=True)
    for record in records:
        assert record.state not in TRANSIENT, record.state
        held = {resource.value for (_, resource) in host.acquired(record.id)}
        if record.state in (ContainerState.RUNNING, ContainerState.PAUSED):
            assert {"rootfs", "network", "ipc", "spec"} <= held
            assert runtime.tasks()[record.id].status.value in ("running", "paused")
        else:
            assert held == set(), (record.state, held)
            assert record.id not in runtime.tasks()


def crash_then_recover(root: pathlib.Path, setup: list[str], action: str,
                       failpoints: str) -> tuple[Engine, FakeRuntime, FakeHost]:
    for step in setup:
        assert drive(root, step) == 0
    assert drive(root, action, failpoints) == CRASH_STATUS
    engine, runtime, host = reopen(root)
    assert_converged(engine, runtime, host)
    return engine, runtime, host


def exit_while_down(root: pathlib.Path, exit_code: int
                    ) -> tuple[Engine, FakeRuntime, FakeHost, int | None]:
    """The one task ends with ``exit_code`` while no engine runs; then recovery runs.
    Returns the reopened engine, runtime and host, and when the task ended."""
    runtime = FakeRuntime(root / "fake" / "runtime")
    (container_id,) = runtime.tasks()
    runtime.exit(container_id, exit_code)
    exited_at = runtime.tasks()[container_id].exited_at
    engine, runtime, host = reopen(root)
    assert_converged(engine, runtime, host)
    return engine, runtime, host, exited_at


def finish_cleanly(engine: Engine, runtime: FakeRuntime, host: FakeHost) -> None:
    """After recovery the container is fully usable: start, stop, remove, nothing left."""
    record = engine.inspect("web")
    if record.state in (ContainerState.CREATED, ContainerState.EXITED):
        engine.start("web")
    engine.stop("web", timeout=0)
    engine.remove("web")
    assert host.acquired() == {}
    assert runtime.tasks() == {}
    engine.saga.db.close()


@pytest.mark.parametrize("failpoint", [name for name in steps.failpoint_names()
                                       if name.startswith("start.")])
def test_crash_during_start(tmp_path: pathlib.Path, failpoint: str) -> None:
    engine, runtime, host = crash_then_recover(tmp_path, ["create"], "start",
                                               f"{failpoint}=crash")
    record = engine.inspect("web")
    acquired_all = steps.START_STEPS.index(failpoint.split(".")[1]) > steps.START_STEPS.index(
        steps.START_TASK) or failpoint == "start.start_task.after"
    # Rolled forward once the task was started, compensated before.
    expected = ContainerState.RUNNING if acquired_all else ContainerState.CREATED
    assert record.state is expected, failpoint
    if expected is ContainerState.CREATED:
        assert record.exit_code == 128 and "interrupted" in record.error
    else:
        with engine.saga.db.read() as reader:
            started = [row for row in reader.history(record.id) if row.event == "start"][-1]
            operation = [op for op in reader.operations(record.id) if op.kind == "start"][-1]
            start_task = next(row for row in reader.steps(operation.id)
                              if row.name == steps.START_TASK)
        if started.actor == "recovery":  # rolled forward: the intent's time, not recovery's
            assert record.started_at == start_task.started_at
    finish_cleanly(engine, runtime, host)


@pytest.mark.parametrize("failpoint", [name for name in steps.failpoint_names()
                                       if name.startswith("cleanup.")
                                       and "persist_error" not in name
                                       and "auto_remove" not in name])
def test_crash_during_compensation_is_resumed(tmp_path: pathlib.Path, failpoint: str) -> None:
    engine, runtime, host = crash_then_recover(
        tmp_path, ["create"], "start", f"start.start_task=error,{failpoint}=crash")
    record = engine.inspect("web")
    assert record.state is ContainerState.CREATED
    assert record.exit_code == 128 and "start.start_task" in record.error
    with engine.saga.db.read() as reader:
        start = next(op for op in reader.operations(record.id) if op.kind == "start")
        statuses = {row.name: row.status for row in reader.steps(start.id)
                    if row.kind == "compensation"}
    assert "pending" not in statuses.values()
    finish_cleanly(engine, runtime, host)


@pytest.mark.parametrize("failpoint", ["cleanup.persist_error", "cleanup.persist_error.after"])
def test_crash_while_recording_a_start_failure(tmp_path: pathlib.Path, failpoint: str) -> None:
    engine, runtime, host = crash_then_recover(
        tmp_path, ["create"], "start", f"start.setup_network=error,{failpoint}=crash")
    assert engine.inspect("web").state is ContainerState.CREATED
    finish_cleanly(engine, runtime, host)


@pytest.mark.parametrize("failpoint", [name for name in steps.failpoint_names()
                                       if name.startswith("cleanup.")
                                       and name.split(".")[1] in steps.CLEANUP_STEPS])
def test_crash_during_exit_cleanup_is_resumed(tmp_path: pathlib.Path, failpoint: str) -> None:
    engine, runtime, host = crash_then_recover(tmp_path, ["run"], "stop",
                                               f"{failpoint}=crash")
    record = engine.inspect("web")
    assert record.state is ContainerState.EXITED
    assert record.exit_code == 143  # the journaled exit status survived the crash
    finish_cleanly(engine, runtime, host)


@pytest.mark.parametrize("failpoint", [name for name in steps.failpoint_names()
                                       if name.startswith("remove.")])
def test_crash_during_removal_is_finished(tmp_path: pathlib.Path, failpoint: str) -> None:
    engine, _, host = crash_then_recover(tmp_path, ["create"], "rm", f"{failpoint}=crash")
    with engine.saga.db.read() as reader:
        (record,) = reader.containers(include_removed=True)
    assert record.state is ContainerState.REMOVED
    assert record.id in host.removed or failpoint == "remove.remove_files.after"
    engine.saga.db.close()


def test_crash_with_auto_remove_pending_is_finished(tmp_path: pathlib.Path) -> None:
    root = tmp_path
    environment = dict(os.environ, BERTH_FAILPOINTS="")
    script = (
        "import sys; from engine.composition import open_engine;"
        "from engine.container_config import ContainerConfig as C;"
        "e,_=open_engine(sys.argv[1], backend='fake');"
        "e.create(C(image='b', command=('x',), name='web', auto_remove=True))"
    )
    subprocess.run([sys.executable, "-c", script, str(root)], env=environment, check=True,
                   timeout=60)
    assert drive(root, "start", "start.start_task=error,cleanup.auto_remove=crash") == 137
    engine, runtime, host = reopen(root)
    assert_converged(engine, runtime, host)
    with engine.saga.db.read() as reader:
        (record,) = reader.containers(include_removed=True)
    assert record.state is ContainerState.REMOVED
    engine.saga.db.close()


def test_container_that_exited_while_the_daemon_was_down(tmp_path: pathlib.Path) -> None:
    assert drive(tmp_path, "run") == 0
    engine, _, _, _ = exit_while_down(tmp_path, 7)
    record = engine.inspect("web")
    assert (record.state, record.exit_code) == (ContainerState.EXITED, 7)
    engine.saga.db.close()


@pytest.mark.parametrize("failpoint", ["start.start_task.after", "start.mark_running"])
def test_a_start_whose_task_ran_and_exited_while_down_is_rolled_forward(
        tmp_path: pathlib.Path, failpoint: str) -> None:
    """The start_task intent was committed and the task then ran to its end with the daemon
    down: it started (start, then die, with the task's own exit code), not a failed start."""
    assert drive(tmp_path, "create") == 0
    assert drive(tmp_path, "start", f"{failpoint}=crash") == CRASH_STATUS
    engine, runtime, host, exited_at = exit_while_down(tmp_path, 5)
    record = engine.inspect("web")
    assert (record.state, record.exit_code, record.error) == (ContainerState.EXITED, 5, "")
    assert record.finished_at == exited_at
    with engine.saga.db.read() as reader:
        events = [row.event for row in reader.history(record.id)]
        start = next(op for op in reader.operations(record.id) if op.kind == "start")
        start_task = next(row for row in reader.steps(start.id)
                          if row.name == steps.START_TASK)
    assert events.count("start") == 1 and events.count("die") == 1
    assert events.index("start") < events.index("die")
    assert start.status == "succeeded"
    assert record.started_at == start_task.started_at
    finish_cleanly(engine, runtime, host)


@pytest.mark.parametrize("failpoint", ["start.create_runtime_container.after",
                                       "start.start_task"])
def test_a_task_killed_before_it_was_started_is_a_failed_start(
        tmp_path: pathlib.Path, failpoint: str) -> None:
    """The daemon died before runc start ran (before its intent, or after it), and the
    created task was killed meanwhile: it never ran, so the start is compensated."""
    assert drive(tmp_path, "create") == 0
    assert drive(tmp_path, "start", f"{failpoint}=crash") == CRASH_STATUS
    engine, runtime, host, _ = exit_while_down(tmp_path, 137)
    record = engine.inspect("web")
    assert (record.state, record.exit_code) == (ContainerState.CREATED, 128)
    assert "interrupted" in record.error
    with engine.saga.db.read() as reader:
        assert "die" not in [row.event for row in reader.history(record.id)]
    finish_cleanly(engine, runtime, host)


def test_container_whose_task_vanished_exits_255(tmp_path: pathlib.Path) -> None:
    assert drive(tmp_path, "run") == 0
    for path in (tmp_path / "fake" / "runtime").glob("*.json"):
        path.unlink()
    engine, runtime, host = reopen(tmp_path)
    assert_converged(engine, runtime, host)
    assert engine.inspect("web").exit_code == 255
    engine.saga.db.close()


def test_an_exit_still_being_recorded_is_waited_for_not_made_up(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runtime says stopped, but the supervisor has not written the exit yet (reaped,
    output draining): recovery asks for it instead of recording 255."""
    assert drive(tmp_path, "run") == 0
    runtime = FakeRuntime(tmp_path / "fake" / "runtime")
    (container_id,) = runtime.tasks()
    runtime.exit(container_id, 7)
    original_state = FakeRuntime.state

    def not_recorded_yet(self: FakeRuntime, container_id: str, *, binary: str) -> TaskState:
        return dataclasses.replace(original_state(self, container_id, binary=binary),
                                   exit_code=None, exited_at=None)

    monkeypatch.setattr(FakeRuntime, "state", not_recorded_yet)
    engine, runtime, host = reopen(tmp_path)
    assert_converged(engine, runtime, host)
    record = engine.inspect("web")
    assert (record.state, record.exit_code) == (ContainerState.EXITED, 7)
    engine.saga.db.close()
