"""The OCI CLI driver against a scripted runtime binary: how it reads runc's answers.

The binary is a shell script standing in for runc (each test says what it answers); the
supervisor is a stub, so no container runs here (tests/integration runs real ones).
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from engine.errors import Conflict, NotFound, System, Unavailable
from engine.runc import RuncRuntime
from engine.runtime import TaskStatus

RUNC_ERROR = 'time="2026-12-01T00:00:00Z" level=error msg="{}"'


def scripted_runtime(tmp_path: pathlib.Path, *, stderr: str = "", stdout: str = "",
                     code: int = 1) -> str:
    """A runc stand-in that prints ``stdout``/``stderr`` and exits ``code``, whatever asked."""
    script = tmp_path / "runtime"
    script.write_text(f"#!/bin/sh\nprintf '%s' '{stdout}'\nprintf '%s\\n' '{stderr}' >&2\n"
                      f"exit {code}\n")
    script.chmod(0o755)
    return str(script)


class StubSupervisor:
    def __init__(self, reply: dict[str, Any] | None = None,
                 failure: BaseException | None = None) -> None:
        self.reply = reply or {}
        self.failure = failure

    def wait(self, container_id: str, timeout: float) -> dict[str, Any]:
        if self.failure is not None:
            raise self.failure
        return self.reply

    def create(self, *arguments: str) -> dict[str, Any]:
        if self.failure is not None:
            raise self.failure
        return self.reply


def driver(tmp_path: pathlib.Path, supervisor: StubSupervisor) -> RuncRuntime:
    return RuncRuntime(tmp_path / "root", supervisor)  # type: ignore[arg-type]


@pytest.mark.parametrize("said", ["container not running",
                                  "unable to signal init: no such process"])
def test_kill_of_a_finished_process_is_not_found(tmp_path: pathlib.Path, said: str) -> None:
    binary = scripted_runtime(tmp_path, stderr=RUNC_ERROR.format(said))
    with pytest.raises(NotFound, match="process already finished"):
        driver(tmp_path, StubSupervisor()).kill("c1", 15, binary=binary)


def test_kill_refused_for_another_reason_keeps_its_class(tmp_path: pathlib.Path) -> None:
    binary = scripted_runtime(tmp_path, stderr=RUNC_ERROR.format("cannot allocate memory"))
    with pytest.raises(Conflict, match="cannot allocate memory"):
        driver(tmp_path, StubSupervisor()).kill("c1", 15, binary=binary)


def test_create_of_an_existing_id_is_a_conflict(tmp_path: pathlib.Path) -> None:
    reply = {"ok": False, "error": "runc create failed: container with given ID already exists"}
    with pytest.raises(Conflict):
        driver(tmp_path, StubSupervisor(reply)).create("c1", "/b", binary="runc")


def test_a_supervisor_out_of_reach_is_unavailable_not_a_runtime_error(
        tmp_path: pathlib.Path) -> None:
    failure = FileNotFoundError(2, "No such file or directory")
    with pytest.raises(Unavailable, match="the supervisor is unavailable"):
        driver(tmp_path, StubSupervisor(failure=failure)).create("c1", "/b", binary="runc")


STOPPED = '{"status": "stopped", "pid": 0, "bundle": "/b"}'
RUNNING = '{"status": "running", "pid": 7, "bundle": "/b"}'


@pytest.mark.parametrize("supervisor", [
    StubSupervisor(failure=ConnectionRefusedError(111, "Connection refused")),
    StubSupervisor({"exited": False, "known": False}),
    StubSupervisor({"exited": False}),  # a supervisor from before "known"
], ids=["gone", "unknown to it", "older supervisor"])
def test_a_stopped_task_nobody_recorded_exited_255(tmp_path: pathlib.Path,
                                                     supervisor: StubSupervisor) -> None:
    binary = scripted_runtime(tmp_path, stdout=STOPPED, code=0)
    task = driver(tmp_path, supervisor).wait("c1", binary=binary, timeout=5)
    assert task is not None
    assert (task.status, task.exit_code) == (TaskStatus.STOPPED, 255)


def test_a_task_its_supervisor_knows_is_left_to_its_record(tmp_path: pathlib.Path) -> None:
    """Stopped for runc but not recorded yet (reaped, output still draining): the exit code
    comes with the record, never a made-up 255."""
    binary = scripted_runtime(tmp_path, stdout=STOPPED, code=0)
    supervisor = StubSupervisor({"exited": False, "known": True})
    assert driver(tmp_path, supervisor).wait("c1", binary=binary, timeout=0) is None


def test_an_unsupervised_running_task_is_polled_until_the_timeout(
        tmp_path: pathlib.Path) -> None:
    binary = scripted_runtime(tmp_path, stdout=RUNNING, code=0)
    supervisor = StubSupervisor({"exited": False, "known": False})
    assert driver(tmp_path, supervisor).wait("c1", binary=binary, timeout=0.3) is None


def test_an_unsupervised_task_that_vanished_is_not_found(tmp_path: pathlib.Path) -> None:
    binary = scripted_runtime(tmp_path, stderr=RUNC_ERROR.format("container does not exist"))
    supervisor = StubSupervisor({"exited": False, "known": False})
    with pytest.raises(NotFound):
        driver(tmp_path, supervisor).wait("c1", binary=binary, timeout=1)


def test_other_runtime_failures_stay_system(tmp_path: pathlib.Path) -> None:
    binary = scripted_runtime(tmp_path, stderr=RUNC_ERROR.format("something odd"))
    with pytest.raises(System, match="something odd"):
        driver(tmp_path, StubSupervisor()).pause("c1", binary=binary)


@pytest.mark.parametrize(("said", "status"), [("creating", TaskStatus.CREATED),
                                              ("pausing", TaskStatus.RUNNING),
                                              ("paused", TaskStatus.PAUSED)])
def test_runcs_transient_statuses_are_read(tmp_path: pathlib.Path, said: str,
                                           status: TaskStatus) -> None:
    """"creating" (a create whose hook is slow) used to raise a bare ValueError, which left a
    recovering start unresolved."""
    binary = scripted_runtime(tmp_path, stdout=f'{{"id": "c1", "status": "{said}", "pid": 0}}',
                              code=0)
    assert driver(tmp_path, StubSupervisor()).state("c1", binary=binary).status is status


def test_an_unknown_task_status_is_a_system_error(tmp_path: pathlib.Path) -> None:
    binary = scripted_runtime(tmp_path, stdout='{"id": "c1", "status": "odd", "pid": 0}', code=0)
    with pytest.raises(System, match="unknown task status 'odd'"):
        driver(tmp_path, StubSupervisor()).state("c1", binary=binary)
