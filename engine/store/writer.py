"""Writes inside one ``BEGIN IMMEDIATE`` transaction (see ``Database.write``).

Invariant: a container's state only changes through ``update_container``, a compare-and-set on
(id, state, version) that appends the matching history rows in the same transaction, numbered
``last_seq + 1 ...``; state and history cannot diverge and numbering has no gap.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from engine import state as states
from engine.errors import ConcurrentUpdateConflict
from engine.lifecycle import Event
from engine.store import tables
from engine.store.records import ContainerRecord, HistoryDraft, JournalContext
from engine.store.statement import insert_sql, positional_insert_sql, to_json, update_sql

_containers = tables.containers
_operations = tables.operations
_steps = tables.steps

_INSERT_CONTAINER = insert_sql(_containers)
_images = tables.images
_PUT_IMAGE = insert_sql(_images).replace("INSERT INTO", "INSERT OR REPLACE INTO", 1)
_INSERT_GENERATION = insert_sql(tables.config_generations)
_INSERT_REQUEST = insert_sql(tables.api_requests)
_DELETE_IMAGE = f"DELETE FROM {_images.name} WHERE reference = :reference"
_HISTORY_COLUMNS = ("container_id", "seq", "event", "from_state", "to_state", "step", "outcome",
                    "error_class", "error_message", "at", "request_id", "actor", "operation_id",
                    "attributes")
_INSERT_HISTORY = positional_insert_sql(tables.history, _HISTORY_COLUMNS)
_INSERT_OPERATION = insert_sql(
    _operations,
    skip=("id", "finished_at", "failed_step", "error_class", "error_message", "exit_code",
          "runtime_binary"),
)
# Steps are upserted: an intent is inserted, its outcome later updates the same row; a NULL in
# the new values keeps the stored one (the handle planned with the intent, its start time).
_STEP_COLUMNS = ("operation_id", "step_index", "kind", "name", "status", "handle", "started_at",
                 "finished_at", "error_class", "error_message")
_UPSERT_STEP = positional_insert_sql(_steps, _STEP_COLUMNS) + (
    " ON CONFLICT (operation_id, step_index) DO UPDATE SET status = excluded.status, "
    + ", ".join(f"{column} = coalesce(excluded.{column}, {column})"
                for column in ("handle", "started_at", "finished_at", "error_class",
                               "error_message"))
)
_CAS = ("id", "state", "version")
_JSON_COLUMNS = frozenset({"config", "params", "handle", "attributes"})
_CONTAINER_FIELDS = ContainerRecord._fields


class StepDraft(NamedTuple):
    """A step row to insert: its intent, with the planned handle when it has one."""

    step_index: int
    kind: str
    name: str
    status: str
    handle: Mapping[str, Any] | None = None
    started_at: int | None = None
    finished_at: int | None = None
    error_class: str | None = None
    error_message: str | None = None


# Enum members to their values. sqlite3 binds only an exact str directly; a StrEnum member
# goes through its adaptation protocol, whose failing attribute lookups cost ~0.6 us a
# parameter: 8% of a start, which binds ~120 of them. Members hash and compare like their
# values, so one lookup turns a member into its value and lets a plain str or None through.
_PLAIN: dict[Any, Any] = {
    member: member.value
    for kind in (states.ContainerState, states.StepStatus, states.StepKind,
                 states.OperationKind, states.OperationStatus, states.Actor, states.Outcome,
                 Event)
    for member in kind
}
_plain = _PLAIN.get
_BOOLEAN_COLUMNS = frozenset(  # bool is an int subclass: the same protocol, the same cost
    {"oom_killed", "has_been_started_before", "has_been_manually_stopped", "auto_remove"})


def _column_value(name: str, value: Any) -> Any:
    if name in _JSON_COLUMNS:
        return to_json(value)
    if name in _BOOLEAN_COLUMNS:
        return int(value)
    return _plain(value, value) if isinstance(value, str) else value


class Writer:
    """The write half of the store, bound to the daemon's one write connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def insert_container(
        self, record: ContainerRecord, history: HistoryDraft, ctx: JournalContext, at: int
    ) -> ContainerRecord:
        """Insert a new container and its first history row (seq 1)."""
        stored = record.replace(last_seq=1, version=1)
        row = {name: _column_value(name, getattr(stored, name)) for name in _CONTAINER_FIELDS}
        self._connection.execute(_INSERT_CONTAINER, row)
        self._insert_history(record.id, 0, [history], ctx, at, None)
        return stored

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
        params = dict(values)
        if "config" in params:  # the one JSON column of containers
            params["config"] = to_json(params["config"])
        if "state" in params:
            params["state"] = _plain(params["state"], params["state"])
        for column in _BOOLEAN_COLUMNS.intersection(params):
            params[column] = int(params[column])
        params["_id"] = current.id
        params["_state"] = _plain(current.state, current.state)
        params["_version"] = current.version
        cursor = self._connection.execute(
            update_sql(_containers, tuple(values), _CAS), params
        )
        if cursor.rowcount != 1:
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
        actor, request_id = _plain(ctx.actor, ctx.actor), ctx.request_id
        plain = _plain
        rows = [
            (container_id, last_seq + offset, plain(event, event), plain(from_state, from_state),
             plain(to_state, to_state), step, plain(outcome, outcome),
             error_class, error_message, at, request_id, actor, operation_id,
             to_json(attributes) if attributes else None)
            for offset, (event, to_state, from_state, step, outcome, error_class, error_message,
                         attributes) in enumerate(drafts, start=1)
        ]
        self._connection.executemany(_INSERT_HISTORY, rows)

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
        cursor = self._connection.execute(
            _INSERT_OPERATION,
            {
                "container_id": container_id,
                "kind": kind,
                "status": status,
                "actor": ctx.actor.value,
                "request_id": ctx.request_id,
                "started_at": at,
                "params": to_json(params),
                "config_generation": config_generation,
            },
        )
        operation_id = cursor.lastrowid
        assert operation_id is not None
        return operation_id

    def update_operation(self, operation_id: int, **fields: Any) -> None:
        params = {name: _column_value(name, value) for name, value in fields.items()}
        params["_id"] = operation_id
        self._connection.execute(update_sql(_operations, tuple(fields), ("id",)), params)

    def record_steps(self, operation_id: int, drafts: Sequence[StepDraft]) -> None:
        """Insert each step, or update its status and non-NULL fields if it is recorded."""
        self._connection.executemany(
            _UPSERT_STEP,
            [(operation_id, index, _plain(kind, kind), name, _plain(status, status),
              to_json(handle), started, finished,
              error_class, error_message)
             for (index, kind, name, status, handle, started, finished, error_class,
                  error_message) in drafts],
        )

    def put_image(self, reference: str, digest: str, size_bytes: int, at: int) -> None:
        """Point ``reference`` at ``digest`` (replacing what it named before)."""
        self._connection.execute(_PUT_IMAGE, {"reference": reference, "digest": digest,
                                              "size_bytes": size_bytes, "created_at": at})

    def delete_image(self, reference: str) -> None:
        self._connection.execute(_DELETE_IMAGE, {"reference": reference})

    def put_request(self, request_id: str, method: str, digest: str, code: int, message: str,
                    response: bytes | None, at: int) -> None:
        """Record the outcome of request ``request_id`` (``digest``: of its parameters).
        Raises sqlite3.IntegrityError if that id is recorded already."""
        self._connection.execute(_INSERT_REQUEST, {
            "request_id": request_id, "method": method, "code": code, "message": message,
            "response": response, "created_at": at, "request_digest": digest})

    def put_generation(self, generation: int, reason: str, content: str,
                       runtimes: Mapping[str, str], removed: Sequence[str] | None,
                       at: int) -> None:
        self._connection.execute(_INSERT_GENERATION, {
            "generation": generation, "reason": reason, "content": content,
            "runtimes": to_json(runtimes),
            "removed_wrappers": json.dumps(list(removed)) if removed is not None else None,
            "created_at": at})
