"""The ``containers`` table: one row per container, its one lifecycle state and its config.

State changes are compare-and-set on ``version``; ``last_seq`` is the sequence number of the
container's newest history row, so history numbering is gap-free per container. A removed
container keeps its row as a tombstone (state ``removed``) so that its history stays joinable;
its name is free again (the unique index on ``name`` skips tombstones).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Enum, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from engine.state import ContainerState
from models.base import Base


def _enum_values(enum_type: type[ContainerState]) -> list[str]:
    return [member.value for member in enum_type]


class Container(Base):
    __tablename__ = "containers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    state: Mapped[ContainerState] = mapped_column(
        Enum(
            ContainerState,
            name="container_state",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=_enum_values,
        )
    )
    version: Mapped[int] = mapped_column(Integer, default=0)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    image: Mapped[str] = mapped_column(String(255), default="")
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[int | None] = mapped_column(Integer)
    finished_at: Mapped[int | None] = mapped_column(Integer)
    removed_at: Mapped[int | None] = mapped_column(Integer)
    exit_code: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    oom_killed: Mapped[bool] = mapped_column(Boolean, default=False)
    health_status: Mapped[str | None] = mapped_column(String(16))
    restart_count: Mapped[int] = mapped_column(Integer, default=0)
    has_been_started_before: Mapped[bool] = mapped_column(Boolean, default=False)
    has_been_manually_stopped: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_remove: Mapped[bool] = mapped_column(Boolean, default=False)
    restart_policy: Mapped[str] = mapped_column(String(32), default="no")
    restart_max_retries: Mapped[int] = mapped_column(Integer, default=0)
    runtime: Mapped[str] = mapped_column(String(255), default="")
    # The runtime binary locked in by the last start (wrapper script or binary path).
    runtime_binary: Mapped[str | None] = mapped_column(Text)
    # The start operation whose acquired resources the container currently holds.
    resources_operation_id: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        # On removed_at, not state: a partial index whose condition reads a column SQLite
        # rewrites whenever that column is set, and state is set on every state change.
        Index(
            "uq_containers_live_name",
            "name",
            unique=True,
            sqlite_where=text("removed_at IS NULL"),
        ),
    )


class Image(Base):
    """An imported root filesystem: a reference (``name:tag``) naming a content digest."""

    __tablename__ = "images"

    reference: Mapped[str] = mapped_column(String(255), primary_key=True)
    digest: Mapped[str] = mapped_column(String(71))  # "sha256:" + 64 hex
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(Integer)
