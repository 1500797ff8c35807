"""Queries inside one read transaction (see ``Database.read``); returns frozen records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, and_, select

from engine.state import ContainerState
from engine.store.records import ContainerRecord, HistoryRecord, OperationRecord, StepRecord
from models import Container, HistoryEntry, Operation, OperationStep

_containers = Container.__table__
_history = HistoryEntry.__table__
_operations = Operation.__table__
_steps = OperationStep.__table__

_CONTAINER_FIELDS = [column.name for column in _containers.columns]


def _container(row: Row[Any]) -> ContainerRecord:
    values = row._asdict()
    values["state"] = ContainerState(values["state"])
    return ContainerRecord(**values)


def _operation(row: Row[Any]) -> OperationRecord:
    return OperationRecord(**row._asdict())


def _step(row: Row[Any]) -> StepRecord:
    return StepRecord(**row._asdict())


def _history_record(row: Row[Any]) -> HistoryRecord:
    values = row._asdict()
    values["event_seq"] = values.pop("id")
    return HistoryRecord(**values)


_LIVE = _containers.c.state != ContainerState.REMOVED.value


class Reader:
    """The read half of the store."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def container(self, container_id: str) -> ContainerRecord | None:
        row = self._connection.execute(
            select(_containers).where(_containers.c.id == container_id)
        ).first()
        return _container(row) if row else None

    def live_container_by_name(self, name: str) -> ContainerRecord | None:
        row = self._connection.execute(
            select(_containers).where(and_(_containers.c.name == name, _LIVE))
        ).first()
        return _container(row) if row else None

    def live_containers_with_prefix(self, prefix: str, limit: int = 2) -> list[ContainerRecord]:
        rows = self._connection.execute(
            select(_containers)
            .where(and_(_containers.c.id.startswith(prefix, autoescape=True), _LIVE))
            .limit(limit)
        )
        return [_container(row) for row in rows]

    def containers(self, *, include_removed: bool = False) -> list[ContainerRecord]:
        query = select(_containers).order_by(_containers.c.created_at, _containers.c.id)
        if not include_removed:
            query = query.where(_LIVE)
        return [_container(row) for row in self._connection.execute(query)]

    def containers_in(self, states: Sequence[ContainerState]) -> list[ContainerRecord]:
        query = select(_containers).where(_containers.c.state.in_([s.value for s in states]))
        return [_container(row) for row in self._connection.execute(query)]

    def history(self, container_id: str | None = None, *, since: int = 0) -> list[HistoryRecord]:
        query = select(_history).where(_history.c.id > since).order_by(_history.c.id)
        if container_id is not None:
            query = query.where(_history.c.container_id == container_id)
        return [_history_record(row) for row in self._connection.execute(query)]

    def operation(self, operation_id: int) -> OperationRecord | None:
        row = self._connection.execute(
            select(_operations).where(_operations.c.id == operation_id)
        ).first()
        return _operation(row) if row else None

    def operations(self, container_id: str) -> list[OperationRecord]:
        rows = self._connection.execute(
            select(_operations)
            .where(_operations.c.container_id == container_id)
            .order_by(_operations.c.id)
        )
        return [_operation(row) for row in rows]

    def unfinished_operations(self) -> list[OperationRecord]:
        rows = self._connection.execute(
            select(_operations)
            .where(_operations.c.finished_at.is_(None))
            .order_by(_operations.c.id)
        )
        return [_operation(row) for row in rows]

    def steps(self, operation_id: int) -> list[StepRecord]:
        rows = self._connection.execute(
            select(_steps)
            .where(_steps.c.operation_id == operation_id)
            .order_by(_steps.c.step_index)
        )
        return [_step(row) for row in rows]
