"""Removal (``rm``): journaled so that a crash mid-way is finished, not left ``removing``.

Contract: the decision (and the ``-v`` choice) is committed with the ``removing`` state before
anything is deleted; the steps (``engine.steps.REMOVE_STEPS``) are idempotent; success leaves a
``removed`` tombstone row (history stays joinable, the name is free) and a ``destroy`` event; a
failure leaves the container ``dead`` with its error (moby's ``SetRemovalError``).
"""

from __future__ import annotations

from engine import steps
from engine.cleanup import plan_rows
from engine.errors import System, as_berth_error
from engine.event import ContainerEvent
from engine.lifecycle import Event
from engine.saga import OperationJournal, SagaContext
from engine.state import OperationKind, OperationStatus, Outcome, StepKind, StepStatus
from engine.store import ContainerRecord, JournalContext, StepDraft


def begin_removal(saga: SagaContext, record: ContainerRecord, *, volumes: bool,
                  journal_context: JournalContext) -> OperationJournal:
    """Commit the ``removing`` state and the plan. Raises the machine's Conflict."""
    journal = OperationJournal(saga, record, journal_context)
    journal.begin_operation(OperationKind.REMOVE.value, OperationStatus.IN_PROGRESS.value,
                            params={"volumes": volumes})
    journal.record_steps(*plan_rows(0, steps.REMOVE_STEPS, StepKind.FORWARD))
    journal.transition(Event.BEGIN_REMOVE)
    journal.commit()
    return journal


def finish_removal(journal: OperationJournal, *, volumes: bool,
                   pending: frozenset[str] = frozenset(steps.REMOVE_STEPS)) -> ContainerRecord:
    """Run the ``pending`` removal steps, then record ``destroy``.

    Raises System ``unable to remove filesystem for <id>: <cause>`` (the container is then
    ``dead``).
    """
    saga = journal.saga
    record = journal.record
    for index, name in enumerate(steps.REMOVE_STEPS):
        if name not in pending:
            continue
        started = saga.clock()
        try:
            saga.failpoints.hit(f"remove.{name}")
            _act(saga, record, name, volumes=volumes)
            saga.failpoints.hit(f"remove.{name}.after")
        except Exception as exc:
            cause = as_berth_error(exc)
            error = System(f"unable to remove filesystem for {record.id}: {cause}")
            journal.record_steps(StepDraft(index, StepKind.FORWARD, name, StepStatus.FAILED,
                                           None, started, saga.clock(),
                                           cause.error_class.value, cause.message))
            journal.transition(Event.REMOVE_FAILED, step=name, outcome=Outcome.ERROR,
                               failure=error, error=error.message)
            journal.update_operation(status=OperationStatus.FAILED.value,
                                     finished_at=saga.clock(), failed_step=name,
                                     error_class=error.error_class.value,
                                     error_message=error.message)
            journal.commit()
            raise error from exc
        journal.record_steps(StepDraft(index, StepKind.FORWARD, name, StepStatus.DONE,
                                       None, started, saga.clock()))
        journal.transition(Event.REMOVE_STEP, step=name)
    now = saga.clock()
    secrets = record.config.get("secrets") or []
    # The tombstone keeps the secrets' names, never their values (the journal outlives it).
    if secrets:
        names = [str(entry).partition("=")[0] for entry in secrets]
        journal.transition(Event.DESTROY, removed_at=now,
                           config={**record.config, "secrets": names})
    else:
        journal.transition(Event.DESTROY, removed_at=now)
    journal.update_operation(status=OperationStatus.SUCCEEDED.value, finished_at=now)
    record = journal.commit()
    saga.events.publish(ContainerEvent(record.id, record.name, "destroy", now))
    return record


def _act(saga: SagaContext, record: ContainerRecord, name: str, *, volumes: bool) -> None:
    if name == steps.DELETE_RUNTIME_CONTAINER:
        if record.runtime_binary:
            saga.runtime.delete(record.id, binary=record.runtime_binary, force=True)
    elif name == steps.UNMOUNT_RECURSIVE:
        saga.host.release_all(record.id)
    else:
        saga.host.remove(record.id, volumes=volumes)
