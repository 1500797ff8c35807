"""An exit is recorded for the run it ended, never for the next one (a restart in between)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import Deadline
from engine.runtime import TaskStatus
from engine.service import Engine
from engine.state import ContainerState
from engine.testing import FakeRuntime
from tests.conftest import make_config


def test_an_old_runs_exit_does_not_end_the_restarted_run(
        engine: Engine, fake_runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    record = engine.create(make_config("web"))
    engine.start("web")
    first_run = engine.inspect("web").resources_operation_id
    original = engine._wait
    raced: list[bool] = []

    def exit_then_restart(target: Any, timeout: float | None) -> Any:
        """The first run exits and the waiter gets its exit; before the waiter takes the lock,
        a restart runs (its stop records that exit, then it starts a new run): the race of
        the exit monitor and ``berth restart``."""
        if raced:
            return original(target, timeout)
        raced.append(True)
        fake_runtime.exit(record.id, 3)
        task = original(target, timeout)
        engine.restart("web", timeout=0)
        return task

    monkeypatch.setattr(engine, "_wait", exit_then_restart)
    with pytest.raises(Deadline):  # it went on waiting, for the new run
        engine.wait("web", timeout=0.2)
    after = engine.inspect("web")
    assert after.state is ContainerState.RUNNING
    assert after.resources_operation_id != first_run
    assert fake_runtime.tasks()[record.id].status is TaskStatus.RUNNING
