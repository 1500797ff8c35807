"""Queries inside one read transaction (see ``Database.read``); returns frozen records."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from engine.state import ContainerState
from engine.store import tables
from engine.store.records import (
    ContainerRecord,
    GenerationRecord,
    HistoryRecord,
    ImageRecord,
    OperationRecord,
    RequestRecord,
    StepRecord,
)
from engine.store.statement import compile_sql, from_json, select_sql

_containers = tables.containers
_history = tables.history
_operations = tables.operations
_steps = tables.steps

_CONTAINER_BY_ID = select_sql(_containers, {"id": "id"})
# "Live" is removed_at IS NULL, the condition of the partial unique index on names.
_LIVE_BY_NAME = select_sql(_containers, {"name": "name"}) + " AND containers.removed_at IS NULL"
_LIVE_BY_PREFIX = (
    compile_sql(select(_containers))
    + " WHERE substr(containers.id, 1, :length) = :prefix AND containers.removed_at IS NULL"
    + " LIMIT :limit"
)
_ALL_CONTAINERS = compile_sql(
    select(_containers).order_by(_containers.c.created_at, _containers.c.id)
)
_HISTORY_SINCE = compile_sql(select(_history)) + " WHERE history.id > :since ORDER BY history.id"
_LAST_HISTORY_ID = "SELECT coalesce(max(id), 0) FROM history"
_CONTAINER_HISTORY = (
    compile_sql(select(_history))
    + " WHERE history.container_id = :container_id AND history.id > :since ORDER BY history.id"
)
_OPERATION_BY_ID = select_sql(_operations, {"id": "id"})
_OPERATIONS_OF = select_sql(_operations, {"container_id": "container_id"}, order_by=["id"])
_UNFINISHED = compile_sql(select(_operations)) + (
    " WHERE operations.finished_at IS NULL ORDER BY operations.id"
)
_images = tables.images
_IMAGES = select_sql(_images, {}, order_by=["reference"])
_IMAGE = select_sql(_images, {"reference": "reference"})
_GENERATIONS = select_sql(tables.config_generations, {},
                          order_by=["generation"])
_REQUEST = select_sql(tables.api_requests, {"request_id": "request_id"})
_STEPS_OF = select_sql(_steps, {"operation_id": "operation_id"}, order_by=["step_index"])


def _container(row: Sequence[Any]) -> ContainerRecord:
    (cid, name, state, version, last_seq, image, config, created_at, started_at, finished_at,
     removed_at, exit_code, error, pid, oom_killed, health_status, restart_count,
     started_before, manually_stopped, auto_remove, restart_policy, restart_max_retries,
     runtime, runtime_binary, resources_operation_id) = row
    return ContainerRecord(
        cid, name, ContainerState(state), version, last_seq, image, from_json(config),
        created_at, started_at, finished_at, removed_at, exit_code, error, pid,
        bool(oom_killed), health_status, restart_count, bool(started_before),
        bool(manually_stopped), bool(auto_remove), restart_policy, restart_max_retries,
        runtime, runtime_binary, resources_operation_id,
    )


def _operation(row: Sequence[Any]) -> OperationRecord:
    values = list(row)
    values[-1] = from_json(values[-1])
    return OperationRecord(*values)


def _step(row: Sequence[Any]) -> StepRecord:
    values = list(row)
    values[5] = from_json(values[5])
    return StepRecord(*values)


def _history_record(row: Sequence[Any]) -> HistoryRecord:
    values = list(row)
    values[-1] = from_json(values[-1])
    return HistoryRecord(*values)


class Reader:
    """The read half of the store."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def _rows(self, sql: str, params: dict[str, Any]) -> list[Any]:
        return self._connection.execute(sql, params).fetchall()

    def container(self, container_id: str) -> ContainerRecord | None:
        rows = self._rows(_CONTAINER_BY_ID, {"id": container_id})
        return _container(rows[0]) if rows else None

    def live_container_by_name(self, name: str) -> ContainerRecord | None:
        rows = self._rows(_LIVE_BY_NAME, {"name": name})
        return _container(rows[0]) if rows else None

    def live_containers_with_prefix(self, prefix: str, limit: int = 2) -> list[ContainerRecord]:
        rows = self._rows(_LIVE_BY_PREFIX, {"prefix": prefix, "length": len(prefix),
                                            "limit": limit})
        return [_container(row) for row in rows]

    def containers(self, *, include_removed: bool = False) -> list[ContainerRecord]:
        records = [_container(row) for row in self._rows(_ALL_CONTAINERS, {})]
        if include_removed:
            return records
        return [record for record in records if record.state is not ContainerState.REMOVED]

    def containers_in(self, states: Sequence[ContainerState]) -> list[ContainerRecord]:
        wanted = set(states)
        return [record for record in self.containers(include_removed=True)
                if record.state in wanted]

    def history(self, container_id: str | None = None, *, since: int = 0) -> list[HistoryRecord]:
        if container_id is None:
            rows = self._rows(_HISTORY_SINCE, {"since": since})
        else:
            rows = self._rows(_CONTAINER_HISTORY, {"container_id": container_id, "since": since})
        return [_history_record(row) for row in rows]

    def last_history_seq(self) -> int:
        """The global seq of the last history row (0: none yet)."""
        return int(self._rows(_LAST_HISTORY_ID, {})[0][0])

    def operation(self, operation_id: int) -> OperationRecord | None:
        rows = self._rows(_OPERATION_BY_ID, {"id": operation_id})
        return _operation(rows[0]) if rows else None

    def operations(self, container_id: str) -> list[OperationRecord]:
        return [_operation(row) for row in self._rows(_OPERATIONS_OF,
                                                      {"container_id": container_id})]

    def unfinished_operations(self) -> list[OperationRecord]:
        return [_operation(row) for row in self._rows(_UNFINISHED, {})]

    def steps(self, operation_id: int) -> list[StepRecord]:
        return [_step(row) for row in self._rows(_STEPS_OF, {"operation_id": operation_id})]

    def images(self) -> list[ImageRecord]:
        return [ImageRecord(*row) for row in self._rows(_IMAGES, {})]

    def image(self, reference: str) -> ImageRecord | None:
        rows = self._rows(_IMAGE, {"reference": reference})
        return ImageRecord(*rows[0]) if rows else None

    def request(self, request_id: str) -> RequestRecord | None:
        rows = self._rows(_REQUEST, {"request_id": request_id})
        return RequestRecord(*rows[0]) if rows else None

    def generations(self) -> list[GenerationRecord]:
        return [GenerationRecord(generation, reason, content, from_json(runtimes),
                                 from_json(removed), created_at)
                for generation, reason, content, runtimes, removed, created_at
                in self._rows(_GENERATIONS, {})]
