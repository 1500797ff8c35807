"""The lifecycle machine: which event may move a container from which state to which.

Contract: pure. One shared ``transitions.Machine`` (no auto transitions, no callbacks with I/O)
answers ``advance(state, event) -> state``; a refused event raises the error class Docker
returns for it (``validateState`` for start, the pause/unpause/rm messages for the others).
The store persists the answer together with its history row.
"""

from __future__ import annotations

import enum
import functools
from typing import Any

from transitions import Machine, MachineError

from engine.errors import BerthError, Conflict, NotModified, RemovalInProgressConflict, Unknown
from engine.state import ContainerState, docker_status

S = ContainerState


class Event(enum.StrEnum):
    """Machine events; the plain names are Docker's event names and appear in its event feed."""

    CREATE = "create"
    BEGIN_START = "start.begin"
    START_STEP = "start.step"
    START = "start"
    START_FAILED = "start.failed"
    COMPENSATE = "start.compensate"
    ROLLED_BACK = "start.rolled_back"
    PAUSE = "pause"
    UNPAUSE = "unpause"
    KILL = "kill"
    BEGIN_EXIT = "exit.begin"
    EXIT_STEP = "exit.step"
    DIE = "die"
    STOP = "stop"
    RESTART = "restart"
    BEGIN_REMOVE = "remove.begin"
    REMOVE_STEP = "remove.step"
    REMOVE_FAILED = "remove.failed"
    DESTROY = "destroy"


DOCKER_EVENTS = frozenset(
    {Event.CREATE, Event.START, Event.PAUSE, Event.UNPAUSE, Event.KILL, Event.DIE, Event.STOP,
     Event.RESTART, Event.DESTROY}
)

_LIVE = [S.RUNNING, S.PAUSED]

_TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": Event.BEGIN_START, "source": [S.CREATED, S.EXITED], "dest": S.STARTING},
    {"trigger": Event.START_STEP, "source": S.STARTING, "dest": None},
    {"trigger": Event.START, "source": S.STARTING, "dest": S.RUNNING},
    {"trigger": Event.START_FAILED, "source": S.STARTING, "dest": S.ROLLING_BACK},
    {"trigger": Event.COMPENSATE, "source": S.ROLLING_BACK, "dest": None},
    {
        "trigger": Event.ROLLED_BACK,
        "source": S.ROLLING_BACK,
        "dest": S.EXITED,
        "conditions": "started_before",
    },
    {"trigger": Event.ROLLED_BACK, "source": S.ROLLING_BACK, "dest": S.CREATED},
    {"trigger": Event.PAUSE, "source": S.RUNNING, "dest": S.PAUSED},
    {"trigger": Event.UNPAUSE, "source": S.PAUSED, "dest": S.RUNNING},
    {"trigger": Event.KILL, "source": _LIVE, "dest": None},
    {"trigger": Event.BEGIN_EXIT, "source": _LIVE, "dest": S.EXITING},
    {"trigger": Event.EXIT_STEP, "source": S.EXITING, "dest": None},
    {"trigger": Event.DIE, "source": S.EXITING, "dest": S.EXITED},
    {"trigger": Event.STOP, "source": S.EXITED, "dest": None},
    # T25: logged once a restart's start succeeded, whatever the container did since.
    {"trigger": Event.RESTART,
     "source": [S.RUNNING, S.PAUSED, S.RESTARTING, S.EXITING, S.EXITED], "dest": None},
    {"trigger": Event.BEGIN_REMOVE, "source": [S.CREATED, S.EXITED, S.DEAD], "dest": S.REMOVING},
    {"trigger": Event.REMOVE_STEP, "source": S.REMOVING, "dest": None},
    {"trigger": Event.REMOVE_FAILED, "source": S.REMOVING, "dest": S.DEAD},
    {"trigger": Event.DESTROY, "source": S.REMOVING, "dest": S.REMOVED},
]


class _Position:
    """The one attribute ``transitions`` needs of a model: where the container is."""

    __slots__ = ("started_before", "state")

    def __init__(self, state: str, started_before: bool) -> None:
        self.state = state
        self.started_before = started_before


def _plain(transition: dict[str, Any]) -> dict[str, Any]:
    """Plain strings for ``transitions`` (it would name Enum members by ``.name``)."""

    def value(item: Any) -> Any:
        if isinstance(item, list):
            return [value(element) for element in item]
        return item.value if isinstance(item, enum.Enum) else item

    return {key: value(item) for key, item in transition.items()}


_MACHINE = Machine(
    model=None,
    states=[state.value for state in ContainerState],
    transitions=[_plain(t) for t in _TRANSITIONS],
    initial=None,
    auto_transitions=False,
    ignore_invalid_triggers=False,
)


def _rejection(event: Event, state: ContainerState, container_id: str, name: str) -> BerthError:
    """The error Docker gives for ``event`` in ``state`` (checks in validateState's order)."""
    if event is Event.BEGIN_START:
        if state is S.PAUSED:
            return Conflict("cannot start a paused container, try unpause instead")
        if state in (S.RUNNING, S.RESTARTING, S.EXITING):
            return NotModified("Container is already started")
        if state in (S.REMOVING, S.DEAD, S.REMOVED):
            return Conflict("container is marked for removal and cannot be started")
        return Conflict(f"a start of container {container_id} is already in progress")
    if event is Event.PAUSE:
        if state is S.PAUSED:
            return Conflict(f"Container {container_id} is already paused")
        if state is S.RESTARTING:
            return Conflict(
                f"Container {container_id} is restarting, wait until the container is running"
            )
        return Conflict(f"container {container_id} is not running")
    if event is Event.UNPAUSE:
        # moby checks Paused first and leaves this error unclassified (HTTP 500).
        return Unknown(f"Container {container_id} is not paused")
    if event is Event.KILL or event is Event.BEGIN_EXIT:
        return Conflict(f"Container {container_id} is not running")
    if event is Event.BEGIN_REMOVE:
        if state is S.REMOVING:
            return RemovalInProgressConflict(name or container_id)
        if state is S.PAUSED:
            return Conflict(
                f"You cannot remove a paused container {container_id}. Unpause and then stop "
                "the container before attempting removal or force remove"
            )
        status = docker_status(state, started_before=True)
        return Conflict(
            f"You cannot remove a {status} container {container_id}. Stop the container "
            "before attempting removal or force remove"
        )
    return Conflict(f"cannot {event.value} container {container_id} in state {state.value}")


def advance(
    state: ContainerState,
    event: Event,
    *,
    container_id: str = "",
    name: str = "",
    started_before: bool = False,
) -> ContainerState:
    """Return the state ``event`` leads to from ``state``.

    Raises the Docker error for a refused event: Conflict, NotModified, or
    RemovalInProgressConflict (see ``_rejection``).
    """
    target_state = target(state, event, started_before)
    if target_state is None:
        raise _rejection(event, state, container_id, name)
    return target_state


@functools.cache
def target(state: ContainerState, event: Event, started_before: bool) -> ContainerState | None:
    """Ask the machine once per (state, event, started_before); the machine is pure."""
    machine_event = _MACHINE.events.get(event.value)
    if machine_event is None:  # an event with no transition at all, e.g. ``create``
        return None
    position = _Position(state.value, started_before)
    try:
        moved = machine_event.trigger(position)
    except MachineError:
        return None
    return ContainerState(position.state) if moved else None


def allowed_events(state: ContainerState) -> frozenset[Event]:
    """Every event the machine accepts in ``state``."""
    return frozenset(Event(trigger) for trigger in _MACHINE.get_triggers(state.value))
