"""Recovery at daemon start: finish or undo every operation a crash interrupted, then reconcile
the database with what the runtime really has.

Cases, in this order (each container on its own; a failure is logged and the next goes on):
1. a start in progress: roll forward if every acquiring step began and the runtime says the
   task runs, or was started and stopped (its exit is then recorded by 6); otherwise
   compensate it as a failed start (error "start interrupted ...");
2. a start compensating: run the Cleanup sub-steps not yet finished, roll back, auto-remove;
3. a failed start whose auto-remove had not run: run it;
4. an exit cleanup in progress: finish the sub-steps not yet finished, record ``die``;
5. a removal in progress: finish it (the ``-v`` choice is journaled);
6. every ``running`` or ``paused`` container: a task that vanished exits with 255, a stopped
   task exits with its own code and time, a paused/running mismatch takes the runtime's word.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import threading
from collections.abc import Mapping

from engine import steps
from engine.cleanup import held_handles
from engine.errors import NotFound, NotModified, System
from engine.exit_code import EXIT_UNKNOWN
from engine.lifecycle import Event
from engine.removal import finish_removal
from engine.runtime import TaskStatus
from engine.saga import OperationJournal
from engine.service import MISSING_TASK_EXIT, Engine
from engine.start import (
    STEP_INDEX,
    compensate,
    initial_health,
    resume_compensation,
    run_auto_remove,
    running_fields,
)
from engine.state import (
    Actor,
    ContainerState,
    OperationKind,
    OperationStatus,
    StepKind,
    StepStatus,
)
from engine.store import (
    ContainerRecord,
    HistoryRecord,
    JournalContext,
    OperationRecord,
    StepDraft,
    StepRecord,
)
from engine.termination import ExitStatus, handle_exit, resume_exit

log = logging.getLogger("berth.recovery")
# How long an exit the supervisor has not recorded yet is waited for (it records one within
# moby's 10 s log drain of the reap).
EXIT_RECORD_SECONDS = 12.0

RECOVERY = JournalContext(Actor.RECOVERY)
_UNFINISHED = frozenset({StepStatus.PENDING, StepStatus.COMPENSATING, StepStatus.RUNNING})


@dataclasses.dataclass
class RecoveryReport:
    rolled_forward: list[str] = dataclasses.field(default_factory=list)
    compensated: list[str] = dataclasses.field(default_factory=list)
    exits: list[str] = dataclasses.field(default_factory=list)
    removals: list[str] = dataclasses.field(default_factory=list)
    reconciled: list[str] = dataclasses.field(default_factory=list)
    stops: list[str] = dataclasses.field(default_factory=list)  # resumed, in the background
    failures: list[str] = dataclasses.field(default_factory=list)


def _interrupted_stop(history: list[HistoryRecord]) -> tuple[int, int, bool] | None:
    """The signal, the SIGKILL deadline (ms) and whether it was a restart's, of the live
    run's stop, if its last signal was a stop's and no exit followed it."""
    for row in reversed(history):
        if row.event in (Event.START.value, Event.DIE.value):
            return None  # the run began after any stop, or it has ended
        if row.event == Event.KILL.value:
            attributes = row.attributes or {}
            if "stopTimeout" not in attributes:
                return None  # a kill's: nothing owed
            timeout = float(attributes["stopTimeout"])
            if timeout < 0:
                return None  # a stop that never escalates
            return (int(attributes.get("signal", 15)), row.at + int(timeout * 1000),
                    bool(attributes.get("restarting")))
    return None


class Recovery:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._saga = engine.saga

    def run(self) -> RecoveryReport:
        report = RecoveryReport()
        with self._saga.db.read() as reader:
            work = [
                (operation, reader.container(operation.container_id), reader.steps(operation.id))
                for operation in reader.unfinished_operations()
            ]
        for operation, record, rows in work:
            if record is None:
                continue
            try:
                self._resume(operation, record, rows, report)
            except Exception as exc:
                log.exception("recovery of %s %s failed", operation.kind, record.id[:12])
                report.failures.append(f"{record.id}: {operation.kind}: {exc}")
        self._reconcile_live(report)
        self._auto_remove(report)
        self._resume_stops(report)
        return report

    def _resume_stops(self, report: RecoveryReport) -> None:
        """A stop the daemon died in (its ``kill`` row, with the stop's timeout, is the last
        signal of the live run) still owes its SIGKILL: it is stopped again, in the
        background, with what was left of its timeout (none: at once). Docker's stop lives
        in the daemon's memory and is lost with it."""
        with self._saga.db.read() as reader:
            live = reader.containers_in((ContainerState.RUNNING, ContainerState.PAUSED))
            pending = [(record, stop) for record in live if record.has_been_manually_stopped
                       and (stop := _interrupted_stop(reader.history(record.id))) is not None]
        now = self._saga.clock()
        for record, (signal, deadline, restarting) in pending:
            remaining = max(0, math.ceil((deadline - now) / 1000))
            log.warning("%s: resuming the %s a daemon restart interrupted (SIGKILL in %d s)",
                        record.id[:12], "restart" if restarting else "stop", remaining)
            report.stops.append(record.id)
            threading.Thread(target=self._stop_again,
                             args=(record.id, signal, remaining, restarting),
                             name=f"stop-{record.id[:12]}", daemon=True).start()

    def _stop_again(self, container_id: str, signal: int, timeout: int,
                    restarting: bool) -> None:
        try:
            if restarting:
                self._engine.restart(container_id, timeout=timeout, signal=signal,
                                     context=RECOVERY)
            else:
                self._engine.stop(container_id, timeout=timeout, signal=signal,
                                  context=RECOVERY)
        except NotModified:
            pass  # it exited meanwhile
        except Exception as exc:
            log.error("%s: the resumed stop failed: %s", container_id[:12], exc)

    def _auto_remove(self, report: RecoveryReport) -> None:
        """moby's restore, phase 7: an auto-remove container that exited is removed (an exit
        whose auto-remove a crash interrupted, a task that ended meanwhile). moby removes a
        created one too; it is kept here: it never ran, and its user may still start it."""
        with self._saga.db.read() as reader:
            candidates = reader.containers_in((ContainerState.EXITED,))
        for record in candidates:
            if not record.auto_remove:
                continue
            try:
                self._engine.remove_now(record, volumes=True, context=RECOVERY)
                report.removals.append(record.id)
            except Exception as exc:
                log.error("can't remove container %s: %s", record.id[:12], exc)
                report.failures.append(f"{record.id}: auto-remove: {exc}")

    def _resume(self, operation: OperationRecord, record: ContainerRecord,
                rows: list[StepRecord], report: RecoveryReport) -> None:
        journal = OperationJournal(self._saga, record, RECOVERY, operation.id)
        remove = self._remover
        if operation.kind == OperationKind.START.value:
            forward = [row for row in rows if row.kind == StepKind.FORWARD.value]
            held = held_handles(forward)
            if operation.status == OperationStatus.IN_PROGRESS.value:
                if self._roll_forward(journal, forward, held):
                    report.rolled_forward.append(record.id)
                    return
                failed, recorded = _interrupted_step(forward)
                # The last step journaled as begun: its outcome, and any bookkeeping step
                # after it, ride with the next commit, which never came (helper-44).
                error = System(f"start interrupted by a daemon restart at step {failed} "
                               "or just after it")
                exit_code = record.exit_code if record.exit_code != 0 else EXIT_UNKNOWN
                compensate(journal, failed, error, exit_code, held, remove,
                           step_recorded=recorded)
            elif operation.status == OperationStatus.COMPENSATING.value:
                unfinished = {row.name for row in rows
                              if row.kind == StepKind.COMPENSATION.value
                              and row.status in _UNFINISHED}
                resume_compensation(journal, held, remove, unfinished)
            elif record.state is not ContainerState.REMOVED:
                run_auto_remove(journal, remove)
            else:
                journal.update_operation(finished_at=self._saga.clock())
                journal.commit()
            report.compensated.append(record.id)
        elif operation.kind == OperationKind.EXIT.value:
            resume_exit(self._saga, record, operation, RECOVERY,
                        missing_exit_code=MISSING_TASK_EXIT)
            report.exits.append(record.id)
        elif operation.kind == OperationKind.REMOVE.value:
            volumes = bool((operation.params or {}).get("volumes", False))
            pending = frozenset(row.name for row in rows if row.status in _UNFINISHED)
            self._engine.collect(finish_removal(journal, volumes=volumes, pending=pending),
                                 volumes=volumes)
            report.removals.append(record.id)

    def _remover(self, container_id: str) -> None:
        record = self._engine.reload_record(container_id)
        self._engine.remove_now(record, volumes=True, context=RECOVERY)

    def _roll_forward(self, journal: OperationJournal, forward: list[StepRecord],
                      held: Mapping[str, Mapping[str, object]]) -> bool:
        by_name = {row.name: row for row in forward}
        begun = all(name in by_name for name in steps.ACQUIRING_STEPS)
        task = held.get("task")
        if not begun or task is None:
            return False
        binary = str(task["binary"])
        try:
            state = self._saga.runtime.state(journal.record.id, binary=binary)
        except NotFound:
            return False
        # Stopped after it was started (the runtime tells: runc start removed its exec fifo):
        # it ran, so it is rolled forward and its exit (code and time, from the supervisor) is
        # recorded with the running containers' (case 6). Stopped but never started (killed
        # while created, the daemon down before or during runc start): a failed start.
        ran = state.status is TaskStatus.STOPPED and state.started is True
        if state.status is not TaskStatus.RUNNING and not ran:
            return False
        now = self._saga.clock()
        start_task = by_name[steps.START_TASK]
        if start_task.status != StepStatus.DONE.value:
            journal.record_steps(StepDraft(start_task.step_index, StepKind.FORWARD,
                                           steps.START_TASK, StepStatus.DONE, finished_at=now))
        for name in steps.START_STEPS[STEP_INDEX[steps.MARK_RUNNING]:]:
            if name not in by_name:
                journal.record_steps(StepDraft(STEP_INDEX[name], StepKind.FORWARD, name,
                                            StepStatus.DONE, started_at=now, finished_at=now))
                journal.transition(Event.START_STEP, step=name)
        # The task started right after its start_task intent was committed, not now.
        started_at = start_task.started_at or now
        journal.transition(Event.START, runtime_binary=binary,
                           health_status=initial_health(journal.record), **running_fields(
            journal.record, pid=state.pid, started_at=started_at,
            operation_id=journal.operation_id))
        journal.update_operation(status=OperationStatus.SUCCEEDED.value, finished_at=now,
                                 runtime_binary=binary)
        journal.commit()
        return True

    def _reconcile_live(self, report: RecoveryReport) -> None:
        with self._saga.db.read() as reader:
            live = reader.containers_in((ContainerState.RUNNING, ContainerState.PAUSED))
        for record in live:
            try:
                self._reconcile(record, report)
            except Exception as exc:
                log.exception("failed to restore container %s", record.id[:12])
                report.failures.append(f"{record.id}: reconcile: {exc}")

    def _reconcile(self, record: ContainerRecord, report: RecoveryReport) -> None:
        binary = record.runtime_binary or ""
        now = self._saga.clock()
        try:
            task = self._saga.runtime.state(record.id, binary=binary)
        except NotFound:
            handle_exit(self._saga, record, ExitStatus(MISSING_TASK_EXIT, now), RECOVERY)
            report.reconciled.append(record.id)
            return
        if task.status is TaskStatus.STOPPED:
            if task.exit_code is None:
                # Stopped, and no exit recorded yet: its supervisor may still be writing it
                # (reaped, output draining). Asked for it, it answers at once if it never
                # knew the task (then 255), else once it is recorded.
                with contextlib.suppress(NotFound):
                    recorded = self._saga.runtime.wait(record.id, binary=binary,
                                                       timeout=EXIT_RECORD_SECONDS)
                    if recorded is not None and recorded.exit_code is not None:
                        task = recorded
            code = MISSING_TASK_EXIT if task.exit_code is None else task.exit_code
            handle_exit(self._saga, record, ExitStatus(code, task.exited_at or now), RECOVERY)
            report.reconciled.append(record.id)
            return
        wanted = None
        if record.state is ContainerState.PAUSED and task.status is TaskStatus.RUNNING:
            wanted = Event.UNPAUSE
        elif record.state is ContainerState.RUNNING and task.status is TaskStatus.PAUSED:
            wanted = Event.PAUSE
        if wanted is not None:
            journal = OperationJournal(self._saga, record, RECOVERY)
            journal.transition(wanted)
            journal.commit()
            report.reconciled.append(record.id)


def _interrupted_step(forward: list[StepRecord]) -> tuple[str, bool]:
    """The step a crash interrupted, and whether it has a row."""
    recorded = {row.name: row for row in forward}
    for row in forward:
        if row.status == StepStatus.RUNNING.value:
            return row.name, True
    for name in steps.START_STEPS:
        if name not in recorded:
            return name, False
    return steps.EMIT_EVENT, True


__all__ = ["RECOVERY", "Recovery", "RecoveryReport"]
