"""The OCI runtime seam: what the engine needs of runc (or crun, or a wrapper script).

Every call names the runtime ``binary`` locked into the container when it started, never the
current configuration's. Implementations: the OCI CLI driver (real runc) and
``engine.testing.fake_runtime.FakeRuntime``; both satisfy ``OCIRuntime`` without inheritance.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator
from typing import Protocol


class TaskStatus(enum.StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


@dataclasses.dataclass(frozen=True, slots=True)
class TaskState:
    container_id: str
    status: TaskStatus
    pid: int = 0
    bundle: str = ""
    exit_code: int | None = None  # known once stopped, if the runtime captured it
    exited_at: int | None = None  # milliseconds since the epoch
    # Whether the task's process was started (a stopped task may have been killed while it
    # was only created); None where the runtime cannot tell.
    started: bool | None = None


class Output(Protocol):
    """A task's raw output as it is written, from the moment it was attached."""

    complete: bool  # after chunks(): the output ended (not cut off: a reader that fell behind)

    def chunks(self) -> Iterator[tuple[int, bytes] | None]:
        """(stream, bytes): 1 is stdout, 2 stderr; None now and then while nothing comes (the
        caller may look around); ends with the output, or at ``close``."""
        ...

    def close(self) -> None:
        """End it early, from any thread."""
        ...


class OCIRuntime(Protocol):
    def create(self, container_id: str, bundle: str, *, binary: str) -> TaskState:
        """Create the task from ``bundle``. Raises Conflict (a runtime container of that id
        exists), Unavailable (nothing supervises new tasks), or the create error (System)."""
        ...

    def start(self, container_id: str, *, binary: str) -> TaskState:
        """Start the created task's process (``pid`` 0 if the driver does not know it again:
        ``create`` reported it). Raises NotFound, or the start error."""
        ...

    def state(self, container_id: str, *, binary: str) -> TaskState:
        """The task's state. Raises NotFound if the runtime has no such container."""
        ...

    def kill(self, container_id: str, signal: int, *, binary: str) -> None:
        """Send ``signal`` to the task's init. Raises NotFound if there is no such task or its
        process has already finished (containerd's "process already finished")."""
        ...

    def pause(self, container_id: str, *, binary: str) -> None:
        """Freeze the task. Raises NotFound, Conflict if not running."""
        ...

    def resume(self, container_id: str, *, binary: str) -> None:
        """Thaw the task. Raises NotFound, Conflict if not paused."""
        ...

    def delete(self, container_id: str, *, binary: str, force: bool = False) -> None:
        """Delete the task; a missing one is not an error. Raises Conflict if running and not
        ``force``, System on failure."""
        ...

    def wait(self, container_id: str, *, binary: str, timeout: float) -> TaskState | None:
        """Wait up to ``timeout`` seconds for the task to stop; None if it is still alive."""
        ...

    def list(self, *, binary: str) -> list[TaskState]:
        """Every task the runtime knows."""
        ...

    def attach(self, container_id: str) -> Output | None:
        """The output of the task's current run, or of its next one if none runs (docker
        run attaches before it starts); None if this runtime cannot attach."""
        ...
