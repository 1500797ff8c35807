"""``ps --filter``: Docker's keys, values of one key as alternatives, keys all applying."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from engine.cli_filters import FilterError, matcher, parse_filters, wants_all


def container(name: str, status: str, created: int, *, exit_code: int = 0,
              image: str = "busybox", mounts: tuple[str, ...] = (),
              network: str = "none") -> SimpleNamespace:
    return SimpleNamespace(
        id=f"{name:0<8}".encode().hex()[:64].ljust(64, "0"), name=name, status=status,
        created_ms=created, exit_code=exit_code, image=image, image_digest="sha256:ab",
        config=SimpleNamespace(mounts=list(mounts), network_mode=network))


WEB = container("web", "running", 1, mounts=("data:/data",))
JOB = container("job", "exited", 2, exit_code=3, image="alpine:3")
OLD = container("webold", "exited", 3, network="host")
ALL = [WEB, JOB, OLD]


def names(*specs: str) -> list[str]:
    test = matcher(parse_filters(specs), ALL)
    return [c.name for c in ALL if test(c)]


@pytest.mark.parametrize(("specs", "expected"), [
    ((), ["web", "job", "webold"]),
    (("name=web",), ["web", "webold"]),
    (("name=^/web$",), ["web"]),
    (("status=exited",), ["job", "webold"]),
    (("status=exited", "status=running"), ["web", "job", "webold"]),
    (("status=exited", "name=web"), ["webold"]),
    (("exited=3",), ["job"]),
    (("ancestor=alpine:3",), ["job"]),
    (("ancestor=busybox",), ["web", "webold"]),
    (("before=job",), ["web"]),
    (("since=job",), ["webold"]),
    (("volume=data",), ["web"]),
    (("volume=/data",), ["web"]),
    (("network=host",), ["webold"]),
    (("label=a=b",), []),
    (("health=none",), ["web", "job", "webold"]),
    ((f"id={JOB.id[:6]}",), ["job"]),
])
def test_filters(specs: tuple[str, ...], expected: list[str]) -> None:
    assert names(*specs) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("colour=red", "invalid filter 'colour'"),
    ("status=sleeping", "invalid filter 'status=sleeping'"),
    ("exited=x", 'strconv.Atoi: parsing "x": invalid syntax'),
    ("name", "bad format of filter (expected name=value): name"),
    ("name=[", "invalid filter 'name=['"),
])
def test_refused_filters(spec: str, message: str) -> None:
    with pytest.raises(FilterError) as refused:
        parse_filters([spec])
    assert str(refused.value).startswith(message)


def test_a_reference_to_no_container_is_refused() -> None:
    with pytest.raises(FilterError, match="No such container: ghost"):
        matcher(parse_filters(["before=ghost"]), ALL)


def test_a_status_filter_lists_stopped_containers_too() -> None:
    assert wants_all(parse_filters(["status=exited"]))
    assert not wants_all(parse_filters(["exited=0"]))
