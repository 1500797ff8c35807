"""The start saga: moby's phase C as journaled steps, with its deferred cleanup as compensation.

Contract (spec sections 2 and 3):
* steps run in ``engine.steps.START_STEPS`` order; each is a history row;
* an acquiring step's intent, with the handle it plans to acquire, is committed before its side
  effect; the outcome rides with the next commit. The host steps (rootfs, network, spec)
  commit their intents together, the later ones ``pending`` until they begin;
* any failure records the error and exit code (the 126/127/128 classifier for the runtime steps,
  else 128 only if the exit code was 0), persists, then runs Cleanup and auto-remove, each
  journaled and best-effort; the caller gets the original error;
* a failed start leaves the container ``created`` (never started) or ``exited`` with StartedAt
  untouched, and emits no ``start`` or ``die`` event;
* a failure to persist the final state does not fail the start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from engine import steps
from engine.cleanup import TASK, plan_rows, run_cleanup
from engine.config import ConfigSnapshot
from engine.errors import BerthError, Conflict, Unavailable, as_berth_error
from engine.event import ContainerEvent
from engine.exit_code import EXIT_UNKNOWN, classify_start_error
from engine.host import Handle, Resource
from engine.lifecycle import Event
from engine.runtime import TaskState
from engine.saga import OperationJournal, SagaContext
from engine.state import OperationKind, OperationStatus, Outcome, StepKind, StepStatus
from engine.store import ContainerRecord, JournalContext, StepDraft

log = logging.getLogger("berth.start")

_RESOURCES: dict[str, tuple[Resource, ...]] = {
    steps.MOUNT_ROOTFS: (Resource.ROOTFS,),
    steps.SETUP_NETWORK: (Resource.NETWORK,),
    steps.CREATE_SPEC: (Resource.IPC, Resource.SECRETS, Resource.VOLUMES, Resource.SPEC),
}
# The host steps acquire only what lives on this host, each released idempotently: their
# intents are committed together, with the first one's. A later one's row is ``pending`` with
# its planned handle until the step begins, which rides with the next commit.
_HOST_STEPS = (steps.MOUNT_ROOTFS, steps.SETUP_NETWORK, steps.CREATE_SPEC)
_CLASSIFIED_STEPS = frozenset(
    {steps.RESOLVE_RUNTIME, steps.CREATE_RUNTIME_CONTAINER, steps.START_TASK}
)
STEP_INDEX = {name: index for index, name in enumerate(steps.START_STEPS)}
COMPENSATION_BASE = len(steps.START_STEPS)
COMPENSATION_INDEX = {
    name: COMPENSATION_BASE + offset for offset, name in enumerate(steps.COMPENSATION_STEPS)
}

Remover = Callable[[str], None]


def running_fields(record: ContainerRecord, *, pid: int, started_at: int,
                   operation_id: int | None) -> dict[str, Any]:
    """moby's ``SetRunning`` (T2): the fields of a container that has just started (its
    FinishedAt stays the last run's, as moby's). Used by the saga and by recovery's
    roll-forward."""
    return {
        "error": "", "exit_code": 0, "pid": pid, "oom_killed": False, "started_at": started_at,
        "has_been_started_before": True,
        "has_been_manually_stopped": False, "resources_operation_id": operation_id,
    }


def initial_health(record: ContainerRecord) -> str | None:
    """moby's ``initHealthMonitor``: ``starting`` when a healthcheck is configured."""
    return "starting" if record.config.get("healthcheck") else None


class StartFailure(Exception):
    """Internal: a step failed; carries the step's name."""

    def __init__(self, step: str, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.step = step
        self.cause = cause


class _HostFailure(Exception):
    """Internal: a host call inside a runtime step failed; not the runtime's error, so not
    read by the start-error classifier (an unbound namespace is no missing command)."""

    def __init__(self, error: BerthError) -> None:
        super().__init__(str(error))
        self.error = error


class StartSaga:
    """One run of phase C for one container, under that container's lock."""

    def __init__(self, saga: SagaContext, snapshot: ConfigSnapshot, journal: JournalContext,
                 remove: Remover) -> None:
        self._saga = saga
        self._snapshot = snapshot
        self._journal_context = journal
        self._remove = remove
        self._held: dict[str, Handle] = {}
        self._planned: dict[str, dict[str, Handle]] = {}  # host steps whose intent is durable
        self._task_pid = 0
        self._binary = ""
        self._current = steps.MOUNT_ROOTFS

    def run(self, record: ContainerRecord) -> ContainerRecord:
        """Start ``record``; return it running. Raises the start error after compensating."""
        journal = OperationJournal(self._saga, record, self._journal_context)
        journal.begin_operation(OperationKind.START.value, OperationStatus.IN_PROGRESS.value,
                                config_generation=self._snapshot.generation)
        journal.transition(Event.BEGIN_START)
        try:
            for name in steps.START_STEPS[: STEP_INDEX[steps.MARK_RUNNING]]:
                self._current = name
                if name in steps.ACQUIRING_STEPS:
                    self._acquiring_step(journal, name)
                else:
                    self._bookkeeping_step(journal, name)
            record = self._finish(journal)
        except Exception as exc:
            error, exit_code = self._classify(self._current, exc, journal.record)
            # Planned with an earlier step's intent, never begun: nothing of theirs is held.
            journal.record_steps(*(StepDraft(STEP_INDEX[name], StepKind.FORWARD, name,
                                             StepStatus.SKIPPED) for name in self._planned))
            compensate(journal, self._current, error, exit_code, self._held, self._remove)
            raise error from exc
        self._after_persist(record)
        return record

    # -- forward steps -------------------------------------------------------------------
    def _acquiring_step(self, journal: OperationJournal, name: str) -> None:
        record = journal.record
        index = STEP_INDEX[name]
        ahead = self._planned.pop(name, None)
        if ahead is not None:  # its intent was committed with an earlier host step's
            planned = ahead
            journal.record_steps(StepDraft(index, StepKind.FORWARD, name, StepStatus.RUNNING,
                                           started_at=self._saga.clock()))
            journal.transition(Event.START_STEP, step=name)
        else:
            planned = self._plan(name, record)
            journal.record_steps(StepDraft(index, StepKind.FORWARD, name, StepStatus.RUNNING,
                                           handle=planned, started_at=self._saga.clock()),
                                 *self._plan_ahead(name, record))
            journal.transition(Event.START_STEP, step=name)
            journal.commit()  # the intent is durable before the side effect
        self._held.update(planned)
        self._saga.failpoints.hit(f"start.{name}")
        actual = self._act(name, journal.record, planned)
        self._held.update(actual)
        self._saga.failpoints.hit(f"start.{name}.after")
        # A handle equal to the planned one is not written again (None keeps the stored one).
        done_handle = None if actual == planned else dict(actual)
        journal.record_steps(StepDraft(index, StepKind.FORWARD, name, StepStatus.DONE,
                                       handle=done_handle, finished_at=self._saga.clock()))

    def _plan_ahead(self, name: str, record: ContainerRecord) -> list[StepDraft]:
        """The pending rows of the host steps after ``name``, if it is the first: each with
        the handle it plans, so that a crash before the next commit finds them to release.
        A step whose plan fails is left to plan (and fail) at its turn, with its own intent."""
        if name != _HOST_STEPS[0]:
            return []
        drafts = []
        for later in _HOST_STEPS[1:]:
            try:
                planned = self._plan(later, record)
            except Exception:
                break
            self._planned[later] = planned
            drafts.append(StepDraft(STEP_INDEX[later], StepKind.FORWARD, later,
                                    StepStatus.PENDING, handle=planned))
        return drafts

    def _plan(self, name: str, record: ContainerRecord) -> dict[str, Handle]:
        if name in _RESOURCES:
            planned: dict[str, Handle] = {}
            for resource in _RESOURCES[name]:
                handle = self._saga.host.plan(resource, record)
                if handle is not None:
                    planned[resource.value] = dict(handle)
            return planned
        return {TASK: {"id": record.id, "binary": self._binary}}

    def _act(self, name: str, record: ContainerRecord, planned: dict[str, Handle]
             ) -> dict[str, Handle]:
        if name in _RESOURCES:
            acquired: dict[Resource, Handle] = {
                Resource(key): handle for key, handle in self._held.items() if key != TASK
            }
            actual: dict[str, Handle] = {}
            for resource in _RESOURCES[name]:
                if resource.value in planned:
                    handle = self._saga.host.acquire(resource, record, planned[resource.value],
                                                     acquired)
                    acquired[resource] = handle
                    actual[resource.value] = dict(handle)
            return actual
        if name == steps.CREATE_RUNTIME_CONTAINER:
            bundle = str(self._held.get(Resource.SPEC.value, {}).get("bundle", ""))
            self._task_pid = self._replace_container(record.id, bundle).pid
            network = self._held.get(Resource.NETWORK.value)
            if network is not None:  # the namespace the runtime made, bound to the sandbox
                self._saga.failpoints.hit(f"start.{name}.{steps.ATTACH_NETWORK}")
                try:
                    self._saga.host.attach_network(record.id, network, self._task_pid)
                except Exception as exc:
                    raise _HostFailure(as_berth_error(exc)) from exc
        else:
            task = self._saga.runtime.start(record.id, binary=self._binary)
            self._task_pid = task.pid or self._task_pid  # the init's pid is known at create
        return planned

    def _replace_container(self, container_id: str, bundle: str) -> TaskState:
        """moby's ReplaceContainer: a stale runtime container of the same id (left by a cleanup
        that failed) is force-deleted, then the container is created again."""
        runtime = self._saga.runtime
        try:
            return runtime.create(container_id, bundle, binary=self._binary)
        except Conflict:
            log.warning("%s: replacing a stale runtime container", container_id[:12])
            runtime.delete(container_id, binary=self._binary, force=True)
            return runtime.create(container_id, bundle, binary=self._binary)

    def _bookkeeping_step(self, journal: OperationJournal, name: str) -> None:
        started = self._saga.clock()
        self._saga.failpoints.hit(f"start.{name}")
        changes = self._bookkeeping(name, journal.record)
        self._saga.failpoints.hit(f"start.{name}.after")
        journal.record_steps(StepDraft(STEP_INDEX[name], StepKind.FORWARD, name,
                                    StepStatus.DONE, started_at=started,
                                    finished_at=self._saga.clock()))
        journal.transition(Event.START_STEP, step=name, **changes)

    def _bookkeeping(self, name: str, record: ContainerRecord) -> dict[str, Any]:
        if name == steps.RESET_RESTART_MANAGER:
            return {"restart_count": 0, "has_been_manually_stopped": False}
        if name == steps.RESOLVE_RUNTIME:
            runtime = self._snapshot.resolve_runtime(record.runtime)
            self._binary = runtime.binary
            # The runtime name and binary are locked into the container from here on.
            return {"runtime": runtime.name, "runtime_binary": runtime.binary}
        # save_apparmor_profile and resolve_checkpoint have nothing to record on this host
        # (no AppArmor; CRIU checkpoints are refused before phase C).
        return {}

    def _finish(self, journal: OperationJournal) -> ContainerRecord:
        """C11-C12: mark running, init health, persist (the commit). Emitting (C13) follows."""
        saga = self._saga
        record = journal.record
        running: dict[str, Any] = {}

        def mark_running() -> None:
            running.update(running_fields(record, pid=self._task_pid, started_at=saga.clock(),
                                          operation_id=journal.operation_id))

        def init_health() -> None:
            running["health_status"] = initial_health(record)

        for name, action in ((steps.MARK_RUNNING, mark_running),
                             (steps.INIT_HEALTH, init_health)):
            self._current = name
            started = saga.clock()
            saga.failpoints.hit(f"start.{name}")
            action()
            saga.failpoints.hit(f"start.{name}.after")
            journal.record_steps(StepDraft(STEP_INDEX[name], StepKind.FORWARD, name,
                                        StepStatus.DONE, started_at=started,
                                        finished_at=saga.clock()))
            journal.transition(Event.START_STEP, step=name)
        self._current = steps.PERSIST
        finished = saga.clock()
        # The history row of the event is the durable event: it is written with the state,
        # and emitting only wakes live subscribers once the commit is done.
        journal.record_steps(*(
            StepDraft(STEP_INDEX[name], StepKind.FORWARD, name, StepStatus.DONE,
                      started_at=finished, finished_at=finished)
            for name in (steps.PERSIST, steps.EMIT_EVENT)
        ))
        journal.transition(Event.START_STEP, step=steps.PERSIST)
        journal.transition(Event.START_STEP, step=steps.EMIT_EVENT)
        journal.transition(Event.START, **running)
        journal.update_operation(status=OperationStatus.SUCCEEDED.value, finished_at=finished,
                                 runtime_binary=self._binary)
        try:
            saga.failpoints.hit("start.persist")
            record = journal.commit()
        except Exception as exc:
            # Docker only logs a failed checkpoint after a successful start. The task runs; try
            # the write once more, else recovery rolls the start forward at the next restart.
            log.error("%s: failed to store container after start: %s", record.id[:12], exc)
            record = self._persist_again(journal)
        return record

    def _after_persist(self, record: ContainerRecord) -> None:
        """The start has succeeded; nothing from here on can fail it (moby's C12-C13)."""
        saga = self._saga
        try:
            saga.failpoints.hit("start.persist.after")
            saga.failpoints.hit("start.emit_event")
            saga.events.publish(ContainerEvent(record.id, record.name, "start", saga.clock()))
            saga.failpoints.hit("start.emit_event.after")
        except Exception as exc:
            log.error("%s: after start: %s", record.id[:12], exc)

    def _persist_again(self, journal: OperationJournal) -> ContainerRecord:
        try:
            return journal.commit()
        except Exception as exc:
            log.error("%s: store failed again, left to recovery: %s", journal.record.id[:12], exc)
            return journal.record

    def _classify(self, step: str, error: BaseException, record: ContainerRecord
                  ) -> tuple[BerthError, int]:
        if isinstance(error, _HostFailure):
            error = error.error
        elif step in _CLASSIFIED_STEPS and not isinstance(error, Unavailable):
            # The runtime's own error (not the engine's failing to reach its supervisor).
            exit_code, classified = classify_start_error(error)
            return classified, exit_code
        exit_code = record.exit_code if record.exit_code != 0 else EXIT_UNKNOWN
        return as_berth_error(error), exit_code


def compensate(journal: OperationJournal, failed_step: str, error: BerthError, exit_code: int,
               held: dict[str, Handle], remove: Remover, *, step_recorded: bool | None = None
               ) -> None:
    """Record the failure, then run Cleanup and auto-remove, each journaled and best-effort.

    ``step_recorded`` says whether the failed step already has a row (default: acquiring steps
    do, bookkeeping steps do not). Also used by recovery for a start the daemon crashed in.
    """
    saga = journal.saga
    # What the earlier steps batched stays: they did complete (moby keeps the reset restart
    # count and the locked-in runtime name after a failed start too).
    now = saga.clock()
    if step_recorded is None:
        step_recorded = failed_step in steps.ACQUIRING_STEPS
    if step_recorded:
        journal.record_steps(StepDraft(STEP_INDEX[failed_step], StepKind.FORWARD, failed_step,
                                       StepStatus.FAILED, finished_at=now,
                                       error_class=error.error_class.value,
                                       error_message=error.message))
    else:
        journal.record_steps(StepDraft(STEP_INDEX[failed_step], StepKind.FORWARD, failed_step,
                                    StepStatus.FAILED, started_at=now, finished_at=now,
                                    error_class=error.error_class.value,
                                    error_message=error.message))
    plan = plan_rows(COMPENSATION_BASE, steps.COMPENSATION_STEPS)
    plan[0] = StepDraft(plan[0].step_index, StepKind.COMPENSATION, steps.PERSIST_ERROR,
                        StepStatus.COMPENSATED, started_at=now, finished_at=now)
    journal.record_steps(*plan)
    # Moby's compensation 1-3: SetError, exit code, checkpoint, before releasing anything.
    journal.transition(Event.START_FAILED, step=failed_step, outcome=Outcome.ERROR,
                       failure=error, error=error.message, exit_code=exit_code)
    journal.transition(Event.COMPENSATE, step=steps.PERSIST_ERROR)
    journal.update_operation(status=OperationStatus.COMPENSATING.value, failed_step=failed_step,
                             error_class=error.error_class.value, error_message=error.message,
                             exit_code=exit_code)
    try:
        saga.failpoints.hit(f"cleanup.{steps.PERSIST_ERROR}")
        journal.commit()
        saga.failpoints.hit(f"cleanup.{steps.PERSIST_ERROR}.after")
    except Exception:
        # moby logs it and cleans up all the same. The batch is kept: it rides with the next
        # commit (discarded, the error and the rollback's first transition would be lost,
        # and every later transition refused from the state the store still holds).
        log.exception("%s: failed saving state on start failure", journal.record.id[:12])
    resume_compensation(journal, held, remove, set(steps.CLEANUP_STEPS))


def resume_compensation(journal: OperationJournal, held: dict[str, Handle], remove: Remover,
                        pending: set[str]) -> None:
    """Run the ``pending`` Cleanup sub-steps, roll the container back, then auto-remove."""
    saga = journal.saga
    plan = {name: COMPENSATION_INDEX[name] for name in steps.CLEANUP_STEPS if name in pending}
    run_cleanup(journal, plan, held, event=Event.COMPENSATE, commit_each=True)
    auto_remove = journal.record.auto_remove
    journal.transition(Event.ROLLED_BACK)
    if auto_remove:
        # Finished only once the auto-remove ran: recovery resumes it after a crash.
        journal.update_operation(status=OperationStatus.FAILED.value)
    else:
        journal.update_operation(status=OperationStatus.FAILED.value, finished_at=saga.clock())
        journal.record_steps(StepDraft(COMPENSATION_INDEX[steps.AUTO_REMOVE],
                                       StepKind.COMPENSATION, steps.AUTO_REMOVE,
                                       StepStatus.SKIPPED))
    journal.commit()
    if auto_remove:
        run_auto_remove(journal, remove)


def run_auto_remove(journal: OperationJournal, remove: Remover) -> None:
    """Moby's compensation step 6: force-remove with volumes; a failure is only recorded."""
    saga = journal.saga
    record = journal.record
    started = saga.clock()
    status, error_class, error_message = StepStatus.COMPENSATED, None, None
    try:
        saga.failpoints.hit(f"cleanup.{steps.AUTO_REMOVE}")
        remove(record.id)
        saga.failpoints.hit(f"cleanup.{steps.AUTO_REMOVE}.after")
    except Exception as exc:
        failure = as_berth_error(exc)
        log.error("can't remove container %s: %s", record.id[:12], failure)
        status = StepStatus.COMPENSATION_FAILED
        error_class, error_message = failure.error_class.value, failure.message
    journal.record_steps(StepDraft(COMPENSATION_INDEX[steps.AUTO_REMOVE], StepKind.COMPENSATION,
                                   steps.AUTO_REMOVE, status, None, started, saga.clock(),
                                   error_class, error_message))
    journal.update_operation(finished_at=saga.clock())
    try:
        journal.commit()
    except Exception:
        log.exception("%s: cannot journal auto-remove", record.id[:12])
