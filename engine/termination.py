"""Exit handling: a task ended (stopped, killed, or on its own); release and record.

Contract (moby's ``handleContainerExit``, T8): the exit status is journaled with the plan
before anything is released; Cleanup runs (``engine.cleanup``); then the container is ``exited``
with the task's exit code and time, Pid 0, and the ``die`` event (and ``stop`` for a stop
request) is emitted. A crash in the middle is resumed by recovery from the journaled plan.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from engine import steps
from engine.cleanup import held_handles, run_cleanup
from engine.event import ContainerEvent
from engine.host import Handle
from engine.lifecycle import Event
from engine.saga import OperationJournal, SagaContext
from engine.state import OperationKind, OperationStatus
from engine.store import ContainerRecord, JournalContext, OperationRecord

PLAN = {name: index for index, name in enumerate(steps.CLEANUP_STEPS)}


@dataclasses.dataclass(frozen=True, slots=True)
class ExitStatus:
    exit_code: int
    exited_at: int
    stopped: bool = False  # the exit answers a stop request: record Docker's ``stop`` event


def held_by(saga: SagaContext, record: ContainerRecord) -> dict[str, Handle]:
    """The handles the container's live start acquired."""
    if record.resources_operation_id is None:
        return {}
    with saga.db.read() as reader:
        return held_handles(reader.steps(record.resources_operation_id))


def handle_exit(saga: SagaContext, record: ContainerRecord, status: ExitStatus,
                journal_context: JournalContext) -> ContainerRecord:
    """Journal the exit, release the start's resources, record the container exited."""
    held = held_by(saga, record)
    journal = OperationJournal(saga, record, journal_context)
    journal.begin_operation(OperationKind.EXIT.value, OperationStatus.IN_PROGRESS.value,
                            params={"exit_code": status.exit_code, "exited_at": status.exited_at,
                                    "stopped": status.stopped,
                                    "run": record.resources_operation_id,
                                    "log_end": _log_size(saga, record.id)})
    # The plan is implicit (every Cleanup sub-step, each idempotent): recovery of an exit in
    # progress runs them all again. Their rows are written with their outcomes.
    journal.transition(Event.BEGIN_EXIT, attributes={"exitCode": status.exit_code})
    journal.commit()
    return finish_exit(journal, held, status)


def _log_size(saga: SagaContext, container_id: str) -> int | None:
    """Where the run's output ends in its log: the supervisor records an exit once the run's
    streams ended, and the next run writes only once this exit is handled, so a ``logs -f``
    of this run reads no further (a restart's new run is not it)."""
    try:
        return os.stat(saga.host.log_path(container_id)).st_size
    except OSError:
        return None


def resume_exit(saga: SagaContext, record: ContainerRecord, operation: OperationRecord,
                journal_context: JournalContext, *, missing_exit_code: int) -> ContainerRecord:
    """Finish the exit ``operation`` journaled for ``record`` (its status is in the operation's
    parameters): what recovery does after a crash, and a wait after an exit handling that
    failed half-way (the container was left ``exiting``)."""
    params: Mapping[str, object] = operation.params or {}
    status = ExitStatus(int(str(params.get("exit_code", missing_exit_code))),
                        int(str(params.get("exited_at", saga.clock()))),
                        bool(params.get("stopped", False)))
    journal = OperationJournal(saga, record, journal_context, operation.id)
    return finish_exit(journal, held_by(saga, record), status)


def finish_exit(journal: OperationJournal, held: Mapping[str, Handle], status: ExitStatus
                ) -> ContainerRecord:
    """Run every Cleanup sub-step and record the container exited."""
    saga = journal.saga
    run_cleanup(journal, PLAN, held, event=Event.EXIT_STEP, commit_each=False)
    record = journal.record
    # StartedAt is taken once the runtime's start returned, the exit time where the task was
    # reaped: a process quicker than that would end before it started.
    finished_at = max(status.exited_at, record.started_at or 0)
    duration = (finished_at - record.started_at) / 1000 if record.started_at else 0.0
    journal.transition(
        Event.DIE,
        attributes={"exitCode": status.exit_code, "execDuration": round(duration, 3)},
        exit_code=status.exit_code, finished_at=finished_at, pid=0,
        resources_operation_id=None, health_status=None,
    )
    if status.stopped:
        journal.transition(Event.STOP)
    journal.update_operation(status=OperationStatus.SUCCEEDED.value, finished_at=saga.clock(),
                             exit_code=status.exit_code)
    record = journal.commit()
    now = saga.clock()
    saga.events.publish(ContainerEvent(record.id, record.name, "die", now,
                                       (("exitCode", str(status.exit_code)),)))
    if status.stopped:
        saga.events.publish(ContainerEvent(record.id, record.name, "stop", now))
    return record
