"""What every journaled operation shares: its dependencies and its journal.

``OperationJournal`` gathers one operation's writes (state transitions with their history rows,
step rows, the operation row) in memory and ``commit`` writes them in one ``BEGIN IMMEDIATE``
transaction. The sagas decide *when* to commit: before every side effect that acquires
something, the intent must be committed; a batch never spans a side effect it describes.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from engine.errors import BerthError
from engine.event import EventBus
from engine.failpoint import Failpoints
from engine.host import Host
from engine.lifecycle import Event, advance, target
from engine.runtime import OCIRuntime
from engine.state import ContainerState, Outcome
from engine.store import ContainerRecord, Database, HistoryDraft, JournalContext, StepDraft

log = logging.getLogger("berth.saga")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclasses.dataclass(frozen=True, slots=True)
class SagaContext:
    """The parts a saga drives; built once by the composition root."""

    db: Database
    runtime: OCIRuntime
    host: Host
    failpoints: Failpoints
    events: EventBus
    clock: Callable[[], int] = now_ms


class OperationJournal:
    """The journal of one operation on one container, committed in explicit batches."""

    def __init__(self, saga: SagaContext, record: ContainerRecord, journal: JournalContext,
                 operation_id: int | None = None) -> None:
        self.saga = saga
        self.record = record
        self.journal = journal
        self.operation_id = operation_id
        self._state = record.state
        self._changes: dict[str, Any] = {}
        self._history: list[HistoryDraft] = []
        self._steps: list[StepDraft] = []
        self._operation_updates: dict[str, Any] = {}
        self._new_operation: dict[str, Any] | None = None

    @property
    def state(self) -> ContainerState:
        """The state after the transitions recorded so far (committed or not)."""
        return self._state

    def begin_operation(self, kind: str, status: str, *, params: Mapping[str, Any] | None = None,
                        config_generation: int | None = None) -> None:
        self._new_operation = {"kind": kind, "status": status, "params": params,
                               "config_generation": config_generation}

    def transition(self, event: Event, *, step: str | None = None, outcome: Outcome = Outcome.OK,
                   failure: BerthError | None = None,
                   attributes: Mapping[str, Any] | None = None, **changes: Any) -> None:
        """Record ``event`` (checked by the lifecycle machine) and field ``changes``.

        Raises the machine's error (Conflict, NotModified...) if ``event`` is refused.
        """
        before = self._state
        after = target(before, event, self.record.has_been_started_before)
        if after is None:
            after = advance(before, event, container_id=self.record.id, name=self.record.name,
                            started_before=self.record.has_been_started_before)  # raises
        if failure is None:
            draft = HistoryDraft(event, after, before, step, outcome, None, None, attributes)
        else:
            draft = HistoryDraft(event, after, before, step, outcome,
                                 failure.error_class.value, failure.message, attributes)
        self._history.append(draft)
        self._state = after
        self._changes.update(changes)

    def record_steps(self, *drafts: StepDraft) -> None:
        """Record steps: new ones are inserted; for a recorded one, the status and every
        non-None field of the draft replace the stored ones."""
        self._steps.extend(drafts)

    def update_operation(self, **fields: Any) -> None:
        self._operation_updates.update(fields)

    def commit(self) -> ContainerRecord:
        """Write the batch in one transaction; return the container as stored.

        Raises ConcurrentUpdateConflict if another writer changed the container meanwhile.
        """
        at = self.saga.clock()
        with self.saga.db.write() as writer:
            if self._new_operation is not None:
                self.operation_id = writer.begin_operation(
                    self.record.id, self._new_operation["kind"], self._new_operation["status"],
                    self.journal, at, params=self._new_operation["params"],
                    config_generation=self._new_operation["config_generation"])
            if self._steps:
                assert self.operation_id is not None
                writer.record_steps(self.operation_id, self._steps)
            if self._history or self._changes:
                changes = dict(self._changes)
                if self._state is not self.record.state:
                    changes["state"] = self._state  # only when it changes: less to write
                record = writer.update_container(self.record, changes, self._history,
                                                 self.journal, at, self.operation_id)
            else:
                record = self.record
            if self._operation_updates:
                assert self.operation_id is not None
                writer.update_operation(self.operation_id, **self._operation_updates)
        self.record = record
        self.saga.events.committed()
        self._new_operation = None
        self._changes = {}
        self._history = []
        self._steps = []
        self._operation_updates = {}
        return record

    def discard(self) -> None:
        """Forget the uncommitted batch (the transaction that would have written it failed)."""
        self._state = self.record.state
        self._new_operation = None
        self._changes = {}
        self._history = []
        self._steps = []
        self._operation_updates = {}
