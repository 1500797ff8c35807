"""Writes inside one ``BEGIN IMMEDIATE`` transaction (see ``Database.write``).

Invariant: a container's state only changes through ``update_container``, a compare-and-set on
(id, state, version) that appends the matching history rows in the same transaction, numbered
``last_seq + 1 ...``; state and history cannot diverge and numbering has no gap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, insert, update

from engine.errors import ConcurrentUpdateConflict
from engine.store.records import ContainerRecord, HistoryDraft, JournalContext
from models import Container, HistoryEntry, Operation, OperationStep

_containers = Container.__table__
_history = HistoryEntry.__table__
_operations = Operation.__table__
_steps = OperationStep.__table__

_INSERT_HISTORY = insert(_history)
_INSERT_STEP = insert(_steps)
_INSERT_OPERATION = insert(_operations)
_INSERT_CONTAINER = insert(_containers)


@dataclasses.dataclass(frozen=True, slots=True)
class StepDraft:
    """A step row to insert: its intent, with the planned handle when it has one."""

    index: int
    kind: str
    name: str
    status: str
    handle: Mapping[str, Any] | None = None
    started_at: int | None = None
    finished_at: int | None = None
    error_class: str | None = None
    error_message: str | None = None


class Writer:
    """The write half of the store, bound to the daemon's one write connection."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def insert_container(
        self, record: ContainerRecord, history: HistoryDraft, ctx: JournalContext, at: int
    ) -> ContainerRecord:
        """Insert a new container and its first history row (seq 1)."""
        row = dataclasses.asdict(record)
        row["state"] = record.state
        row["config"] = dict(record.config)
        row["last_seq"] = 1
        row["version"] = 1
        self._connection.execute(_INSERT_CONTAINER, row)
        self._insert_history(record.id, 0, [history], ctx, at, None)
        return record.replace(last_seq=1, version=1)

    def update_container(
        self,
        current: ContainerRecord,
        changes: Mapping[str, Any],
        history: Sequence[HistoryDraft],
        ctx: JournalContext,
        at: int,
        operation_id: int | None = None,
    ) -> ContainerRecord:
        """Compare-and-set ``changes`` onto ``current`` and append ``history``.

        Raises ConcurrentUpdateConflict if the stored row is no longer ``current``.
        """
        values = dict(changes)
        values["version"] = current.version + 1
        values["last_seq"] = current.last_seq + len(history)
        statement = (
            update(_containers)
            .where(
                and_(
                    _containers.c.id == bindparam("_id"),
                    _containers.c.state == bindparam("_state"),
                    _containers.c.version == bindparam("_version"),
                )
            )
            .values({key: bindparam(key) for key in values})
        )
        params = dict(values)
        params["_id"] = current.id
        params["_state"] = current.state.value
        params["_version"] = current.version
        if "config" in params:
            params["config"] = dict(params["config"])
        result = self._connection.execute(statement, params)
        if result.rowcount != 1:
            raise ConcurrentUpdateConflict(current.id)
        if history:
            self._insert_history(current.id, current.last_seq, history, ctx, at, operation_id)
        return current.replace(**values)

    def _insert_history(
        self,
        container_id: str,
        last_seq: int,
        drafts: Sequence[HistoryDraft],
        ctx: JournalContext,
        at: int,
        operation_id: int | None,
    ) -> None:
        rows = [
            {
                "container_id": container_id,
                "seq": last_seq + offset,
                "event": draft.event,
                "from_state": draft.from_state.value if draft.from_state else None,
                "to_state": draft.to_state.value,
                "step": draft.step,
                "outcome": draft.outcome.value,
                "error_class": draft.error_class,
                "error_message": draft.error_message,
                "at": at,
                "request_id": ctx.request_id,
                "actor": ctx.actor.value,
                "operation_id": operation_id,
                "attributes": dict(draft.attributes) if draft.attributes else None,
            }
            for offset, draft in enumerate(drafts, start=1)
        ]
        self._connection.execute(_INSERT_HISTORY, rows)

    def begin_operation(
        self,
        container_id: str,
        kind: str,
        status: str,
        ctx: JournalContext,
        at: int,
        *,
        params: Mapping[str, Any] | None = None,
        config_generation: int | None = None,
    ) -> int:
        """Insert an operation row and return its id."""
        result = self._connection.execute(
            _INSERT_OPERATION,
            {
                "container_id": container_id,
                "kind": kind,
                "status": status,
                "actor": ctx.actor.value,
                "request_id": ctx.request_id,
                "started_at": at,
                "params": dict(params) if params else None,
                "config_generation": config_generation,
            },
        )
        operation_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
        assert isinstance(operation_id, int)
        return operation_id

    def update_operation(self, operation_id: int, **fields: Any) -> None:
        self._connection.execute(
            update(_operations).where(_operations.c.id == operation_id).values(**fields)
        )

    def insert_steps(self, operation_id: int, drafts: Sequence[StepDraft]) -> None:
        rows = []
        for draft in drafts:
            row = dataclasses.asdict(draft)
            row["step_index"] = row.pop("index")
            row["operation_id"] = operation_id
            row["handle"] = dict(draft.handle) if draft.handle is not None else None
            rows.append(row)
        self._connection.execute(_INSERT_STEP, rows)

    def update_step(self, operation_id: int, step_index: int, **fields: Any) -> None:
        self._connection.execute(
            update(_steps)
            .where(
                and_(_steps.c.operation_id == operation_id, _steps.c.step_index == step_index)
            )
            .values(**fields)
        )
