"""Create-time validation with Docker's messages, and container references (spec 2, A3)."""

from __future__ import annotations

import os
import pathlib
import re

import pytest

from engine.container_config import (
    RestartPolicy,
    normalize_name,
    parse_mount,
    validate,
    validate_mount,
)
from engine.errors import ContainerNotFound, InvalidParameter, NameInUseConflict
from engine.service import Engine
from tests.conftest import make_config


# -- names -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "stored"), [
    ("web", "web"), ("ab", "ab"), ("/web", "web"), ("a.b-c_d", "a.b-c_d"), ("0x", "0x"),
    ("Web.1", "Web.1"),
])
def test_valid_names(name: str, stored: str) -> None:
    assert normalize_name(name) == stored


@pytest.mark.parametrize("name", ["a", "/a", "-web", ".web", "_web", "web!", "we b", "//web",
                                  "web/1", "/", "é-web"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        normalize_name(name)
    assert str(info.value) == (
        f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
    )


def test_validate_checks_the_name() -> None:
    with pytest.raises(InvalidParameter, match=r"Invalid container name \(x\)"):
        validate(make_config("x"))
    validate(make_config())  # no name: one is generated


# -- restart policies (spec 6) ---------------------------------------------------------------
@pytest.mark.parametrize("policy", [
    RestartPolicy(), RestartPolicy(""), RestartPolicy("always"), RestartPolicy("unless-stopped"),
    RestartPolicy("on-failure"), RestartPolicy("on-failure", 5),
])
def test_valid_restart_policies(policy: RestartPolicy) -> None:
    policy.validate()


@pytest.mark.parametrize(("policy", "message"), [
    (RestartPolicy("always", 3), "maximum retry count cannot be used with restart policy 'always'"),
    (RestartPolicy("unless-stopped", 1),
     "maximum retry count cannot be used with restart policy 'unless-stopped'"),
    (RestartPolicy("no", 2), "maximum retry count cannot be used with restart policy 'no'"),
    # Docker checks the policy name first: a negative count on ``always`` is "cannot be used".
    (RestartPolicy("always", -1),
     "maximum retry count cannot be used with restart policy 'always'"),
    (RestartPolicy("on-failure", -1), "maximum retry count cannot be negative"),
    (RestartPolicy("sometimes"), "invalid restart policy 'sometimes'"),
], ids=["always:3", "unless-stopped:1", "no:2", "always:-1", "on-failure:-1", "sometimes"])
def test_invalid_restart_policies(policy: RestartPolicy, message: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        policy.validate()
    assert str(info.value) == message


def test_parse_restart_policy() -> None:
    assert RestartPolicy.parse("on-failure:3") == RestartPolicy("on-failure", 3)
    assert RestartPolicy.parse("always") == RestartPolicy("always", 0)
    assert RestartPolicy.parse("") == RestartPolicy("no", 0)
    with pytest.raises(InvalidParameter):
        RestartPolicy.parse("on-failure:three")


@pytest.mark.parametrize("policy", ["always", "unless-stopped", "on-failure"])
def test_auto_remove_with_a_restart_policy(policy: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        validate(make_config(auto_remove=True, restart_policy=RestartPolicy(policy)))
    assert str(info.value) == "can't create 'AutoRemove' container with restart policy"


def test_auto_remove_without_a_restart_policy() -> None:
    validate(make_config(auto_remove=True))
    validate(make_config(auto_remove=True, restart_policy=RestartPolicy("no")))


# -- env, volumes, network mode --------------------------------------------------------------
def test_valid_env() -> None:
    validate(make_config(env=("A=1", "B=", "PATH=/bin:/usr/bin", "ONLY_NAME", "X=a=b")))


def test_env_names_are_not_checked_beyond_being_there() -> None:
    """Docker refuses only an empty name (moby #25099); spaces are the application's."""
    validate(make_config(env=(" FOO=1", "\tBAR=2", "A B=3", "ü=4")))


@pytest.mark.parametrize("variable", ["=1", "", "="])
def test_invalid_env(variable: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        validate(make_config(env=("OK=1", variable)))
    assert str(info.value) == f"invalid environment variable: {variable}"


@pytest.mark.parametrize(("spec", "parsed"), [
    ("/src:/dst", {"source": "/src", "destination": "/dst", "readonly": False,
                   "propagation": None, "modes": []}),
    ("/src:/dst:ro", {"source": "/src", "destination": "/dst", "readonly": True,
                      "propagation": None, "modes": ["ro"]}),
    ("data:/var/lib/data:rw", {"source": "data", "destination": "/var/lib/data",
                               "readonly": False, "propagation": None, "modes": ["rw"]}),
    ("/src:/dst:ro,z,rslave", {"source": "/src", "destination": "/dst", "readonly": True,
                               "propagation": "rslave", "modes": ["ro", "z", "rslave"]}),
    ("my.vol-1_a:/d:nocopy,Z", {"source": "my.vol-1_a", "destination": "/d",
                                "readonly": False, "propagation": None,
                                "modes": ["nocopy", "Z"]}),
    ("/h:/x:", {"source": "/h", "destination": "/x", "readonly": False, "propagation": None,
                "modes": []}),
    ("/h:/x:cached", {"source": "/h", "destination": "/x", "readonly": False,
                      "propagation": None, "modes": ["cached"]}),
])
def test_valid_volume_specs(spec: str, parsed: dict[str, object]) -> None:
    assert dict(validate_mount(spec)) == parsed
    validate(make_config(mounts=(spec,)))


@pytest.mark.parametrize("spec", [":/dst", "/src:", "/a:/b:ro:x", "", "/x:ro", "/x:nocopy",
                                  "vol:rw,z"])
def test_invalid_volume_specs(spec: str) -> None:
    """moby's ParseMountRaw: two parts whose second is a valid mode are a destination and
    a mode, which no volume can be ("/foo:rw")."""
    with pytest.raises(InvalidParameter) as info:
        validate(make_config(mounts=(spec,)))
    assert str(info.value) == f"invalid volume specification: '{spec}'"


@pytest.mark.parametrize("spec", ["/src:/dst:rx", "/s:/d:ro,rw", "/s:/d:RO", "/s:/d:ro,ro",
                                  "/s:/d:shared,slave", "/s:/d:z,Z", "/s:/d:cached,delegated",
                                  "/s:/d:ro,,", "/s:/d:,ro"])
def test_invalid_volume_modes(spec: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        validate(make_config(mounts=(spec,)))
    assert str(info.value) == f"invalid mode: {spec.split(':')[2]}"


@pytest.mark.parametrize("name", ["../../../../tmp/escaped", "..", "a/b", "bad name!", "-x"])
def test_volume_names_are_docker_local_volume_names(name: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        validate(make_config(mounts=(f"{name}:/mnt",)))
    assert str(info.value) == (
        f'create {name}: "{name}" includes invalid characters for a local volume name, only '
        '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
        "use absolute path")


def test_a_one_character_volume_name_is_too_short() -> None:
    with pytest.raises(InvalidParameter, match="volume name is too short"):
        validate(make_config(mounts=("v:/mnt",)))


@pytest.mark.parametrize(("spec", "kind"), [("/src:/", "bind"), ("vol:/", "volume"),
                                            ("/src://", "bind"), ("/h:/..", "bind"),
                                            ("/h:/.", "bind"), ("/h:/a/..", "bind")])
def test_a_mount_cannot_cover_the_root(spec: str, kind: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        validate(make_config(mounts=(spec,)))
    assert str(info.value) == (f"invalid volume specification: '{spec}': invalid mount "
                               f'config for type "{kind}": invalid specification: '
                               "destination can't be '/'")


@pytest.mark.parametrize("mounts", [("/tmp:/x", "/var:/x"), ("/tmp:/x", "vol:/x/:ro"),
                                    ("/tmp:/x/y", "data://x/./y")])
def test_two_mounts_on_one_destination_are_refused(mounts: tuple[str, ...]) -> None:
    """moby's registerMountPoints: the second would hide the first."""
    with pytest.raises(InvalidParameter) as info:
        validate(make_config(mounts=mounts))
    assert str(info.value) == f"Duplicate mount point: {'/x/y' if '/x/y' in mounts[0] else '/x'}"
    validate(make_config(mounts=(mounts[0], "/var:/elsewhere")))


@pytest.mark.parametrize(("spec", "message"), [
    ("vol:/d:rshared", 'type "volume": field BindOptions must not be specified'),
    ("/h:/d:nocopy", 'type "bind": field VolumeOptions must not be specified')])
def test_options_of_the_other_mount_type_are_refused(spec: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        validate(make_config(mounts=(spec,)))
    assert str(info.value) == (f"invalid volume specification: '{spec}': invalid mount "
                               f"config for {message}")


def test_a_start_accepts_what_an_older_create_stored_unless_it_escapes() -> None:
    """Containers created before a rule existed still start; a path as a volume name or a
    destination that is the root never does."""
    for stored in ("a:/data", "my vol:/x", "UPPER:/x"):
        assert parse_mount(stored)["destination"].startswith("/")
    for escaping in ("../../x:/d", "a/b:/d", "..:/d", "/h:/", "/h:/.."):
        with pytest.raises(InvalidParameter):
            parse_mount(escaping)


def test_the_working_directory_must_be_absolute() -> None:
    with pytest.raises(InvalidParameter) as info:
        validate(make_config(working_dir="relative/dir"))
    assert str(info.value) == ("the working directory 'relative/dir' is invalid, it needs to "
                               "be an absolute path")
    validate(make_config(working_dir="/srv"))


def test_a_hostname_longer_than_the_kernel_allows_is_invalid() -> None:
    with pytest.raises(InvalidParameter, match="longer than 64 bytes"):
        validate(make_config(hostname="h" * 65))
    validate(make_config(hostname="h" * 64))


@pytest.mark.parametrize(("secrets", "message"), [
    (("..=x",), "invalid secret name '..'"), (("=x",), "invalid secret name ''"),
    (("a/=x",), "invalid secret name 'a/'"), (("../../etc/passwd=x",), "invalid secret name"),
    (("k=1", "k=2"), "duplicate secret 'k'")])
def test_secret_names_are_file_names(secrets: tuple[str, ...], message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        validate(make_config(secrets=secrets))


@pytest.mark.parametrize(("spec", "kind"), [("/src:dst", "bind"), ("vol:d/x:ro", "volume")])
def test_volume_destination_must_be_absolute(spec: str, kind: str) -> None:
    """In moby's words (ParseMountRaw wrapping validateMountConfig's)."""
    with pytest.raises(InvalidParameter) as info:
        validate_mount(spec)
    destination = spec.split(":")[1]
    assert str(info.value) == (f"invalid volume specification: '{spec}': invalid mount config "
                               f"for type \"{kind}\": invalid mount path: '{destination}' mount "
                               "path must be absolute")


def test_a_mode_is_checked_before_the_destination() -> None:
    """moby's ParseMountRaw refuses the mode before it validates the mount."""
    with pytest.raises(InvalidParameter) as info:
        validate_mount("vol:rel:bogus")
    assert str(info.value) == "invalid mode: bogus"


@pytest.mark.parametrize("mode", ["none", "host"])
def test_supported_network_modes(mode: str) -> None:
    validate(make_config(network_mode=mode))


@pytest.mark.parametrize("mode", ["bridge", "container:abc", ""])
def test_unsupported_network_modes(mode: str) -> None:
    with pytest.raises(InvalidParameter, match="is not supported"):
        validate(make_config(network_mode=mode))


# -- through the engine ----------------------------------------------------------------------
def stored_rows(engine: Engine) -> tuple[int, int]:
    with engine.saga.db.read() as reader:
        return len(reader.containers(include_removed=True)), len(reader.history())


@pytest.mark.parametrize("config", [
    make_config("x"),
    make_config("web", restart_policy=RestartPolicy("always", 1)),
    make_config("web", auto_remove=True, restart_policy=RestartPolicy("always")),
    make_config("web", env=("=oops",)),
    make_config("web", mounts=("nocolon",)),
    make_config("web", network_mode="bridge"),
], ids=["name", "restart", "auto_remove", "env", "volume", "network"])
def test_create_with_bad_input_writes_nothing(engine: Engine, config: object) -> None:
    with pytest.raises(InvalidParameter):
        engine.create(config)  # type: ignore[arg-type]
    assert stored_rows(engine) == (0, 0)


def test_create_with_a_duplicate_name(engine: Engine) -> None:
    first = engine.create(make_config("web"))
    for name in ("web", "/web"):
        with pytest.raises(NameInUseConflict) as info:
            engine.create(make_config(name))
        assert info.value.owner_id == first.id
        assert str(info.value).startswith(f'Conflict. The container name "/web" is already in '
                                          f'use by container "{first.id}".')
    assert stored_rows(engine) == (1, 1)


def test_create_strips_the_leading_slash(engine: Engine) -> None:
    assert engine.create(make_config("/web")).name == "web"


def test_resolve_empty_reference(engine: Engine) -> None:
    with pytest.raises(InvalidParameter) as info:
        engine.resolve("")
    assert str(info.value) == 'invalid name or ID supplied: ""'


def test_resolve_unknown_reference(engine: Engine) -> None:
    engine.create(make_config("web"))
    with pytest.raises(ContainerNotFound) as info:
        engine.resolve("x")
    assert str(info.value) == "No such container: x"


def test_resolve_ambiguous_prefix(engine: Engine) -> None:
    seen: dict[str, str] = {}
    while True:  # at most 17 containers before two ids share a first hex digit
        container_id = engine.create(make_config()).id
        if container_id[0] in seen:
            break
        seen[container_id[0]] = container_id
    prefix = container_id[0]
    with pytest.raises(InvalidParameter) as info:
        engine.resolve(prefix)
    assert str(info.value) == f"multiple IDs found with provided prefix: {prefix}"


def test_resolve_by_id_name_and_unique_prefix(engine: Engine) -> None:
    web = engine.create(make_config("web"))
    other = engine.create(make_config("db"))
    assert engine.resolve(web.id).id == web.id
    assert engine.resolve("web").id == web.id
    assert engine.resolve("/web").id == web.id
    assert engine.resolve("db").id == other.id
    length = next(n for n in range(1, 65) if web.id[:n] != other.id[:n])
    assert engine.resolve(web.id[:length]).id == web.id
    assert engine.resolve(other.id[:length]).id == other.id


def test_resolve_prefers_a_name_to_an_id_prefix(engine: Engine) -> None:
    web = engine.create(make_config("web"))
    named = engine.create(make_config(web.id[:12]))
    assert engine.resolve(web.id[:12]).id == named.id
    assert engine.resolve(web.id).id == web.id


def test_the_mount_of_a_path_is_found_with_its_escaped_names(tmp_path: pathlib.Path) -> None:
    """/proc/self/mountinfo writes a space as \\040; the deepest mount holding the path wins."""
    from engine import linux

    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    spaced = tmp_path / "with space"
    spaced.mkdir()
    linux.mount("tmpfs", str(spaced), "tmpfs", 0, "size=1m")
    try:
        (spaced / "inner").mkdir()
        point, fields = linux.propagation_of(str(spaced / "inner"))
        assert point == str(spaced)
        assert all(field.startswith(("shared:", "master:", "propagate_from:", "unbindable"))
                   for field in fields)
    finally:
        linux.unmount(str(spaced), lazy=True)


@pytest.mark.parametrize("field", ["image", "command", "env", "mounts", "user", "working_dir",
                                   "hostname", "secrets", "labels"])
def test_a_nul_byte_is_refused_at_create(field: str) -> None:
    """No path, argument or variable can hold one: it used to fail at start, unclassified."""
    value = {"image": "busy\0box", "command": ("echo", "a\0b"), "env": ("A=\0",),
             "mounts": ("/tmp\0:/x",), "user": "ro\0ot", "working_dir": "/w\0",
             "hostname": "h\0", "secrets": ("s=\0",), "labels": (("k", "v\0"),)}[field]
    with pytest.raises(InvalidParameter, match="it contains a NUL byte"):
        validate(make_config(**{field: value}))


def test_a_bare_absolute_path_is_an_anonymous_volume() -> None:
    """Docker's ``-v /path``; its root and a duplicate of another mount are refused."""
    validate(make_config(mounts=("/data", "/cache/")))
    with pytest.raises(InvalidParameter, match="destination can't be '/'"):
        validate(make_config(mounts=("/",)))
    with pytest.raises(InvalidParameter, match="Duplicate mount point: /data"):
        validate(make_config(mounts=("/data", "vol:/data/")))


def test_generated_names_are_mobys_adjective_surname() -> None:
    """moby's GetRandomName: ADJECTIVE_SURNAME; a retry appends one digit."""
    from engine.container_config import generate_name

    assert all(re.fullmatch(r"[a-z]+_[a-z]+", generate_name()) for _ in range(50))
    assert all(re.fullmatch(r"[a-z]+_[a-z]+[0-9]", generate_name(2)) for _ in range(50))


def test_a_generated_name_that_is_taken_is_drawn_again_then_is_the_short_id(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """moby's generateAndReserveName: six draws (a digit after the first), then the short
    ID; once that is taken too, the create is refused (NameInUseConflict)."""
    from engine import service
    from engine.composition import open_engine
    from engine.errors import NameInUseConflict
    from engine.testing import FakeHost, FakeRuntime

    engine, _ = open_engine(tmp_path, runtime=FakeRuntime(), host=FakeHost(str(tmp_path)))
    draws: list[int] = []

    def always(attempt: int = 0) -> str:
        draws.append(attempt)
        return "calm_turing" if attempt == 0 else f"calm_turing{attempt}"

    monkeypatch.setattr(service, "generate_name", always)
    first = engine.create(make_config())
    assert first.name == "calm_turing"
    for attempt in range(1, 6):
        engine.create(make_config(name=f"calm_turing{attempt}"))  # every draw taken
    draws.clear()
    fallback = engine.create(make_config())
    assert draws == [0, 1, 2, 3, 4, 5] and fallback.name == fallback.id[:12]
    monkeypatch.setattr(service.hashlib, "sha256", lambda _: type(
        "Fixed", (), {"hexdigest": lambda self: fallback.id[:12] + "0" * 52})())
    with pytest.raises(NameInUseConflict):
        engine.create(make_config())
    engine.saga.db.close()
