"""Docker's ``Cleanup``: release what a container's start acquired, one journaled sub-step each.

Used by a failed start's compensation, by exit handling and by recovery. Contract:
* sub-steps run in moby's order (``engine.steps.CLEANUP_STEPS``);
* each is best-effort: a failure is recorded as ``compensation_failed`` with its error and
  never stops the later ones;
* only what the start may have acquired (its done, running or failed forward steps, and the
  pending ones planned with an earlier step's intent) is released;
  a sub-step with nothing to release is recorded as ``skipped``;
* every release is idempotent, so a crash in the middle is resumed by running the sub-steps not
  yet recorded as finished again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from engine import steps
from engine.errors import BerthError, as_berth_error
from engine.host import Handle, Resource
from engine.lifecycle import Event
from engine.saga import OperationJournal, SagaContext
from engine.state import Outcome, StepKind, StepStatus
from engine.store import StepDraft, StepRecord

log = logging.getLogger("berth.cleanup")

TASK = "task"

_RELEASES: Mapping[str, Resource] = {
    steps.RELEASE_NETWORK: Resource.NETWORK,
    steps.UNMOUNT_IPC: Resource.IPC,
    steps.UNMOUNT_ROOTFS: Resource.ROOTFS,
    steps.UNMOUNT_SECRETS: Resource.SECRETS,
    steps.UNMOUNT_VOLUMES: Resource.VOLUMES,
}
_MOUNT_KEYS = frozenset({Resource.ROOTFS, Resource.IPC, Resource.SECRETS, Resource.VOLUMES})
# Pending: a host step planned with an earlier one's intent; once that one was done it may
# have begun without its beginning being committed (a crash): what it plans is released too.
_HOLDING = frozenset({StepStatus.DONE, StepStatus.RUNNING, StepStatus.FAILED,
                      StepStatus.PENDING})


def held_handles(forward_steps: Sequence[StepRecord]) -> dict[str, Handle]:
    """What a start may hold: the handles of its steps that began (done, running or failed)
    or may have begun (pending with a planned handle).

    Keys are resource names, plus ``task`` for the runtime container.
    """
    held: dict[str, Handle] = {}
    for step in forward_steps:
        if step.kind == StepKind.FORWARD and step.status in _HOLDING and step.handle:
            held.update(step.handle)
    return held


def plan_rows(first_index: int, names: Sequence[str],
              kind: StepKind = StepKind.COMPENSATION) -> list[StepDraft]:
    """Pending rows for ``names``, indexed from ``first_index``: an operation's plan."""
    return [
        StepDraft(first_index + offset, kind, name, StepStatus.PENDING)
        for offset, name in enumerate(names)
    ]


def _release(saga: SagaContext, name: str, container_id: str, held: Mapping[str, Handle]) -> bool:
    """Run one sub-step's side effect; return False if it had nothing to do."""
    if name == steps.DELETE_RUNTIME_CONTAINER:
        task = held.get(TASK)
        spec = held.get(Resource.SPEC.value)
        if task is None and spec is None:
            return False
        if task is not None:
            saga.runtime.delete(container_id, binary=str(task["binary"]), force=True)
        if spec is not None:
            saga.host.release(Resource.SPEC, container_id, spec)
        return True
    resource = _RELEASES.get(name)
    if resource is not None:
        handle = held.get(resource.value)
        if handle is None:
            return False
        saga.host.release(resource, container_id, handle)
        return True
    if name == steps.UNMOUNT_RECURSIVE:
        if not any(key.value in held for key in _MOUNT_KEYS):
            return False
        saga.host.release_all(container_id)
        return True
    # reset_streams, unregister_execs, cancel_attach: nothing of the kind is held yet.
    return False


def run_cleanup(
    journal: OperationJournal,
    plan: Mapping[str, int],
    held: Mapping[str, Handle],
    *,
    event: Event,
    commit_each: bool,
) -> list[tuple[str, BerthError]]:
    """Run the planned sub-steps (name -> step index) in moby's order; return the failures.

    ``event`` is the history event of each sub-step that acted or failed (``start.compensate``
    or ``exit.step``); a skipped one is recorded in its step row only. With ``commit_each``
    every outcome is committed before the next sub-step runs.
    """
    saga = journal.saga
    container_id = journal.record.id
    failures: list[tuple[str, BerthError]] = []
    for name in steps.CLEANUP_STEPS:
        index = plan.get(name)
        if index is None:
            continue
        started = saga.clock()
        error: BerthError | None = None
        acted = False
        try:
            saga.failpoints.hit(f"cleanup.{name}")
            acted = _release(saga, name, container_id, held)
            saga.failpoints.hit(f"cleanup.{name}.after")
        except Exception as exc:
            error = as_berth_error(exc)
            failures.append((name, error))
            log.warning("%s cleanup: %s failed: %s", container_id[:12], name, error)
        if error is not None:
            status, outcome = StepStatus.COMPENSATION_FAILED, Outcome.ERROR
        elif acted:
            status, outcome = StepStatus.COMPENSATED, Outcome.OK
        else:
            status, outcome = StepStatus.SKIPPED, Outcome.SKIPPED
        finished = saga.clock()
        error_class = error.error_class.value if error else None
        error_message = error.message if error else None
        journal.record_steps(StepDraft(index, StepKind.COMPENSATION, name, status.value,
                                       None, started, finished, error_class, error_message))
        if outcome is not Outcome.SKIPPED:
            journal.transition(event, step=name, outcome=outcome, failure=error)
        if commit_each:
            _commit_best_effort(journal)
    return failures


def _commit_best_effort(journal: OperationJournal) -> None:
    try:
        journal.commit()
    except Exception:
        # The journal could not be written (the database is failing). The releases go on and
        # the batch is kept for the next commit; if none succeeds, the sub-steps stay recorded
        # as pending and recovery runs them again (they are idempotent).
        log.exception("cannot journal a cleanup step of %s", journal.record.id[:12])
