"""Frozen value types the store hands to the engine (no SQLAlchemy beyond this package).

They are ``NamedTuple``s: immutable like frozen dataclasses, and five times cheaper to build and
to copy with changes, which the journal does on every commit. Field order is column order
(a test holds them together).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

from engine.state import Actor, ContainerState, Outcome


class ContainerRecord(NamedTuple):
    id: str
    name: str
    state: ContainerState
    version: int
    last_seq: int
    image: str
    config: Mapping[str, Any]
    created_at: int
    started_at: int | None = None
    finished_at: int | None = None
    removed_at: int | None = None
    exit_code: int = 0
    error: str = ""
    pid: int = 0
    oom_killed: bool = False
    health_status: str | None = None
    restart_count: int = 0
    has_been_started_before: bool = False
    has_been_manually_stopped: bool = False
    auto_remove: bool = False
    restart_policy: str = "no"
    restart_max_retries: int = 0
    runtime: str = ""
    runtime_binary: str | None = None
    resources_operation_id: int | None = None

    def replace(self, **changes: Any) -> ContainerRecord:
        return self._replace(**changes)


class HistoryDraft(NamedTuple):
    """A history row to append; the store numbers it."""

    event: str
    to_state: ContainerState
    from_state: ContainerState | None = None
    step: str | None = None
    outcome: Outcome = Outcome.OK
    error_class: str | None = None
    error_message: str | None = None
    attributes: Mapping[str, Any] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class JournalContext:
    """Who is acting and on whose request; stamped on every history row and operation."""

    actor: Actor = Actor.API
    request_id: str | None = None


class RequestRecord(NamedTuple):
    request_id: str
    method: str
    code: int
    message: str
    response: bytes | None
    created_at: int
    request_digest: str | None  # SHA-256 of its parameters; None: recorded before 0005


class GenerationRecord(NamedTuple):
    generation: int
    reason: str
    content: str
    runtimes: Mapping[str, str]
    removed_wrappers: list[str] | None
    created_at: int


class ImageRecord(NamedTuple):
    reference: str
    digest: str
    size_bytes: int
    created_at: int


class HistoryRecord(NamedTuple):
    event_seq: int
    container_id: str
    seq: int
    event: str
    from_state: str | None
    to_state: str
    step: str | None
    outcome: str
    error_class: str | None
    error_message: str | None
    at: int
    request_id: str | None
    actor: str
    operation_id: int | None
    attributes: Mapping[str, Any] | None


class StepRecord(NamedTuple):
    operation_id: int
    step_index: int
    kind: str
    name: str
    status: str
    handle: Mapping[str, Any] | None
    started_at: int | None
    finished_at: int | None
    error_class: str | None
    error_message: str | None


class OperationRecord(NamedTuple):
    id: int
    container_id: str
    kind: str
    status: str
    actor: str
    request_id: str | None
    started_at: int
    finished_at: int | None
    failed_step: str | None
    error_class: str | None
    error_message: str | None
    exit_code: int | None
    config_generation: int | None
    runtime_binary: str | None
    params: Mapping[str, Any] | None
