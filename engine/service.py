"""The engine's use cases: what the API and the CLI call.

Contract: each operation takes one configuration snapshot at its entry, resolves the container
reference as Docker does (exact ID, exact name, unique ID prefix), and runs under that
container's lock; every state change goes through the journal. Errors are classified
(``engine.errors``); NotModified means "valid, nothing to do".
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import signal as signals
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from engine.config import ConfigSnapshot, ConfigStore
from engine.container_config import (
    DEFAULT_STOP_TIMEOUT,
    GENERATED_NAME_ATTEMPTS,
    ContainerConfig,
    anonymous_destination,
    generate_name,
    normalize_name,
    validate,
    validate_command,
)
from engine.errors import (
    BerthError,
    Cancelled,
    Conflict,
    ContainerNotFound,
    Deadline,
    Forbidden,
    InvalidParameter,
    NameInUseConflict,
    NotFound,
    NotModified,
    System,
    Unavailable,
    Unknown,
    wrapped,
)
from engine.event import ContainerEvent
from engine.image import ImageStore
from engine.lifecycle import Event, advance
from engine.oci_spec import volume_over_file_error, working_dir_error
from engine.removal import begin_removal, finish_removal
from engine.runtime import TaskState, TaskStatus
from engine.saga import OperationJournal, SagaContext
from engine.start import StartSaga
from engine.state import Actor, ContainerState, OperationKind
from engine.store import ContainerRecord, HistoryDraft, HistoryRecord, JournalContext
from engine.termination import ExitStatus, handle_exit, resume_exit
from engine.volume import VolumeStore

log = logging.getLogger("berth.engine")

API = JournalContext(Actor.API)
MONITOR = JournalContext(Actor.MONITOR)
KILL_TIMEOUT = 10.0  # moby waits this long for a SIGKILLed task to exit
FORCE_REMOVE_TIMEOUT = 3.0
WAIT_SLICE_SECONDS = 2.0  # a wait looks at ``Engine.closing`` this often
SHUTTING_DOWN = "the berth daemon is shutting down"
MISSING_TASK_EXIT = 255  # moby (post PR #45800) for a task that vanished
_LIVE = (ContainerState.RUNNING, ContainerState.PAUSED)


def still_running(container_id: str, timeout: float | None) -> str:
    """Deadline's message: ``timeout`` as given (0.5s, not 0.49999944999945s)."""
    if timeout is None:
        return f"container {container_id} still running"
    return f"container {container_id} still running after {timeout:g}s"


class _PendingStop:
    """A stop waiting for the run it signalled (``run``: the start that made it live)."""

    __slots__ = ("counted", "restarting", "run")

    def __init__(self, run: int | None, *, restarting: bool) -> None:
        self.run = run
        self.restarting = restarting  # a restart's stop: its exit is not auto-removed
        self.counted = False  # its ``stop`` event rode with the exit's record


class _ContainerLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0  # holding it or waiting for it


def check_wait_timeout(timeout: float | None) -> None:
    """Raises InvalidParameter unless ``timeout`` is None or a number of seconds >= 0 (NaN
    compares false with everything: a deadline made of it never passes)."""
    if timeout is not None and not timeout >= 0:
        raise InvalidParameter(f"invalid wait timeout {timeout}: it must be 0 or more seconds")


class Engine:
    """The container lifecycle engine over one database, runtime and host."""

    def __init__(self, saga: SagaContext, config: ConfigStore,
                 images: ImageStore | None = None, volumes: VolumeStore | None = None
                 ) -> None:
        self.saga = saga
        self.config = config
        self.images = images
        self.volumes = volumes
        # One lock per container, while someone holds or waits for it (counted): the table
        # never grows with the containers that came and went.
        self._locks: dict[str, _ContainerLock] = {}
        # The stops waiting on each container, under that container's lock.
        self._pending_stops: dict[str, list[_PendingStop]] = {}
        # Set when the daemon stops: the waits that hold no lock (a stop's, a kill's, the
        # exit monitor's) end within a slice, so that the daemon's grace period is enough.
        self.closing = threading.Event()
        self._locks_guard = threading.Lock()

    def close(self) -> None:
        """Finish the host's deferred work and close the database."""
        self.closing.set()
        try:
            self.saga.host.drain()
        finally:
            self.saga.db.close()

    # -- lookup and locking --------------------------------------------------------------
    def resolve(self, reference: str) -> ContainerRecord:
        """Find a live container by exact ID, exact name, then unique ID prefix.

        Raises InvalidParameter (empty reference, ambiguous prefix) or ContainerNotFound.
        """
        if not reference:
            raise InvalidParameter('invalid name or ID supplied: ""')
        with self.saga.db.read(snapshot=False) as reader:
            record = reader.container(reference)
            if record is not None and record.state is not ContainerState.REMOVED:
                return record
            record = reader.live_container_by_name(reference.removeprefix("/"))
            if record is not None:
                return record
            matches = reader.live_containers_with_prefix(reference)
        if len(matches) > 1:
            raise InvalidParameter(f"multiple IDs found with provided prefix: {reference}")
        if not matches:
            raise ContainerNotFound(reference)
        return matches[0]

    def reload_record(self, container_id: str) -> ContainerRecord:
        """The stored container. Raises ContainerNotFound (also for a removed one)."""
        with self.saga.db.read(snapshot=False) as reader:
            record = reader.container(container_id)
        if record is None or record.state is ContainerState.REMOVED:
            raise ContainerNotFound(container_id)
        return record

    @contextmanager
    def _locked(self, container_id: str) -> Iterator[None]:
        with self._locks_guard:
            entry = self._locks.get(container_id)
            if entry is None:
                entry = self._locks[container_id] = _ContainerLock()
            entry.users += 1
        try:
            with entry.lock:
                yield
        finally:
            with self._locks_guard:
                entry.users -= 1
                if entry.users == 0:
                    del self._locks[container_id]

    # -- create --------------------------------------------------------------------------
    def create(self, config: ContainerConfig, *, context: JournalContext = API
               ) -> ContainerRecord:
        """Create a container (``created``). Raises InvalidParameter or NameInUseConflict."""
        validate(config)
        snapshot = self.config.current()
        name = normalize_name(config.name) if config.name else generate_name()
        runtime = config.runtime or snapshot.default_runtime
        snapshot.resolve_runtime(runtime)
        stored = config.stored()
        anonymous = []
        for index, spec in enumerate(stored["mounts"]):
            if anonymous_destination(spec) is not None:  # named now, for good
                anonymous.append(os.urandom(32).hex())
                stored["mounts"][index] = f"{anonymous[-1]}:{spec}"
        if anonymous:
            stored["anonymous_volumes"] = anonymous
        # An image cannot be removed between its lookup here and the container's insert (its
        # removal checks for users under the same lock).
        with self.images.in_use() if self.images is not None else contextlib.nullcontext():
            if self.images is not None:
                stored["image_digest"] = self.images.resolve(config.image).digest
            validate_command(config)  # moby: after the image lookup
            if self.images is not None and config.working_dir:
                # moby makes the working directory at create, in the container's filesystem
                # (here the image's: the container has no layer of its own yet).
                refused = working_dir_error(self.images.rootfs(stored["image_digest"]),
                                            config.working_dir)
                if refused is not None:
                    raise System(refused)
            if self.images is not None:  # moby: after the working directory
                for spec in config.mounts:
                    destination = anonymous_destination(spec)
                    refused = None if destination is None else volume_over_file_error(
                        self.images.rootfs(stored["image_digest"]), destination)
                    if refused is not None:
                        raise System(refused)
            container_id = hashlib.sha256(os.urandom(32)).hexdigest()
            now = self.saga.clock()
            record = ContainerRecord(
                id=container_id, name=name, state=ContainerState.CREATED, version=0, last_seq=0,
                image=config.image, config=stored, created_at=now,
                auto_remove=config.auto_remove, restart_policy=config.restart_policy.name or "no",
                restart_max_retries=config.restart_policy.maximum_retry_count, runtime=runtime,
            )
            history = HistoryDraft(event=Event.CREATE.value, to_state=ContainerState.CREATED)
            with self.saga.db.read() as reader:
                owner = reader.live_container_by_name(name)
                # moby's generateAndReserveName: draws with a digit after the first, then the
                # short ID.
                attempt = 1
                while (owner is not None and not config.name
                       and attempt <= GENERATED_NAME_ATTEMPTS):
                    name = (generate_name(attempt) if attempt < GENERATED_NAME_ATTEMPTS
                            else container_id[:12])
                    owner = reader.live_container_by_name(name)
                    attempt += 1
            if owner is not None:
                raise NameInUseConflict(name, owner_id=owner.id)
            record = record.replace(name=name)
            if self.volumes is not None:  # moby's registerMountPoints: made at create
                self.volumes.provide(stored["mounts"], anonymous)
            try:
                with self.saga.db.write() as writer:
                    record = writer.insert_container(record, history, context, now)
            except Exception as exc:
                if self.volumes is not None:
                    self.volumes.withdraw(anonymous)
                if "UNIQUE" in str(exc) and "name" in str(exc):
                    raise NameInUseConflict(name, owner_id="(concurrent create)") from None
                raise System(f"cannot create container: {exc}") from exc
        self.saga.events.committed()
        self.saga.events.publish(ContainerEvent(record.id, record.name, "create", now))
        return record

    # -- start ---------------------------------------------------------------------------
    def start(self, reference: str, *, checkpoint: str = "", checkpoint_dir: str = "",
              context: JournalContext = API) -> bool:
        """Start a container; return False if a concurrent start had already started it.

        Raises (spec 2, phases A and B): InvalidParameter (checkpoint without experimental
        mode, bad reference, unknown runtime), ContainerNotFound, Conflict (paused, marked for
        removal), NotModified (already started), Forbidden (checkpoint dir); then the start
        error of phase C after compensation.
        """
        snapshot = self.config.current()
        if checkpoint and not snapshot.experimental:
            raise InvalidParameter("checkpoint is only supported in experimental mode")
        record = self.resolve(reference)
        if record.state not in (ContainerState.STARTING, ContainerState.ROLLING_BACK):
            # moby's validateState (A4). A start in flight is not refused here: like moby's
            # second start it waits for the container lock below.
            advance(record.state, Event.BEGIN_START, container_id=record.id)
        snapshot.resolve_runtime(record.runtime)
        return self._start_locked(record.id, snapshot, context, checkpoint_dir=checkpoint_dir)

    def _start_locked(self, container_id: str, snapshot: ConfigSnapshot,
                      context: JournalContext, *, checkpoint_dir: str = "") -> bool:
        """moby's containerStart: under the lock, nothing to do if it runs (a concurrent
        start won, B2; paused counts as running); an exit left half handled is finished
        first."""
        with self._locked(container_id):
            record = self.reload_record(container_id)
            if record.state is ContainerState.EXITING:
                record = self._resume_exit(record, context)
            if record.state in (ContainerState.RUNNING, ContainerState.RESTARTING,
                                ContainerState.PAUSED):
                return False  # a concurrent start won (moby's B2)
            if record.state in (ContainerState.REMOVING, ContainerState.DEAD,
                                ContainerState.REMOVED):
                advance(record.state, Event.BEGIN_START, container_id=record.id)
            if checkpoint_dir:
                raise Forbidden("custom checkpointdir is not supported")
            saga = StartSaga(self.saga, snapshot, context,
                             lambda cid: self._auto_remove(cid, context))
            saga.run(record)
        return True

    def _auto_remove(self, container_id: str, context: JournalContext) -> None:
        self.remove_now(self.reload_record(container_id), volumes=True, context=context)

    # -- stop, kill, exits ---------------------------------------------------------------
    def stop(self, reference: str, *, timeout: int | None = None, signal: int | None = None,
             context: JournalContext = API) -> ContainerRecord:
        """Stop a running container: signal, wait, SIGKILL fallback; an auto-remove container
        is then removed (its record, exited, is returned).

        Raises NotModified ``Container is already stopped``, System ``cannot stop container``.
        """
        return self._stop(reference, timeout=timeout, signal=signal, context=context,
                          auto_remove=True)

    def _stop(self, reference: str, *, timeout: int | None, signal: int | None,
              context: JournalContext, auto_remove: bool) -> ContainerRecord:
        if signal is not None and not 0 < signal < 65:  # checked before anything is journaled
            raise InvalidParameter(f"the linux daemon does not support signal {signal}")
        record = self.resolve(reference)
        with self._locked(record.id):
            record = self.reload_record(record.id)
            if record.state not in _LIVE:
                raise NotModified("Container is already stopped")
            stop_signal = signal or record.config.get("stop_signal") or signals.SIGTERM
            if timeout is None:
                timeout = record.config.get("stop_timeout")
            wait_seconds = float(DEFAULT_STOP_TIMEOUT if timeout is None else timeout)
            try:
                record = self._signal(record, stop_signal, context, manual_stop=True,
                                      stop_timeout=wait_seconds, restarting=not auto_remove)
            except Exception as exc:
                raise System(f"cannot stop container: {record.name}: {exc}") from exc
            # Whoever records this run's exit while the stop waits (the exit monitor, a
            # kill, rm -f) records it as stopped, and a restart's exit is not auto-removed.
            pending = _PendingStop(record.resources_operation_id, restarting=not auto_remove)
            self._pending_stops.setdefault(record.id, []).append(pending)
        # As moby, the wait holds no lock: a kill or an rm -f meanwhile goes through. The
        # auto-remove of an ``--rm`` container is done by whoever records the exit.
        try:
            record = self._stop_wait(record, pending, stop_signal, wait_seconds, context)
        except Exception as exc:
            raise System(f"cannot stop container: {record.name}: {exc}") from exc
        finally:
            with self._locked(record.id):
                stops = self._pending_stops.get(record.id, [])
                if pending in stops:
                    stops.remove(pending)
                if not stops:
                    self._pending_stops.pop(record.id, None)
                if not pending.counted:
                    record = self._journal_stop(self._latest(record.id), context)
        return record

    def _journal_stop(self, record: ContainerRecord, context: JournalContext
                      ) -> ContainerRecord:
        """The ``stop`` of a stop whose run's exit was recorded without it (a second stop of
        the same run: moby logs one per call). The caller holds the lock."""
        if record.state is not ContainerState.EXITED:
            return record  # removed (its stop is in its history), or running again
        journal = OperationJournal(self.saga, record, context)
        journal.transition(Event.STOP)
        record = journal.commit()
        self.saga.events.publish(ContainerEvent(record.id, record.name, "stop",
                                                self.saga.clock()))
        return record

    def _stop_wait(self, record: ContainerRecord, pending: _PendingStop, stop_signal: int,
                   wait_seconds: float, context: JournalContext) -> ContainerRecord:
        """Wait for the run to end, SIGKILL it after ``wait_seconds`` (never if negative);
        return the container once its exit and the ``stop`` are journaled."""
        run = pending.run
        status = self._wait(record, wait_seconds if wait_seconds >= 0 else None,
                            interruptible=True)
        if status is None:
            with self._locked(record.id):
                current = self._latest(record.id)
                if self._same_run(current, run):
                    log.info("Container %s failed to exit within %ss of signal %d - using the "
                             "force", record.id[:12], wait_seconds, stop_signal)
                    # Its row owes nothing more, yet says a stop's: a daemon dying before the
                    # signal leaves recovery to send it (a stop due at once).
                    record = self._signal(current, signals.SIGKILL, context, manual_stop=True,
                                          stop_timeout=0, restarting=pending.restarting)
                    killed = True
                else:  # the run ended meanwhile (a kill, rm -f): nothing to force
                    killed = False
            if killed:
                status = self._await_kill(record)
        return self._exit_of_run(record, run, status, context)

    def _await_kill(self, record: ContainerRecord) -> TaskState:
        """The exit of a SIGKILLed task (moby waits 10 s). Raises System if none comes."""
        status = self._wait(record, KILL_TIMEOUT, interruptible=True)
        if status is None:
            raise System("tried to kill container, but did not receive an exit event")
        return status

    def _exit_of_run(self, record: ContainerRecord, run: int | None, status: TaskState | None,
                     context: JournalContext) -> ContainerRecord:
        """After a wait without the lock: record ``status`` as the exit of the run ``run`` if
        it is still live; else the container as whoever came first left it."""
        with self._locked(record.id):
            current = self._latest(record.id)
            if current.state is ContainerState.EXITING:
                current = self._resume_exit(current, context)  # a handling that failed
            if status is not None and self._same_run(current, run):
                return self._record_exit(current, status, context)
            return current

    @staticmethod
    def _same_run(record: ContainerRecord, run: int | None) -> bool:
        """Whether ``record`` is still live in the run that the start ``run`` began."""
        return record.state in _LIVE and record.resources_operation_id == run

    def kill(self, reference: str, *, signal: int = signals.SIGKILL,
             context: JournalContext = API) -> ContainerRecord:
        """Send ``signal``; for SIGKILL wait 10 s for the exit. Raises Conflict if not
        running, the runtime's error as ``Cannot kill container <id>: <cause>``, System if a
        SIGKILL brought no exit."""
        if signal <= 0 or signal >= 65:
            raise InvalidParameter(f"the linux daemon does not support signal {signal}")
        record = self.resolve(reference)
        with self._locked(record.id):
            record = self.reload_record(record.id)
            if record.state not in _LIVE:
                if signal != signals.SIGKILL:  # moby's killWithSignal words it in lower case
                    raise Conflict(f"container {record.id} is not running")
                advance(record.state, Event.KILL, container_id=record.id)
            run = record.resources_operation_id
            record = self._signal(record, signal, context, manual_stop=False)
            if signal != signals.SIGKILL:
                status = self._wait(record, 0.0)
                return record if status is None else self._record_exit(record, status, context)
        # As moby, the wait holds no lock: a stop or an rm -f meanwhile goes through.
        # moby then kill(2)s the pid itself (containerd may not have delivered the signal):
        # runc kill already signalled the init directly, and a second kill of a pid whose
        # process may be gone could hit another process.
        return self._exit_of_run(record, run, self._await_kill(record), context)

    def _signal(self, record: ContainerRecord, signal: int, context: JournalContext, *,
                manual_stop: bool, stop_timeout: float | None = None,
                restarting: bool = False) -> ContainerRecord:
        """Journal the ``kill`` (a stop's carries its timeout: the SIGKILL it owes is due
        then, and recovery resumes a stop, or a restart, the daemon died in), then signal
        the task."""
        journal = OperationJournal(self.saga, record, context)
        changes: dict[str, Any] = {"has_been_manually_stopped": True} if manual_stop else {}
        attributes: dict[str, Any] = {"signal": signal}
        if stop_timeout is not None:
            attributes["stopTimeout"] = stop_timeout
            if restarting:
                attributes["restarting"] = True
        journal.transition(Event.KILL, attributes=attributes, **changes)
        record = journal.commit()
        binary = self._binary(record)
        finished = False
        try:
            self.saga.runtime.kill(record.id, signal, binary=binary)
        except NotFound as exc:
            # The task ended before its exit was recorded (containerd's and moby's "process
            # already finished"): the signal counts as sent, the exit is on its way to the wait
            # that follows, and nothing is resumed.
            log.debug("%s: kill: the task has already finished: %s", record.id[:12], exc)
            finished = True
        except Exception as exc:
            raise wrapped(exc, f"Cannot kill container {record.id}") from exc
        self.saga.events.publish(ContainerEvent(record.id, record.name, "kill", self.saga.clock(),
                                                (("signal", str(signal)),)))
        if record.state is ContainerState.PAUSED and not finished:
            # Deliver the signal: a frozen process cannot act on it. As in moby, the task is
            # resumed after signalling, and the container is running again (unpause).
            try:
                self.saga.runtime.resume(record.id, binary=binary)
            except Exception as exc:
                log.debug("resume after signal: %s", exc)
            else:
                journal = OperationJournal(self.saga, record, context)
                journal.transition(Event.UNPAUSE, attributes={"after_signal": signal})
                record = journal.commit()
                self.saga.events.publish(ContainerEvent(record.id, record.name, "unpause",
                                                        self.saga.clock()))
        return record

    def _resume_exit(self, record: ContainerRecord, context: JournalContext
                     ) -> ContainerRecord:
        with self.saga.db.read() as reader:
            exits = [operation for operation in reader.unfinished_operations()
                     if operation.container_id == record.id
                     and operation.kind == OperationKind.EXIT.value]
        if not exits:
            return record
        run = record.resources_operation_id
        restarting = any(stop.restarting for stop in self._pending_stops.get(record.id, [])
                         if stop.run == run)
        record = resume_exit(self.saga, record, exits[-1], context,
                             missing_exit_code=MISSING_TASK_EXIT)
        if not restarting:  # a restart's stop waits on it: never auto-removed (as _record_exit)
            self._remove_if_auto(record, context)
        return record

    def _record_exit(self, record: ContainerRecord, status: ExitStatus | TaskState,
                     context: JournalContext, *, auto_remove: bool = True) -> ContainerRecord:
        """moby's T8: record the exit of ``record``'s live run (a stop waiting on it makes it
        a stop's: moby's ``stop`` event follows the ``die``), then auto-remove unless a
        restart's stop is waiting (moby's HasBeenManuallyRestarted). The caller holds the
        lock."""
        stops = [stop for stop in self._pending_stops.get(record.id, [])
                 if stop.run == record.resources_operation_id]
        if isinstance(status, TaskState):
            status = self._exit_status(status)
        if stops:
            status = dataclasses.replace(status, stopped=True)
            stops[0].counted = True  # the others journal their own ``stop`` (moby: one each)
        record = handle_exit(self.saga, record, status, context)
        if auto_remove and not any(stop.restarting for stop in stops):
            self._remove_if_auto(record, context)
        return record

    def _remove_if_auto(self, record: ContainerRecord, context: JournalContext) -> None:
        """moby's deferred auto-remove after an exit (``--rm``): force, with volumes; a
        failure is only logged. A restart's own stop does not come here (moby's
        HasBeenManuallyRestarted)."""
        if not record.auto_remove or record.state is not ContainerState.EXITED:
            return
        try:
            self.remove_now(record, volumes=True, context=context)
        except Exception as exc:
            log.error("can't remove container %s: %s", record.id[:12], exc)

    def _wait(self, record: ContainerRecord, timeout: float | None, *,
              interruptible: bool = False) -> TaskState | None:
        """The task's exit, or None after ``timeout`` seconds (None: no limit).
        ``interruptible`` (a stop's or a kill's wait, in a worker the server's shutdown
        joins): in slices, raising Unavailable once the engine is closing. The exit
        monitor's waits are not: one supervisor request per running container, not one per
        slice, and its threads do not hold the daemon up."""
        if not interruptible:
            try:
                return self.saga.runtime.wait(record.id, binary=self._binary(record),
                                              timeout=1e9 if timeout is None else timeout)
            except NotFound:
                return TaskState(record.id, TaskStatus.STOPPED, exit_code=MISSING_TASK_EXIT,
                                 exited_at=self.saga.clock())
        deadline = None if timeout is None else time.monotonic() + timeout
        binary = self._binary(record)
        while True:
            left = WAIT_SLICE_SECONDS if deadline is None else deadline - time.monotonic()
            try:
                task = self.saga.runtime.wait(record.id, binary=binary,
                                              timeout=max(0.0, min(left, WAIT_SLICE_SECONDS)))
            except NotFound:
                return TaskState(record.id, TaskStatus.STOPPED, exit_code=MISSING_TASK_EXIT,
                                 exited_at=self.saga.clock())
            if task is not None or (deadline is not None and left <= WAIT_SLICE_SECONDS):
                return task
            if self.closing.is_set():
                raise Unavailable(SHUTTING_DOWN)

    def _exit_status(self, task: TaskState, *, stopped: bool = False) -> ExitStatus:
        code = MISSING_TASK_EXIT if task.exit_code is None else task.exit_code
        return ExitStatus(code, task.exited_at or self.saga.clock(), stopped)

    def _binary(self, record: ContainerRecord) -> str:
        """The runtime binary locked in at start (never the current configuration's)."""
        if record.runtime_binary:
            return record.runtime_binary
        return self.config.current().resolve_runtime(record.runtime).binary

    def wait(self, reference: str, *, timeout: float | None = None,
             context: JournalContext = MONITOR, removed: bool = True) -> ContainerRecord:
        """Block until the container is not running (Docker's ``wait``); return it, exited.

        With ``removed``, a container removed already answers with its last record (its exit:
        Docker's "removed" condition, which ``run --rm`` waits on); without, it is not found,
        as for Docker's ``wait`` (removed during the wait, it still answers).

        An exit is recorded only for the run it ended: if the container was stopped and
        started again meanwhile (a restart), this waits for the new run instead (Docker's
        waiter would have returned at the stop; the exit monitor must go on watching).
        Raises Deadline if ``timeout`` seconds pass first, InvalidParameter for a negative
        or NaN one."""
        check_wait_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            record = self.resolve(reference)
        except ContainerNotFound:
            if not removed:
                raise
            return self._removed(reference)  # auto-removed already: Docker's "removed" wait
        if record.state is ContainerState.EXITING:
            # Its exit is being handled (under the lock): the exit code is not written yet.
            with self._locked(record.id):
                record = self._latest(record.id)
                if record.state is ContainerState.EXITING:
                    # Nobody handles it (that one holds the lock): its handling failed half
                    # way (a commit refused). Finish it from the journal, as recovery would.
                    record = self._resume_exit(record, context)
        while record.state in _LIVE:
            run = record.resources_operation_id  # the start that made this run live
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            task = self._wait(record, remaining)
            if task is None:
                raise Deadline(still_running(record.id, timeout))
            with self._locked(record.id):
                record = self._latest(record.id)  # removed meanwhile: its last record
                if record.state is ContainerState.EXITING:
                    record = self._resume_exit(record, context)  # a handling that failed
                if record.state in _LIVE and record.resources_operation_id == run:
                    return self._record_exit(record, task, context)
        return record

    def wait_next_exit(self, reference: str, *, timeout: float | None = None,
                       context: JournalContext = MONITOR,
                       gone: Callable[[], bool] | None = None) -> ContainerRecord:
        """Docker's ``next-exit`` wait: block until the container's first exit after this
        call (one not running now must be started first), or its removal; return it with
        that exit's code. Raises ContainerNotFound, Deadline after ``timeout`` seconds,
        InvalidParameter for a negative or NaN one, Unavailable once the engine closes,
        Cancelled once ``gone()`` (asked every slice) says the waiter went away."""
        check_wait_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        record = self.resolve(reference)
        changed = threading.Event()  # set after every commit: the journal may hold the exit
        unwatch = self.saga.events.watch(changed.set)
        try:
            with self.saga.db.read(snapshot=False) as reader:
                rows = reader.history(record.id)
            mark = rows[-1].event_seq if rows else 0
            while True:
                changed.clear()  # before reading: a commit from here on wakes the next wait
                with self.saga.db.read(snapshot=False) as reader:
                    rows = reader.history(record.id, since=mark)
                for row in rows:
                    if row.event == Event.DIE.value:  # its code, whatever came after it
                        code = (row.attributes or {}).get("exitCode", MISSING_TASK_EXIT)
                        return self._latest(record.id).replace(exit_code=int(code))
                    if row.event == Event.DESTROY.value:  # moby's removal wakes it too
                        return self._latest(record.id)
                    mark = row.event_seq
                left = WAIT_SLICE_SECONDS if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    raise Deadline(f"container {record.id} did not exit within {timeout:g}s")
                if self.closing.is_set():
                    raise Unavailable(SHUTTING_DOWN)
                if gone is not None and gone():
                    raise Cancelled(f"nobody waits for container {record.id} any more")
                current = self._latest(record.id)
                if current.state in _LIVE:
                    # Running: waiting on its task records the exit (with or without the
                    # daemon's exit monitor), and the journal then holds it.
                    with contextlib.suppress(Deadline):
                        self.wait(record.id, timeout=min(left, WAIT_SLICE_SECONDS),
                                  context=context)
                else:
                    changed.wait(min(left, WAIT_SLICE_SECONDS))
        finally:
            unwatch()

    def _latest(self, container_id: str) -> ContainerRecord:
        """The stored container, or its last record if it was removed (never raises for a
        container that existed)."""
        try:
            return self.reload_record(container_id)
        except ContainerNotFound:
            return self._removed(container_id)

    def _removed(self, container_id: str) -> ContainerRecord:
        """The last record of a removed container, by its exact ID (its exit code stays).
        Raises ContainerNotFound."""
        with self.saga.db.read(snapshot=False) as reader:
            record = reader.container(container_id)
        if record is None or record.state is not ContainerState.REMOVED:
            raise ContainerNotFound(container_id)
        return record

    def reap(self, *, context: JournalContext = MONITOR) -> int:
        """Record the exit of every live container whose task stopped or vanished.

        Returns how many exits were recorded.
        """
        with self.saga.db.read() as reader:
            live = reader.containers_in(_LIVE)
        handled = 0
        for candidate in live:
            with self._locked(candidate.id):
                try:
                    record = self.reload_record(candidate.id)
                except NotFound:
                    continue
                if record.state not in _LIVE:
                    continue
                task = self._wait(record, 0.0)
                if task is None:
                    continue
                self._record_exit(record, task, context)
                handled += 1
        return handled

    def restart(self, reference: str, *, timeout: int | None = None, signal: int | None = None,
                context: JournalContext = API) -> ContainerRecord:
        """Stop (if running: with ``signal``, else its stop signal) then start, as ``docker
        restart``. Raises ContainerNotFound;
        any later error as moby words it, ``Cannot restart container <reference>: <cause>``,
        unclassified (moby's fmt.Errorf drops the class: always a 500)."""
        record = self.resolve(reference)
        try:
            if record.state in _LIVE:  # moby's HasBeenManuallyRestarted: no auto-remove here
                with contextlib.suppress(NotModified):  # it ended meanwhile: start it
                    self._stop(record.id, timeout=timeout, signal=signal, context=context,
                               auto_remove=False)
            # moby's containerRestart calls containerStart itself: no API-level state check
            # (a concurrent restart's start, or an exit still being recorded, is no error).
            self._start_locked(record.id, self.config.current(), context)
        except Exception as exc:
            cause = exc.message if isinstance(exc, BerthError) else str(exc)
            raise Unknown(f"Cannot restart container {reference}: {cause}") from exc
        return self._journal_restart(record.id, context)

    def _journal_restart(self, container_id: str, context: JournalContext
                         ) -> ContainerRecord:
        """moby's ``restart`` event (T25), once the start succeeded: not for a container
        being removed meanwhile (its ``destroy`` says what became of it)."""
        with self._locked(container_id):
            try:
                record = self.reload_record(container_id)
                journal = OperationJournal(self.saga, record, context)
                journal.transition(Event.RESTART)
            except BerthError:  # removed meanwhile (an --rm that exited), or being removed
                return self._latest(container_id)
            record = journal.commit()
        self.saga.events.publish(ContainerEvent(record.id, record.name, "restart",
                                                self.saga.clock()))
        return record

    # -- pause ---------------------------------------------------------------------------
    def pause(self, reference: str, *, context: JournalContext = API) -> ContainerRecord:
        """Freeze a running container. Raises Conflict (not running, paused, restarting)."""
        return self._freeze(reference, Event.PAUSE, context)

    def unpause(self, reference: str, *, context: JournalContext = API) -> ContainerRecord:
        """Thaw a paused container. Raises Conflict (not paused, not running)."""
        return self._freeze(reference, Event.UNPAUSE, context)

    def _freeze(self, reference: str, event: Event, context: JournalContext
                ) -> ContainerRecord:
        record = self.resolve(reference)
        with self._locked(record.id):
            record = self.reload_record(record.id)
            journal = OperationJournal(self.saga, record, context)
            journal.transition(event)
            binary = self._binary(record)
            verb = "pause" if event is Event.PAUSE else "unpause"
            try:
                if event is Event.PAUSE:
                    self.saga.runtime.pause(record.id, binary=binary)
                else:
                    self.saga.runtime.resume(record.id, binary=binary)
            except Exception as exc:
                raise System(f"cannot {verb} container {record.id}: {exc}") from exc
            record = journal.commit()
        self.saga.events.publish(ContainerEvent(record.id, record.name, verb, self.saga.clock()))
        return record

    # -- remove --------------------------------------------------------------------------
    def remove(self, reference: str, *, force: bool = False, volumes: bool = False,
               context: JournalContext = API) -> ContainerRecord:
        """Remove a container (``rm``; ``force`` kills a running one first).

        Raises Conflict (running without force), RemovalInProgressConflict, System.
        """
        record = self.resolve(reference)
        with self._locked(record.id):
            record = self.reload_record(record.id)
            if record.state in _LIVE and force:
                self._signal(record, signals.SIGKILL, context, manual_stop=False)
                status = self._wait(record, FORCE_REMOVE_TIMEOUT)
                if status is None:
                    raise System(f"Could not kill running container {record.id}, cannot "
                                 "remove - tried to kill container, but did not receive an "
                                 "exit event")
                record = self._record_exit(self.reload_record(record.id), status, context,
                                           auto_remove=False)  # removed just below
            journal = begin_removal(self.saga, record, volumes=volumes,
                                    journal_context=context)
        # The lock is released: while the files go, the container reads ``removing`` and
        # every other operation on it is refused (a second rm gets "already in progress").
        removed = finish_removal(journal, volumes=volumes)
        self.collect(removed, volumes=volumes)
        return removed

    def remove_now(self, record: ContainerRecord, *, volumes: bool,
                   context: JournalContext) -> None:
        """Remove a container that is not running, the caller holding its lock (or alone, as
        recovery is). Raises the removal's errors."""
        journal = begin_removal(self.saga, record, volumes=volumes, journal_context=context)
        self.collect(finish_removal(journal, volumes=volumes), volumes=volumes)

    def collect(self, removed: ContainerRecord, *, volumes: bool) -> None:
        """What goes with a removed container: the files of an image deleted while it used
        them (``rmi -f``), and with ``volumes`` (``rm -v``, ``--rm``) its anonymous volumes
        no other container uses. Never fails the removal: the next open reclaims the image,
        and ``volume prune`` the volumes."""
        if self.images is not None:
            try:
                self.images.collect(str(removed.config.get("image_digest", "")))
            except OSError as exc:
                log.error("%s: the files of its deleted image stay: %s", removed.id[:12], exc)
        if volumes and self.volumes is not None:
            for name in removed.config.get("anonymous_volumes") or []:
                try:
                    self.volumes.remove(str(name), force=True)
                except (Conflict, OSError) as exc:
                    log.info("%s: its anonymous volume %s stays: %s", removed.id[:12],
                             str(name)[:12], exc)

    # -- queries -------------------------------------------------------------------------
    def inspect(self, reference: str) -> ContainerRecord:
        return self.resolve(reference)

    def list_containers(self, *, all: bool = False) -> list[ContainerRecord]:
        with self.saga.db.read() as reader:
            records = reader.containers()
        if all:
            return records
        return [r for r in records if r.state in (*_LIVE, ContainerState.RESTARTING,
                                                   ContainerState.EXITING)]

    def history(self, reference: str) -> list[HistoryRecord]:
        record = self.resolve(reference)
        with self.saga.db.read() as reader:
            return reader.history(record.id)


__all__ = ["API", "MONITOR", "Engine"]
