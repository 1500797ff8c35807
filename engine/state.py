"""The vocabulary of the journal: container states, step statuses, actors and outcomes.

These values are stored in the database, so they are journal keys: renaming one is a schema
change. Docker's status string and its Running/Paused/Restarting/RemovalInProgress/Dead flags are
*derived* from the one ``ContainerState`` (see ``docker_status``), never stored.
"""

from __future__ import annotations

import enum


class ContainerState(enum.StrEnum):
    CREATED = "created"
    STARTING = "starting"  # the start saga is acquiring resources
    ROLLING_BACK = "rolling_back"  # the start saga failed; compensations are running
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    EXITING = "exiting"  # the task exited; its resources are being released
    EXITED = "exited"
    REMOVING = "removing"
    DEAD = "dead"
    REMOVED = "removed"  # tombstone: gone for Docker, kept for the audit trail


class StepStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    COMPENSATING = "compensating"
    COMPENSATED = "compensated"
    COMPENSATION_FAILED = "compensation_failed"
    # A compensation with nothing to release, or a step planned with an earlier one's intent
    # that never began (its start failed first).
    SKIPPED = "skipped"


class StepKind(enum.StrEnum):
    FORWARD = "forward"
    COMPENSATION = "compensation"


class OperationKind(enum.StrEnum):
    START = "start"
    EXIT = "exit"  # the task exited (stop, kill or on its own): cleanup and record
    REMOVE = "remove"


class OperationStatus(enum.StrEnum):
    IN_PROGRESS = "in_progress"
    COMPENSATING = "compensating"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Actor(enum.StrEnum):
    API = "api"
    RECOVERY = "recovery"
    MONITOR = "monitor"


class Outcome(enum.StrEnum):
    OK = "ok"
    ERROR = "error"
    SKIPPED = "skipped"


_STATUS_BY_STATE = {
    ContainerState.CREATED: "created",
    ContainerState.RUNNING: "running",
    ContainerState.PAUSED: "paused",
    ContainerState.RESTARTING: "restarting",
    ContainerState.EXITING: "running",
    ContainerState.EXITED: "exited",
    ContainerState.REMOVING: "removing",
    ContainerState.DEAD: "dead",
    ContainerState.REMOVED: "removed",
}


def docker_status(state: ContainerState, *, started_before: bool) -> str:
    """Docker's ``StateString()`` for a stored state.

    While a start is in flight or rolling back, Docker still reports the resting status the
    container had: ``created`` if it never started, ``exited`` otherwise.
    """
    if state in (ContainerState.STARTING, ContainerState.ROLLING_BACK):
        return "exited" if started_before else "created"
    return _STATUS_BY_STATE[state]


def docker_flags(state: ContainerState) -> dict[str, bool]:
    """Docker's overlapping booleans, derived from the one state."""
    return {
        "Running": state
        in (
            ContainerState.RUNNING,
            ContainerState.PAUSED,
            ContainerState.RESTARTING,
            ContainerState.EXITING,
        ),
        "Paused": state is ContainerState.PAUSED,
        "Restarting": state is ContainerState.RESTARTING,
        "RemovalInProgress": state is ContainerState.REMOVING,
        "Dead": state is ContainerState.DEAD,
    }
