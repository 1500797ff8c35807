"""The OCI CLI driver: runc, crun, or any runc-compatible binary (a wrapper script included).

Satisfies ``engine.runtime.OCIRuntime``. Every call runs the ``binary`` it is given (the one
locked into the container at start) with ``--root <data root>/runc``. ``create`` goes through the
supervisor (``engine.supervisor``), so that the container's init is re-parented to it and its
exit is captured even while the daemon is down; exits are read from the supervisor's exit files.
runc's errors are mapped to classes: "does not exist" is NotFound, a refused state change is
Conflict, anything else System (the start classifier reads the text for 126/127).
"""

from __future__ import annotations

import contextlib
import json
import logging
import pathlib
import time

from engine import spawn
from engine.errors import Conflict, NotFound, System, Unavailable
from engine.runtime import TaskState, TaskStatus
from engine.supervisor import Attached, SupervisorClient, exit_path

log = logging.getLogger("berth.runc")

POLL_SECONDS = 0.1  # how often runc is first asked about a task nobody supervises
POLL_MAX_SECONDS = 2.0
FORGET_EXIT_SECONDS = 2.0  # how long a deleted task's exit record is waited for, to remove it
_FINISHED = ("container not running", "no such process")
_NOT_FOUND = ("does not exist", "not found", "no such container")
_CONFLICT = ("not running", "not paused", "is paused", "already", "cannot", "is stopped",
             "id exists")


class RuncRuntime:
    def __init__(self, root: pathlib.Path, supervisor: SupervisorClient) -> None:
        self.root = root
        self.runc_root = root / "runc"
        self.runc_root.mkdir(parents=True, exist_ok=True)
        self.supervisor = supervisor

    def _run(self, binary: str, *arguments: str, output: bool = False) -> str:
        """Run ``binary`` and return its stdout (captured only when ``output`` is asked)."""
        try:
            result = spawn.run([binary, "--root", str(self.runc_root), *arguments],
                               capture_stdout=output)
        except FileNotFoundError as exc:
            raise System(f'exec: "{binary}": executable file not found in $PATH') from exc
        except OSError as exc:
            raise System(f"{binary} {arguments[0]}: {exc}") from exc
        if result.returncode != 0:
            raise _classified(_message(result.stderr) or f"{binary} {arguments[0]} failed")
        return result.stdout

    def create(self, container_id: str, bundle: str, *, binary: str) -> TaskState:
        log_path = self.root / "containers" / container_id / f"{container_id}-json.log"
        try:
            reply = self.supervisor.create(container_id, bundle, binary, str(self.runc_root),
                                           str(log_path))
        except OSError as exc:  # not the runtime's error: the classifier must not read it
            raise Unavailable(f"the supervisor is unavailable: {exc}") from exc
        if not reply.get("ok"):
            raise _classified(str(reply.get("error", "runc create failed")))
        return TaskState(container_id, TaskStatus.CREATED, int(reply["pid"]), bundle)

    def start(self, container_id: str, *, binary: str) -> TaskState:
        """The pid is create's (0 here): asking runc again would cost a process."""
        self._run(binary, "start", container_id)
        return TaskState(container_id, TaskStatus.RUNNING)

    def state(self, container_id: str, *, binary: str) -> TaskState:
        raw = json.loads(self._run(binary, "state", container_id, output=True))
        # runc's "creating": its create is still running (a slow hook); no init runs yet.
        status = _status(str(raw.get("status", "stopped")))
        code, exited_at = self._exit(container_id)
        return TaskState(container_id, status, int(raw.get("pid") or 0), raw.get("bundle", ""),
                         code, exited_at, self._started(container_id, status))

    def _started(self, container_id: str, status: TaskStatus) -> bool:
        """runc's own test: the init of a created task waits on ``exec.fifo`` in the task's
        state directory, which ``runc start`` removes once it opened it. A stopped task that
        still has it was killed before it was started."""
        if status is not TaskStatus.STOPPED:
            return status is not TaskStatus.CREATED
        return not (self.runc_root / container_id / "exec.fifo").exists()

    def _exit(self, container_id: str) -> tuple[int | None, int | None]:
        path = exit_path(self.root, container_id)
        try:
            recorded = json.loads(path.read_text())
        except (OSError, ValueError):
            return None, None
        return int(recorded["exit_code"]), int(recorded["exited_at"])

    def kill(self, container_id: str, signal: int, *, binary: str) -> None:
        try:
            self._run(binary, "kill", container_id, str(signal))
        except (Conflict, System) as exc:
            # runc refuses a stopped task ("container not running") and loses a race with the
            # reaper ("no such process"): both say the process has finished.
            if not any(marker in exc.message.lower() for marker in _FINISHED):
                raise
            raise NotFound(f"process already finished: {exc.message}") from exc

    def pause(self, container_id: str, *, binary: str) -> None:
        self._run(binary, "pause", container_id)

    def resume(self, container_id: str, *, binary: str) -> None:
        self._run(binary, "resume", container_id)

    def delete(self, container_id: str, *, binary: str, force: bool = False) -> None:
        path = exit_path(self.root, container_id)
        try:
            path.unlink()
            recorded = True  # it ended and its exit was taken: the usual exit path
        except FileNotFoundError:
            recorded = False
        if not (self.runc_root / container_id).exists():
            return  # runc keeps a state directory per container under --root: none, nothing
        try:
            self._run(binary, "delete", container_id)  # a stopped task needs no force
        except NotFound:
            return
        except Conflict:
            if not force:
                raise
            with contextlib.suppress(NotFound):
                self._run(binary, "delete", "--force", container_id)
        if not recorded:
            # Deleted before its exit was recorded (a created task, a start compensated): runc
            # killed its init, and the supervisor records that exit too. Nobody will ask for it
            # (the container's own exit, if any, is journaled), so it goes once written.
            with contextlib.suppress(OSError):
                self.supervisor.wait(container_id, FORGET_EXIT_SECONDS)
            path.unlink(missing_ok=True)

    def wait(self, container_id: str, *, binary: str, timeout: float) -> TaskState | None:
        try:
            reply = self.supervisor.wait(container_id, timeout)
        except OSError as exc:  # the supervisor is gone, and with it every exit it would see
            log.warning("%s: no supervisor to wait on: %s", container_id[:12], exc)
            reply = {"exited": False, "known": False}
        if reply.get("exited"):
            return TaskState(container_id, TaskStatus.STOPPED, 0, "",
                             int(reply["exit_code"]), int(reply["exited_at"]))
        if reply.get("known") is False:
            return self._poll(container_id, binary, timeout)
        if reply.get("known"):
            return None  # its supervisor will record the exit: not yet (or not ended)
        # A supervisor from before "known" (it outlives daemons, upgrades too).
        return self._lost(self.state(container_id, binary=binary))  # NotFound if it is gone

    def _poll(self, container_id: str, binary: str, timeout: float) -> TaskState | None:
        """Wait for a task no supervisor reaps (its supervisor died) by asking runc."""
        deadline = time.monotonic() + timeout
        interval = POLL_SECONDS
        while True:
            stopped = self._lost(self.state(container_id, binary=binary))
            remaining = deadline - time.monotonic()
            if stopped is not None or remaining <= 0:
                return stopped
            time.sleep(min(interval, remaining))
            interval = min(interval * 2, POLL_MAX_SECONDS)  # a runc process each: back off

    @staticmethod
    def _lost(state: TaskState) -> TaskState | None:
        """A stopped task without an exit record: its supervisor was lost (moby: 255)."""
        if state.status is not TaskStatus.STOPPED:
            return None
        return TaskState(state.container_id, TaskStatus.STOPPED, 0, state.bundle,
                         state.exit_code if state.exit_code is not None else 255,
                         state.exited_at, state.started)

    def attach(self, container_id: str) -> Attached | None:
        """Through the supervisor, which holds the task's pipes. Raises Unavailable if it
        cannot be reached."""
        try:
            return self.supervisor.attach(container_id)
        except OSError as exc:
            raise Unavailable(f"the supervisor is unavailable: {exc}") from exc

    def list(self, *, binary: str) -> list[TaskState]:
        raw = json.loads(self._run(binary, "list", "--format", "json", output=True) or "null") or []
        return [TaskState(entry["id"], _status(str(entry["status"])), int(entry.get("pid") or 0),
                          entry.get("bundle", "")) for entry in raw]


# runc's statuses, as the engine's task statuses ("creating": its create still runs, a slow
# hook; "pausing": its freeze is under way).
_STATUSES = {"creating": TaskStatus.CREATED, "created": TaskStatus.CREATED,
             "running": TaskStatus.RUNNING, "pausing": TaskStatus.RUNNING,
             "paused": TaskStatus.PAUSED, "stopped": TaskStatus.STOPPED}


def _status(text: str) -> TaskStatus:
    try:
        return _STATUSES[text]
    except KeyError:
        raise System(f"the runtime reports an unknown task status {text!r}") from None


def _message(stderr: str) -> str:
    """runc's error text: the msg= of its last error line, else the last line."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        marker = 'msg="'
        if marker in line:
            return line.split(marker, 1)[1].rsplit('"', 1)[0].replace('\\"', '"')
    return lines[-1] if lines else ""


def _classified(message: str) -> System | NotFound | Conflict:
    lowered = message.lower()
    if "container with given id already exists" in lowered:
        return Conflict(message)  # runc's create of a stale id: ReplaceContainer replaces it
    if any(marker in lowered for marker in _NOT_FOUND) and "executable" not in lowered \
            and "file" not in lowered:
        return NotFound(message)
    if any(marker in lowered for marker in _CONFLICT) and "create failed" not in lowered:
        return Conflict(message)
    return System(message)
