"""Docker's ``next-exit`` wait: the first exit after the call, however far off."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from engine.errors import Cancelled, Deadline
from engine.service import Engine
from engine.store import ContainerRecord
from engine.testing import FakeRuntime
from tests.conftest import make_config


def waiting(call: Callable[[], ContainerRecord]) -> tuple[threading.Thread, list[object]]:
    result: list[object] = []

    def run() -> None:
        try:
            result.append(call())
        except Exception as exc:
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_an_exited_container_is_waited_for_until_it_ran_and_exited_again(
        engine: Engine, fake_runtime: FakeRuntime) -> None:
    record = engine.create(make_config("web"))
    engine.start("web")
    fake_runtime.exit(record.id, 3)
    assert engine.wait("web", timeout=5).exit_code == 3
    thread, result = waiting(lambda: engine.wait_next_exit("web", timeout=30))
    thread.join(0.3)
    assert thread.is_alive()  # not answered with the exit it had already (not-running would)
    engine.start("web")
    fake_runtime.exit(record.id, 5)
    thread.join(10)
    assert not thread.is_alive()
    answer = result[0]
    assert isinstance(answer, ContainerRecord) and answer.exit_code == 5


def test_a_running_container_answers_with_its_exit(engine: Engine,
                                                   fake_runtime: FakeRuntime) -> None:
    record = engine.create(make_config("web"))
    engine.start("web")
    thread, result = waiting(lambda: engine.wait_next_exit("web", timeout=30))
    thread.join(0.3)
    assert thread.is_alive()
    fake_runtime.exit(record.id, 9)
    thread.join(10)
    answer = result[0]
    assert isinstance(answer, ContainerRecord) and answer.exit_code == 9


def test_the_exit_code_is_the_exits_even_if_a_start_followed(
        engine: Engine, fake_runtime: FakeRuntime) -> None:
    """A restart right after the exit resets the container's exit code; the wait answers
    with the exit it was waiting for (moby's waiters get the code at SetStopped)."""
    record = engine.create(make_config("web"))
    engine.start("web")
    thread, result = waiting(lambda: engine.wait_next_exit("web", timeout=30))
    thread.join(0.3)
    engine.restart("web", timeout=1)  # the fake task ends on SIGTERM: 143
    thread.join(10)
    answer = result[0]
    assert isinstance(answer, ContainerRecord) and answer.exit_code == 143
    assert engine.inspect(record.id).exit_code == 0  # running again


def test_a_removal_ends_the_wait(engine: Engine) -> None:
    record = engine.create(make_config("never-started"))
    thread, result = waiting(lambda: engine.wait_next_exit(record.id, timeout=30))
    thread.join(0.3)
    assert thread.is_alive()
    engine.remove(record.id)
    thread.join(10)
    answer = result[0]
    assert isinstance(answer, ContainerRecord) and answer.id == record.id


def test_a_timeout_or_a_departed_waiter_ends_it(engine: Engine) -> None:
    engine.create(make_config("idle"))
    with pytest.raises(Deadline, match=r"did not exit within 0\.2s"):
        engine.wait_next_exit("idle", timeout=0.2)
    with pytest.raises(Cancelled):
        engine.wait_next_exit("idle", timeout=30, gone=lambda: True)

