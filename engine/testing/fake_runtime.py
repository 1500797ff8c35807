"""An in-process OCI runtime: tasks are records, processes are simulated.

A started task runs until it is signalled (SIGTERM and SIGKILL end it with 128+signal unless the
test made it ignore SIGTERM) or until the test calls ``exit``. With a ``state_dir`` every task is
kept in a JSON file, so a second process (a restarted daemon) sees the tasks the first left, as
it would with runc. ``faults`` injects an error into any call; ``calls`` records them all.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import signal as signals
import threading
import time

from engine.errors import Conflict, NotFound
from engine.runtime import TaskState, TaskStatus
from engine.testing.fault import FaultPlan


@dataclasses.dataclass
class _Task:
    container_id: str
    bundle: str
    binary: str
    status: TaskStatus = TaskStatus.CREATED
    pid: int = 0
    exit_code: int | None = None
    exited_at: int | None = None
    ignore_sigterm: bool = False
    started: bool = False  # by start (a task killed while created was not)

    def view(self) -> TaskState:
        return TaskState(self.container_id, self.status, self.pid, self.bundle, self.exit_code,
                         self.exited_at, self.started)


class FakeRuntime:
    """Satisfies ``engine.runtime.OCIRuntime``."""

    def __init__(self, state_dir: str | os.PathLike[str] | None = None) -> None:
        self.faults = FaultPlan()
        self.calls: list[tuple[str, str, str]] = []  # (call, container_id, binary)
        self.ignore_sigterm: set[str] = set()
        self._tasks: dict[str, _Task] = {}
        self._lock = threading.Condition()
        self._next_pid = 1000
        self._dir = pathlib.Path(state_dir) if state_dir is not None else None
        if self._dir is not None:
            self._dir.mkdir(parents=True, exist_ok=True)
            for path in sorted(self._dir.glob("*.json")):
                raw = json.loads(path.read_text())
                raw["status"] = TaskStatus(raw["status"])
                task = _Task(**raw)
                self._tasks[task.container_id] = task
                self._next_pid = max(self._next_pid, task.pid + 1)

    # -- persistence ---------------------------------------------------------------------
    def _save(self, task: _Task) -> None:
        if self._dir is None:
            return
        path = self._dir / f"{task.container_id}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(dataclasses.asdict(task)))
        os.replace(temporary, path)

    def _drop(self, container_id: str) -> None:
        if self._dir is not None:
            (self._dir / f"{container_id}.json").unlink(missing_ok=True)

    def _enter(self, call: str, container_id: str, binary: str) -> None:
        self.calls.append((call, container_id, binary))
        self.faults.check(call, container_id)

    def _task(self, container_id: str) -> _Task:
        task = self._tasks.get(container_id)
        if task is None:
            raise NotFound(f"container does not exist: {container_id}")
        return task

    # -- OCIRuntime ----------------------------------------------------------------------
    def create(self, container_id: str, bundle: str, *, binary: str) -> TaskState:
        with self._lock:
            self._enter("create", container_id, binary)
            if container_id in self._tasks:
                raise Conflict(f"container with id exists: {container_id}")
            self._next_pid += 1
            task = _Task(container_id, bundle, binary, pid=self._next_pid,
                         ignore_sigterm=container_id in self.ignore_sigterm)
            self._tasks[container_id] = task
            self._save(task)
            return task.view()

    def start(self, container_id: str, *, binary: str) -> TaskState:
        with self._lock:
            self._enter("start", container_id, binary)
            task = self._task(container_id)
            if task.status is not TaskStatus.CREATED:
                raise Conflict(f"cannot start a container that has stopped: {container_id}")
            task.status = TaskStatus.RUNNING
            task.started = True
            self._save(task)
            return task.view()

    def state(self, container_id: str, *, binary: str) -> TaskState:
        with self._lock:
            self._enter("state", container_id, binary)
            return self._task(container_id).view()

    def kill(self, container_id: str, signal: int, *, binary: str) -> None:
        with self._lock:
            self._enter("kill", container_id, binary)
            task = self._task(container_id)
            if task.status not in (TaskStatus.RUNNING, TaskStatus.PAUSED, TaskStatus.CREATED):
                raise NotFound(f"process already finished: {container_id}")
            if signal == signals.SIGKILL or (
                signal == signals.SIGTERM and not task.ignore_sigterm
            ):
                self._finish(task, 128 + signal)

    def pause(self, container_id: str, *, binary: str) -> None:
        with self._lock:
            self._enter("pause", container_id, binary)
            task = self._task(container_id)
            if task.status is not TaskStatus.RUNNING:
                raise Conflict(f"container not running: {container_id}")
            task.status = TaskStatus.PAUSED
            self._save(task)

    def resume(self, container_id: str, *, binary: str) -> None:
        with self._lock:
            self._enter("resume", container_id, binary)
            task = self._task(container_id)
            if task.status is not TaskStatus.PAUSED:
                raise Conflict(f"container not paused: {container_id}")
            task.status = TaskStatus.RUNNING
            self._save(task)

    def delete(self, container_id: str, *, binary: str, force: bool = False) -> None:
        with self._lock:
            self._enter("delete", container_id, binary)
            task = self._tasks.get(container_id)
            if task is None:
                return
            if task.status in (TaskStatus.RUNNING, TaskStatus.PAUSED) and not force:
                raise Conflict(f"cannot delete container {container_id} that is not stopped")
            del self._tasks[container_id]
            self._drop(container_id)

    def wait(self, container_id: str, *, binary: str, timeout: float) -> TaskState | None:
        deadline = time.monotonic() + timeout
        with self._lock:
            self._enter("wait", container_id, binary)
            while True:
                task = self._task(container_id)
                if task.status is TaskStatus.STOPPED:
                    return task.view()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._lock.wait(remaining)

    def attach(self, container_id: str) -> None:
        """The fake's tasks write nothing: ``run`` reads their (empty) logs instead."""
        return None

    def list(self, *, binary: str) -> list[TaskState]:
        with self._lock:
            self._enter("list", "", binary)
            return [task.view() for task in self._tasks.values()]

    # -- simulation ----------------------------------------------------------------------
    def _finish(self, task: _Task, exit_code: int) -> None:
        task.status = TaskStatus.STOPPED
        task.exit_code = exit_code
        task.exited_at = time.time_ns() // 1_000_000
        self._save(task)
        self._lock.notify_all()

    def exit(self, container_id: str, exit_code: int) -> None:
        """Make a running task's process exit with ``exit_code``."""
        with self._lock:
            self._finish(self._task(container_id), exit_code)

    def tasks(self) -> dict[str, TaskState]:
        with self._lock:
            return {key: task.view() for key, task in self._tasks.items()}

    def count(self, call: str, container_id: str | None = None) -> int:
        return sum(
            1 for name, cid, _ in self.calls
            if name == call and (container_id is None or cid == container_id)
        )
