"""Signals to a container whose task ended before its exit was recorded.

runc refuses to signal a stopped task ("container not running", a Conflict), as containerd
answers NotFound ("process already finished"). moby counts the signal as sent and waits for the
exit: kill, stop and rm -f must succeed with the task's own exit code, not fail.
"""

from __future__ import annotations

import signal

import pytest

from engine.errors import NotFound
from engine.event import ContainerEvent
from engine.service import Engine
from engine.state import ContainerState
from engine.testing import FakeRuntime
from tests.conftest import make_config


def ended_unrecorded(engine: Engine, runtime: FakeRuntime, name: str = "web") -> str:
    """A running container whose task has exited (code 3); the engine has not seen it yet."""
    record = engine.create(make_config(name))
    engine.start(name)
    runtime.exit(record.id, 3)
    assert engine.inspect(name).state is ContainerState.RUNNING
    return record.id


def events_of(engine: Engine) -> list[ContainerEvent]:
    seen: list[ContainerEvent] = []
    engine.saga.events.subscribe(seen.append)
    return seen


@pytest.mark.parametrize("sent", [signal.SIGKILL, signal.SIGTERM, signal.SIGUSR1])
def test_kill_records_the_exit_the_task_already_had(engine: Engine, fake_runtime: FakeRuntime,
                                                     sent: int) -> None:
    ended_unrecorded(engine, fake_runtime)
    seen = events_of(engine)
    after = engine.kill("web", signal=sent)
    assert (after.state, after.exit_code) == (ContainerState.EXITED, 3)
    assert [event.action for event in seen] == ["kill", "die"]


def test_stop_succeeds_with_the_tasks_exit_code(engine: Engine,
                                                fake_runtime: FakeRuntime) -> None:
    ended_unrecorded(engine, fake_runtime)
    after = engine.stop("web", timeout=1)
    assert (after.state, after.exit_code) == (ContainerState.EXITED, 3)
    assert after.has_been_manually_stopped


def test_forced_remove_succeeds(engine: Engine, fake_runtime: FakeRuntime) -> None:
    container_id = ended_unrecorded(engine, fake_runtime)
    engine.remove("web", force=True)
    assert container_id not in fake_runtime.tasks()
    with pytest.raises(NotFound):
        engine.inspect("web")


def test_a_paused_container_whose_task_ended_is_not_resumed(
        engine: Engine, fake_runtime: FakeRuntime) -> None:
    record = engine.create(make_config("web"))
    engine.start("web")
    engine.pause("web")
    fake_runtime.exit(record.id, 3)  # a paused task killed from outside the engine
    after = engine.kill("web")
    assert (after.state, after.exit_code) == (ContainerState.EXITED, 3)
    assert fake_runtime.count("resume", record.id) == 0
