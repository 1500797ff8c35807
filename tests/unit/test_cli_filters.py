"""``ps --filter``: Docker's keys, values of one key as alternatives, keys all applying."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from engine.cli_filters import FilterError, matcher, parse_filter_flag, parse_filters, wants_all


def container(name: str, status: str, created: int, *, exit_code: int = 0,
              image: str = "busybox", mounts: tuple[str, ...] = (),
              network: str = "none", labels: dict[str, str] | None = None
              ) -> SimpleNamespace:
    digest = "sha256:" + ("ab12" if image == "busybox" else "cd34") + "0" * 60
    return SimpleNamespace(
        id=f"{name:0<8}".encode().hex()[:64].ljust(64, "0"), name=name, status=status,
        created_ms=created, exit_code=exit_code, image=image, image_digest=digest,
        config=SimpleNamespace(mounts=list(mounts), network_mode=network,
                               labels=dict(labels or {})))


WEB = container("web", "running", 1, mounts=("data:/data",),
                labels={"tier": "front", "a": "c"})
JOB = container("job", "exited", 2, exit_code=3, image="alpine:3", labels={"tier": ""})
OLD = container("webold", "exited", 3, network="host")
ALL = [WEB, JOB, OLD]


def names(*specs: str) -> list[str]:
    test = matcher(parse_filters(specs), ALL)
    return [c.name for c in ALL if test(c)]


@pytest.mark.parametrize(("specs", "expected"), [
    ((), ["web", "job", "webold"]),
    (("name=web",), ["web", "webold"]),
    (("name=^/web$",), ["web"]),
    (("name=^web$",), ["web"]),  # NAME and /NAME, as Docker's
    (("name=(a+)+[",), []),  # does not compile: matches nothing, as Docker's
    (("name= web ",), ["web", "webold"]),  # values trimmed
    (("status=exited",), ["job", "webold"]),
    (("status=exited", "status=running"), ["web", "job", "webold"]),
    (("status=exited", "name=web"), ["webold"]),
    (("exited=3",), ["job"]),
    (("ancestor=alpine:3",), ["job"]),
    (("ancestor=busybox",), ["web", "webold"]),
    (("ancestor=busybox:latest",), ["web", "webold"]),
    (("ancestor=ab12",), ["web", "webold"]),
    (("ancestor=sha256:cd34",), ["job"]),
    (("before=job",), ["web"]),
    (("before=/job",), ["web"]),
    (("since=job",), ["webold"]),
    (("volume=data",), ["web"]),
    (("volume=/data",), ["web"]),
    (("network=host",), ["webold"]),
    (("label=a=b",), []),
    (("label=tier",), ["web", "job"]),  # moby's MatchKVList: the key alone, or KEY=VALUE
    (("label=tier=front",), ["web"]),
    (("label=tier=",), ["job"]),
    (("label=tier=front", "label=a=c"), ["web"]),
    (("label=tier", "status=exited"), ["job"]),
    (("label=tier", "label=a"), ["web"]),  # every label given, unlike other keys' values
    (("publish=80",), []),
    (("health=none",), ["web", "job", "webold"]),
    (("isolation=default", "is-task=false"), ["web", "job", "webold"]),
    ((f"id={JOB.id[:6]}",), ["job"]),
])
def test_filters(specs: tuple[str, ...], expected: list[str]) -> None:
    assert names(*specs) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("colour=red", "invalid filter 'colour'"),
    ("status=sleeping", "invalid filter 'status=sleeping'"),
    ("exited=x", "invalid filter 'exited=x': strconv.Atoi: parsing \"x\": invalid syntax"),
    ("health=bogus", "unrecognized filter value for health: bogus"),
    ("name", 'invalid argument "name" for "-f, --filter" flag: bad format of filter '
             "(expected name=value)"),
])
def test_refused_filters(spec: str, message: str) -> None:
    with pytest.raises(FilterError) as refused:
        parse_filters([spec])
    assert str(refused.value) == message


def test_an_empty_filter_is_ignored_one_of_spaces_is_malformed() -> None:
    assert parse_filter_flag("") is None
    assert parse_filters([""]) == {}
    with pytest.raises(FilterError, match="bad format of filter"):
        parse_filter_flag("  ")


@pytest.mark.parametrize(("reference", "message"), [
    ("ghost", "No such container: ghost"),
    ("7", "multiple IDs found with provided prefix: 7"),  # every ID here starts so
])
def test_a_reference_to_no_one_container_is_refused(reference: str, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        matcher(parse_filters([f"before={reference}"]), ALL)


def test_a_name_wins_over_an_id_prefix() -> None:
    """A container named like the start of another's ID is the one such a reference names."""
    named = container(WEB.id[:5], "exited", 4)
    everyone = [*ALL, named]
    test = matcher(parse_filters([f"since={WEB.id[:5]}"]), everyone)
    assert [c.name for c in everyone if test(c)] == []  # nothing was created after it


def test_a_status_filter_lists_stopped_containers_too() -> None:
    assert wants_all(parse_filters(["status=exited"]))
    assert not wants_all(parse_filters(["exited=0"]))


def test_an_ancestor_name_is_the_image_it_names_now() -> None:
    """Docker resolves the name to an image ID: a container whose name moved to other content
    is not its ancestor's any more, one created by another spelling of the name is."""
    moved = container("moved", "exited", 4)
    moved.image_digest = "sha256:" + "ee" * 32  # busybox named this image when it was made
    spelled = container("spelled", "exited", 5, image="docker.io/library/busybox")
    spelled.image_digest = WEB.image_digest
    everyone = [*ALL, moved, spelled]
    images = {"busybox:latest": WEB.image_digest, "alpine:3": JOB.image_digest}
    for value in ("busybox", "docker.io/library/busybox:latest"):
        test = matcher(parse_filters([f"ancestor={value}"]), everyone, images)
        assert [c.name for c in everyone if test(c)] == ["web", "webold", "spelled"]
    test = matcher(parse_filters(["ancestor=nothing"]), everyone, images)
    assert [c.name for c in everyone if test(c)] == []  # no such image: nothing
    test = matcher(parse_filters(["ancestor=ee"]), everyone, images)
    assert [c.name for c in everyone if test(c)] == ["moved"]  # its ID prefix still does
