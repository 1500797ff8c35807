"""The journal: append-only history, operations (saga runs) and their steps.

* ``history``: one row per state change or saga step, numbered gap-free per container
  (``UNIQUE(container_id, seq)``); its integer key is a global, increasing event sequence.
* ``operations``: one row per run of a journaled operation (a start attempt, an exit cleanup,
  a removal), with its outcome.
* ``operation_steps``: keyed by (operation, step index), so a step cannot be recorded twice; each
  carries the handle of the resource it acquired, written with its intent before the side effect.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class HistoryEntry(Base):
    __tablename__ = "history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    container_id: Mapped[str] = mapped_column(String(64), ForeignKey("containers.id"))
    seq: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(64))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    step: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    error_class: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    at: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(String(128))
    actor: Mapped[str] = mapped_column(String(16))
    operation_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("operations.id"))
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (UniqueConstraint("container_id", "seq"),)


class Operation(Base):
    __tablename__ = "operations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    container_id: Mapped[str] = mapped_column(String(64), ForeignKey("containers.id"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[int] = mapped_column(Integer)
    finished_at: Mapped[int | None] = mapped_column(Integer)
    failed_step: Mapped[str | None] = mapped_column(String(64))
    error_class: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    config_generation: Mapped[int | None] = mapped_column(Integer)
    runtime_binary: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    # No index on unfinished operations: it would cost two WAL frames of every operation, and
    # only recovery asks, once, at start-up (a scan).


class OperationStep(Base):
    __tablename__ = "operation_steps"

    operation_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("operations.id"), primary_key=True
    )
    step_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24))
    handle: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    started_at: Mapped[int | None] = mapped_column(Integer)
    finished_at: Mapped[int | None] = mapped_column(Integer)
    error_class: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)

    # A rowid table, not WITHOUT ROWID: rows carry JSON handles (a few hundred bytes), and
    # appending them to a rowid table splits pages far less (measured: 16 -> 6 WAL frames a
    # start).


class ApiRequest(Base):
    """The outcome of a mutating API call, by its request id: a retry gets it back."""

    __tablename__ = "api_requests"

    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    method: Mapped[str] = mapped_column(String(64))
    code: Mapped[int] = mapped_column(Integer)  # a gRPC status code; 0: OK
    message: Mapped[str] = mapped_column(Text, default="")
    response: Mapped[bytes | None] = mapped_column(LargeBinary)  # the serialized reply
    created_at: Mapped[int] = mapped_column(Integer)
    # SHA-256 of the request's parameters: the id reused with others is refused. NULL on the
    # rows of a database from before revision 0005.
    request_digest: Mapped[str | None] = mapped_column(String(64))


class ConfigGeneration(Base):
    """One applied daemon configuration: at daemon start or by a successful reload."""

    __tablename__ = "config_generations"

    generation: Mapped[int] = mapped_column(Integer, primary_key=True)
    reason: Mapped[str] = mapped_column(String(16))  # "start" or "reload"
    content: Mapped[str] = mapped_column(Text)  # the configuration, as applied (JSON)
    runtimes: Mapped[dict[str, Any]] = mapped_column(JSON)  # name -> binary it resolves to
    removed_wrappers: Mapped[list[str] | None] = mapped_column(JSON)  # garbage collected
    created_at: Mapped[int] = mapped_column(Integer)
