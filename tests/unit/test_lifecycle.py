"""The lifecycle machine, exhaustively: every (state, event) pair, and Docker's refusals."""

from __future__ import annotations

import itertools

import pytest
from transitions import MachineError

from engine.errors import BerthError, ErrorClass, RemovalInProgressConflict
from engine.lifecycle import Event, advance, allowed_events
from engine.state import ContainerState, docker_flags, docker_status

S = ContainerState
E = Event
CID = "c0ffee"
NAME = "web"

# Every accepted pair and where it leads; ROLLED_BACK is conditional (see ``expected_target``).
ALLOWED: dict[tuple[ContainerState, Event], ContainerState] = {
    (S.CREATED, E.BEGIN_START): S.STARTING,
    (S.EXITED, E.BEGIN_START): S.STARTING,
    (S.STARTING, E.START_STEP): S.STARTING,
    (S.STARTING, E.START): S.RUNNING,
    (S.STARTING, E.START_FAILED): S.ROLLING_BACK,
    (S.ROLLING_BACK, E.COMPENSATE): S.ROLLING_BACK,
    (S.RUNNING, E.PAUSE): S.PAUSED,
    (S.PAUSED, E.UNPAUSE): S.RUNNING,
    (S.RUNNING, E.KILL): S.RUNNING,
    (S.PAUSED, E.KILL): S.PAUSED,
    (S.RUNNING, E.BEGIN_EXIT): S.EXITING,
    (S.PAUSED, E.BEGIN_EXIT): S.EXITING,
    (S.EXITING, E.EXIT_STEP): S.EXITING,
    (S.EXITING, E.DIE): S.EXITED,
    (S.EXITED, E.STOP): S.EXITED,
    (S.RUNNING, E.RESTART): S.RUNNING,
    (S.PAUSED, E.RESTART): S.PAUSED,
    (S.RESTARTING, E.RESTART): S.RESTARTING,
    (S.EXITING, E.RESTART): S.EXITING,
    (S.EXITED, E.RESTART): S.EXITED,
    (S.CREATED, E.BEGIN_REMOVE): S.REMOVING,
    (S.EXITED, E.BEGIN_REMOVE): S.REMOVING,
    (S.DEAD, E.BEGIN_REMOVE): S.REMOVING,
    (S.REMOVING, E.REMOVE_STEP): S.REMOVING,
    (S.REMOVING, E.REMOVE_FAILED): S.DEAD,
    (S.REMOVING, E.DESTROY): S.REMOVED,
}


def expected_target(state: ContainerState, event: Event, started_before: bool
                    ) -> ContainerState | None:
    if (state, event) == (S.ROLLING_BACK, E.ROLLED_BACK):
        # A failed start returns to the resting status: exited once started, else created.
        return S.EXITED if started_before else S.CREATED
    return ALLOWED.get((state, event))


def refusal(state: ContainerState, event: Event) -> BerthError:
    """The error ``advance`` raises for a refused pair (fails the test if it accepts it)."""
    try:
        advance(state, event, container_id=CID, name=NAME)
    except BerthError as exc:
        return exc
    pytest.fail(f"{event.value} was accepted in {state.value}")


@pytest.mark.parametrize(("state", "event"), list(itertools.product(S, E)),
                         ids=lambda value: str(value))
def test_every_state_event_pair(state: ContainerState, event: Event) -> None:
    for started_before in (False, True):
        target = expected_target(state, event, started_before)
        if target is not None:
            assert advance(state, event, started_before=started_before) is target
            continue
        try:
            advance(state, event, container_id=CID, name=NAME, started_before=started_before)
        except Exception as exc:
            assert isinstance(exc, BerthError), f"{event.value} in {state.value}: {exc!r}"
            assert not isinstance(exc, MachineError)
            assert exc.error_class in (ErrorClass.CONFLICT, ErrorClass.NOT_MODIFIED,
                                       ErrorClass.UNKNOWN)
        else:
            pytest.fail(f"{event.value} was accepted in {state.value}")


@pytest.mark.parametrize("state", list(S))
def test_allowed_events_match_the_table(state: ContainerState) -> None:
    expected = {event for (source, event) in ALLOWED if source is state}
    if state is S.ROLLING_BACK:
        expected.add(E.ROLLED_BACK)
    assert allowed_events(state) == expected


def test_rolled_back_returns_to_the_resting_status() -> None:
    assert advance(S.ROLLING_BACK, E.ROLLED_BACK, started_before=False) is S.CREATED
    assert advance(S.ROLLING_BACK, E.ROLLED_BACK, started_before=True) is S.EXITED


# Docker's validateState for start (spec 2, A4; behaviours 1-3).
@pytest.mark.parametrize(("state", "error_class", "message"), [
    (S.PAUSED, ErrorClass.CONFLICT, "cannot start a paused container, try unpause instead"),
    (S.RUNNING, ErrorClass.NOT_MODIFIED, "Container is already started"),
    (S.RESTARTING, ErrorClass.NOT_MODIFIED, "Container is already started"),
    (S.REMOVING, ErrorClass.CONFLICT, "container is marked for removal and cannot be started"),
    (S.DEAD, ErrorClass.CONFLICT, "container is marked for removal and cannot be started"),
])
def test_start_refusals_are_dockers(state: ContainerState, error_class: ErrorClass,
                                    message: str) -> None:
    error = refusal(state, E.BEGIN_START)
    assert error.error_class is error_class
    assert str(error) == message


# Spec section 7: pause.
@pytest.mark.parametrize(("state", "message"), [
    (S.PAUSED, f"Container {CID} is already paused"),
    (S.RESTARTING, f"Container {CID} is restarting, wait until the container is running"),
    (S.CREATED, f"container {CID} is not running"),
    (S.EXITED, f"container {CID} is not running"),
    (S.DEAD, f"container {CID} is not running"),
])
def test_pause_refusals_are_dockers(state: ContainerState, message: str) -> None:
    error = refusal(state, E.PAUSE)
    assert error.error_class is ErrorClass.CONFLICT
    assert str(error) == message


# Spec section 7: unpause checks ``!Paused`` first and leaves that error unclassified (500).
@pytest.mark.parametrize("state", [S.CREATED, S.RUNNING, S.RESTARTING, S.EXITED, S.DEAD])
def test_unpause_of_a_container_that_is_not_paused(state: ContainerState) -> None:
    error = refusal(state, E.UNPAUSE)
    assert str(error) == f"Container {CID} is not paused"
    assert error.error_class is ErrorClass.UNKNOWN


# Spec section 7: rm without force.
@pytest.mark.parametrize(("state", "message"), [
    (S.RUNNING, f"You cannot remove a running container {CID}. Stop the container before "
                "attempting removal or force remove"),
    (S.RESTARTING, f"You cannot remove a restarting container {CID}. Stop the container "
                   "before attempting removal or force remove"),
    (S.PAUSED, f"You cannot remove a paused container {CID}. Unpause and then stop the "
               "container before attempting removal or force remove"),
])
def test_remove_refusals_are_dockers(state: ContainerState, message: str) -> None:
    error = refusal(state, E.BEGIN_REMOVE)
    assert error.error_class is ErrorClass.CONFLICT
    assert str(error) == message


def test_second_removal_is_already_in_progress() -> None:
    error = refusal(S.REMOVING, E.BEGIN_REMOVE)
    assert isinstance(error, RemovalInProgressConflict)
    assert str(error) == f"removal of container {NAME} is already in progress"


@pytest.mark.parametrize("state", [S.CREATED, S.EXITED])
def test_kill_of_a_stopped_container(state: ContainerState) -> None:
    error = refusal(state, E.KILL)
    assert error.error_class is ErrorClass.CONFLICT
    assert str(error) == f"Container {CID} is not running"


# Derived Docker status and flags.
STATUS = {
    S.CREATED: ("created", "created"),  # (never started, started before)
    S.STARTING: ("created", "exited"),
    S.ROLLING_BACK: ("created", "exited"),
    S.RUNNING: ("running", "running"),
    S.PAUSED: ("paused", "paused"),
    S.RESTARTING: ("restarting", "restarting"),
    S.EXITING: ("running", "running"),
    S.EXITED: ("exited", "exited"),
    S.REMOVING: ("removing", "removing"),
    S.DEAD: ("dead", "dead"),
    S.REMOVED: ("removed", "removed"),
}


@pytest.mark.parametrize("state", list(S))
def test_docker_status(state: ContainerState) -> None:
    never, before = STATUS[state]
    assert docker_status(state, started_before=False) == never
    assert docker_status(state, started_before=True) == before


def state_string(flags: dict[str, bool], *, started: bool) -> str:
    """Docker's ``StateString()`` (spec 1.2), checks in its order."""
    if flags["Running"]:
        if flags["Paused"]:
            return "paused"
        return "restarting" if flags["Restarting"] else "running"
    if flags["RemovalInProgress"]:
        return "removing"
    if flags["Dead"]:
        return "dead"
    return "exited" if started else "created"


@pytest.mark.parametrize("state", [s for s in S if s is not S.REMOVED])
def test_flags_and_status_agree(state: ContainerState) -> None:
    flags = docker_flags(state)
    assert flags["Running"] or not flags["Paused"]  # Paused implies Running
    assert not flags["Restarting"] or (flags["Running"] and not flags["Paused"])
    assert not (flags["Dead"] and flags["Running"])
    assert sum(flags[name] for name in ("Paused", "Restarting", "RemovalInProgress",
                                        "Dead")) <= 1
    for started in (False, True):
        if (state, started) in ((S.CREATED, True), (S.EXITED, False)):
            continue  # impossible combinations
        assert state_string(flags, started=started) == docker_status(state,
                                                                     started_before=started)


def test_docker_flags_table() -> None:
    running = {s for s in S if docker_flags(s)["Running"]}
    assert running == {S.RUNNING, S.PAUSED, S.RESTARTING, S.EXITING}
    assert {s for s in S if docker_flags(s)["Paused"]} == {S.PAUSED}
    assert {s for s in S if docker_flags(s)["Restarting"]} == {S.RESTARTING}
    assert {s for s in S if docker_flags(s)["RemovalInProgress"]} == {S.REMOVING}
    assert {s for s in S if docker_flags(s)["Dead"]} == {S.DEAD}
