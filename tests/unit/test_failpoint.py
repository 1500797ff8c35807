"""Failpoints: parsing, acting, and the catalogue of names."""

from __future__ import annotations

import pytest

from engine import failpoint
from engine.errors import FailpointSystem, InvalidParameter, System
from engine.failpoint import ENV_VAR, Failpoints
from engine.steps import COMPENSATION_STEPS, START_STEPS, failpoint_names


def test_parse_valid_spec() -> None:
    points = Failpoints.parse(
        " start.mount_rootfs=error, cleanup.release_network=crash,start.persist.after=sleep(50),"
    )
    assert points.armed == {
        "start.mount_rootfs": "error",
        "cleanup.release_network": "crash",
        "start.persist.after": "sleep(50)",
    }


def test_parse_empty_spec_arms_nothing() -> None:
    assert Failpoints.parse("").armed == {}
    assert Failpoints.parse(" , ").armed == {}


def test_from_environment() -> None:
    points = Failpoints.from_environment({ENV_VAR: "start.setup_network=error"})
    assert points.armed == {"start.setup_network": "error"}
    assert Failpoints.from_environment({}).armed == {}


@pytest.mark.parametrize("spec", [
    "start.mount_rootfs", "=error", "start.mount_rootfs=", " = ", "start.persist=error,oops",
])
def test_malformed_entry(spec: str) -> None:
    with pytest.raises(InvalidParameter, match="expected name=action"):
        Failpoints.parse(spec)


@pytest.mark.parametrize("name", ["start.mount_rootf", "start", "cleanup.mount_rootfs.before"])
def test_unknown_name(name: str) -> None:
    with pytest.raises(InvalidParameter, match="unknown failpoint"):
        Failpoints.parse(f"{name}=error")


@pytest.mark.parametrize("action", ["explode", "ERROR", "sleep", "sleep(x)", "sleep(-1)",
                                    "sleep(5)ms"])
def test_unknown_action(action: str) -> None:
    with pytest.raises(InvalidParameter, match="invalid failpoint action"):
        Failpoints.parse(f"start.persist={action}")


def test_hit_error_raises_failpoint_system() -> None:
    points = Failpoints({"start.create_spec": "error"})
    with pytest.raises(FailpointSystem) as info:
        points.hit("start.create_spec")
    assert isinstance(info.value, System)
    assert str(info.value) == "failpoint start.create_spec: injected error"


def test_hit_sleep_stalls_for_the_given_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(failpoint.time, "sleep", slept.append)
    Failpoints({"start.persist": "sleep(250)"}).hit("start.persist")
    assert slept == [0.25]


def test_hit_unarmed_names_do_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    crashes: list[str] = []
    slept: list[float] = []
    monkeypatch.setattr(failpoint.time, "sleep", slept.append)
    Failpoints().hit("start.persist")
    points = Failpoints({"start.persist": "error"}, crash=lambda: crashes.append("crash"))
    assert points.hit("start.create_spec") is None
    assert points.hit("start.persist.after") is None
    assert (crashes, slept) == ([], [])


def test_hit_crash_calls_the_injected_crash() -> None:
    crashes: list[str] = []
    points = Failpoints({"cleanup.release_network": "crash"},
                        crash=lambda: crashes.append("crash"))
    points.hit("cleanup.release_network")
    assert crashes == ["crash"]
    points.hit("cleanup.unmount_ipc")
    assert crashes == ["crash"]


def test_failpoint_names_cover_every_step() -> None:
    names = failpoint_names()
    assert len(names) == len(set(names))
    for step in START_STEPS:
        assert f"start.{step}" in names
        assert f"start.{step}.after" in names
    for step in COMPENSATION_STEPS:
        assert f"cleanup.{step}" in names
    assert "start.mount_rootfs" in names
    assert "cleanup.release_network" in names


def test_start_failpoints_are_in_step_order() -> None:
    start = [name for name in failpoint_names() if name.startswith("start.")]
    expected = [name for step in START_STEPS for name in (f"start.{step}", f"start.{step}.after")]
    # The one inner failpoint sits between its step's two points.
    create = expected.index("start.create_runtime_container.after")
    expected.insert(create, "start.create_runtime_container.attach_network")
    assert start == expected


def test_every_listed_name_can_be_armed() -> None:
    points = Failpoints.parse(",".join(f"{name}=error" for name in failpoint_names()))
    assert set(points.armed) == set(failpoint_names())
