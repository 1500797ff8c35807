"""The generated config.json validates against the OCI runtime-spec v1.0.2 JSON schema.

The schemas are read from ../shared/oci-runtime-spec-v1.0.2 (present in CI), never copied.
"""

from __future__ import annotations

import json
import os
import pathlib
import resource
import socket
import stat
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from engine import oci_spec
from engine.errors import InvalidParameter
from engine.oci_spec import DEFAULT_PATH, build_spec, spec_json
from tests.conftest import SHARED

SCHEMA_DIR = SHARED / "oci-runtime-spec-v1.0.2" / "schema"


def validator() -> jsonschema.Draft4Validator:
    if not SCHEMA_DIR.is_dir():
        pytest.fail(f"OCI schemas missing at {SCHEMA_DIR}: ../shared is part of the checkout")
    registry: Registry = Registry()
    for path in SCHEMA_DIR.glob("*.json"):
        contents = json.loads(path.read_text())
        registry = registry.with_resource(path.name, Resource(contents, DRAFT4))
    schema = json.loads((SCHEMA_DIR / "config-schema.json").read_text())
    return jsonschema.Draft4Validator(schema, registry=registry)


def acquired(tmp_path: pathlib.Path, *, network: bool = True) -> dict[str, Any]:
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\nstaff:x:50:\n")
    handles: dict[str, Any] = {
        "rootfs": {"path": str(rootfs)},
        "ipc": {"path": str(tmp_path / "shm")},
        "secrets": {"path": str(tmp_path / "secrets")},
        "volumes": {"mounts": [{"source": "/srv/data", "destination": "/data",
                                "readonly": True}]},
    }
    if network:
        handles["network"] = {"netns": "/run/berth/netns/abc"}
    return handles


CONFIG = {"cmd": ["sh", "-c", "echo hi"], "env": ["A=1"], "working_dir": "/tmp",
          "user": "app:staff", "hostname": "box", "network_mode": "none"}


def test_spec_for_network_none_validates(tmp_path: pathlib.Path) -> None:
    spec = build_spec("c" * 64, CONFIG, acquired(tmp_path))
    errors = sorted(validator().iter_errors(spec), key=str)
    assert errors == []
    assert spec["process"]["user"] == {"uid": 1000, "gid": 50, "additionalGids": [50]}
    # A new namespace, made by the runtime (the network handle's path is bound after create).
    networks = [ns for ns in spec["linux"]["namespaces"] if ns["type"] == "network"]
    assert networks == [{"type": "network"}]
    destinations = [mount["destination"] for mount in spec["mounts"]]
    assert {"/proc", "/dev/shm", "/run/secrets", "/data"} <= set(destinations)
    assert spec["hostname"] == "box"
    # moby's defaults (helper-46): the oom score is never the daemon's, ping and low ports
    # need no capability in a network namespace of the container's own, powercap is masked.
    assert spec["process"]["oomScoreAdj"] == 0
    assert spec["linux"]["sysctl"] == {"net.ipv4.ping_group_range": "0 2147483647",
                                       "net.ipv4.ip_unprivileged_port_start": "0"}
    assert "/sys/devices/virtual/powercap" in spec["linux"]["maskedPaths"]


@pytest.mark.parametrize("unified", [False, True])
def test_a_cgroup_namespace_of_its_own_on_cgroup_v2_only(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, unified: bool) -> None:
    """moby's default cgroupns mode: private on a cgroup v2 host, the host's on v1."""
    monkeypatch.setattr(oci_spec, "_unified_cgroups", lambda: unified)
    spec = build_spec("c" * 64, CONFIG, acquired(tmp_path))
    assert ({"type": "cgroup"} in spec["linux"]["namespaces"]) is unified
    assert list(validator().iter_errors(spec)) == []


def test_spec_for_host_network_validates_and_shares_the_host_network(
        tmp_path: pathlib.Path) -> None:
    """Docker's --network host: the host's network namespace, but a UTS namespace of its own
    (only --uts=host shares that), named as the host unless -h names it."""
    config = {**CONFIG, "network_mode": "host", "user": "", "hostname": ""}
    spec = build_spec("d" * 64, config, acquired(tmp_path, network=False))
    assert list(validator().iter_errors(spec)) == []
    kinds = {namespace["type"] for namespace in spec["linux"]["namespaces"]}
    assert "network" not in kinds and "uts" in kinds
    assert "sysctl" not in spec["linux"]  # the host's network: its own settings, as moby's
    assert spec["hostname"] == socket.gethostname()
    named = build_spec("d" * 64, {**config, "hostname": "web1"},
                       acquired(tmp_path / "again", network=False))
    assert named["hostname"] == "web1"


def test_rlimits_never_exceed_the_host_hard_limit(tmp_path: pathlib.Path) -> None:
    spec = build_spec("e" * 64, CONFIG, acquired(tmp_path))
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in spec["process"]["rlimits"]:
        assert limit["soft"] <= limit["hard"]
        assert hard == resource.RLIM_INFINITY or limit["hard"] <= hard


def test_unknown_user_is_invalid_parameter(tmp_path: pathlib.Path) -> None:
    with pytest.raises(InvalidParameter, match="unable to find user ghost"):
        build_spec("f" * 64, {**CONFIG, "user": "ghost"}, acquired(tmp_path))


def test_users_are_looked_up_inside_the_image_never_through_its_symlinks(
        tmp_path: pathlib.Path) -> None:
    handles = acquired(tmp_path)
    rootfs = pathlib.Path(handles["rootfs"]["path"])
    host = tmp_path / "host-passwd"
    host.write_text("hostonly:x:4321:8765::/:\n")
    passwd = rootfs / "etc" / "passwd"
    passwd.unlink()
    passwd.symlink_to(host)  # absolute: the container sees <rootfs><host path>
    with pytest.raises(InvalidParameter, match="unable to find user hostonly"):
        build_spec("g" * 64, {**CONFIG, "user": "hostonly"}, handles)
    passwd.unlink()
    passwd.symlink_to("../../../../../../../.." + str(host))  # `..` stops at the image's root
    with pytest.raises(InvalidParameter, match="unable to find user hostonly"):
        build_spec("g" * 64, {**CONFIG, "user": "hostonly"}, handles)
    inner = rootfs / str(host).lstrip("/")
    inner.parent.mkdir(parents=True)
    inner.write_text("hostonly:x:77:88::/:\n")  # what the container itself would read
    assert build_spec("g" * 64, {**CONFIG, "user": "hostonly"}, handles)["process"]["user"] == {
        "uid": 77, "gid": 88, "additionalGids": [88]}
    (rootfs / "loop").symlink_to("loop")
    passwd.unlink()
    passwd.symlink_to("/loop")
    with pytest.raises(InvalidParameter, match="unable to find user hostonly"):
        build_spec("g" * 64, {**CONFIG, "user": "hostonly"}, handles)


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_a_passwd_that_is_not_a_regular_file_is_never_read(tmp_path: pathlib.Path,
                                                           kind: str) -> None:
    """A fifo would block the daemon and /dev/zero fill its memory."""
    handles = acquired(tmp_path)
    passwd = pathlib.Path(handles["rootfs"]["path"]) / "etc" / "passwd"
    passwd.unlink()
    if kind == "fifo":
        os.mkfifo(passwd)
    else:
        os.mknod(passwd, 0o644 | stat.S_IFCHR, os.makedev(1, 5))
    with pytest.raises(InvalidParameter, match="unable to find user app"):
        build_spec("h" * 64, {**CONFIG, "user": "app"}, handles)


@pytest.mark.parametrize(("user", "expected"), [
    ("", {"uid": 0, "gid": 0, "additionalGids": [0, 10]}),  # root is listed in wheel
    ("1000", {"uid": 1000, "gid": 1000, "additionalGids": [1000, 50, 60]}),  # by its uid
    ("+1000", {"uid": 1000, "gid": 1000, "additionalGids": [1000, 50, 60]}),  # Atoi's sign
    ("app", {"uid": 1000, "gid": 1000, "additionalGids": [1000, 50, 60]}),
    ("app:staff", {"uid": 1000, "gid": 50, "additionalGids": [50]}),  # a group: no others
    ("app:7", {"uid": 1000, "gid": 7, "additionalGids": [7]}),
    ("app:staff:ignored", {"uid": 1000, "gid": 50, "additionalGids": [50]}),
    ("4242", {"uid": 4242, "gid": 0, "additionalGids": [0]}),  # not in passwd: gid 0
    ("4242:4243", {"uid": 4242, "gid": 4243, "additionalGids": [4243]})])
def test_users_are_resolved_as_runcs_get_exec_user(tmp_path: pathlib.Path, user: str,
                                                   expected: dict[str, object]) -> None:
    handles = acquired(tmp_path)
    (pathlib.Path(handles["rootfs"]["path"]) / "etc" / "group").write_text(
        "root:x:0:\nwheel:x:10:root\n  #comment:x:5:app\nstaff:x:50:app,bob\n"
        "video:x:60:bob,app\n")
    spec = build_spec("i" * 64, {**CONFIG, "user": user}, handles)
    assert spec["process"]["user"] == expected
    assert list(validator().iter_errors(spec)) == []


@pytest.mark.parametrize(("user", "message"), [
    ("4294967296", "uids and gids must be in range 0-2147483647"),
    ("app:99999999999", "uids and gids must be in range 0-2147483647"),
    ("app:nogroup", "unable to find group nogroup: no matching entries in group file")])
def test_invalid_users_are_invalid_parameters(tmp_path: pathlib.Path, user: str,
                                              message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        build_spec("j" * 64, {**CONFIG, "user": user}, acquired(tmp_path))


@pytest.mark.parametrize("user", ["big", "neg", "app:biggrp", "listed"])
def test_ids_out_of_range_in_the_image_are_invalid_parameters(tmp_path: pathlib.Path,
                                                              user: str) -> None:
    """The image's passwd and group are checked as typed ids are (helper-46): moby casts
    them to uint32 (4294967296 ran as root), and runc refuses the spec's negative ones."""
    handles = acquired(tmp_path)
    etc = pathlib.Path(handles["rootfs"]["path"]) / "etc"
    etc.joinpath("passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:\n"
                                      "big:x:4294967296:0::/:\nneg:x:-5:-7::/:\n"
                                      "listed:x:1001:1001::/:\n")
    etc.joinpath("group").write_text("biggrp:x:5000000000:\nhuge:x:-1:listed\n")
    with pytest.raises(InvalidParameter, match="uids and gids must be in range 0-2147483647"):
        build_spec("m" * 64, {**CONFIG, "user": user}, handles)


def test_a_shared_bind_makes_the_container_root_shared(tmp_path: pathlib.Path) -> None:
    handles = acquired(tmp_path)
    handles["volumes"]["mounts"][0]["propagation"] = "rshared"
    spec = build_spec("k" * 64, CONFIG, handles)
    assert spec["linux"]["rootfsPropagation"] == "shared"  # moby; the 1.0.2 schema's name
    assert "rshared" in next(m for m in spec["mounts"] if m["destination"] == "/data")["options"]
    assert list(validator().iter_errors(spec)) == []
    handles["volumes"]["mounts"][0]["propagation"] = "rslave"  # runc's default root: rslave
    assert "rootfsPropagation" not in build_spec("k" * 64, CONFIG, handles)["linux"]


HOST = "HOSTNAME=box"  # the -h name; moby's CreateDaemonEnvironment: PATH, then HOSTNAME


@pytest.mark.parametrize(("env", "expected"), [
    ([], [DEFAULT_PATH, HOST]),
    (["A=1", "B=2"], [DEFAULT_PATH, HOST, "A=1", "B=2"]),
    (["PATH=/x", "A=1"], [HOST, "PATH=/x", "A=1"]),
    (["A=1", "A=2"], ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                      HOST, "A=2"]),
    (["A=1", "A"], [DEFAULT_PATH, HOST]),  # a bare name unsets the variable
    (["PATH", "B=2"], [HOST, "B=2"]),
    (["GONE"], [DEFAULT_PATH, HOST]),
    (["HOSTNAME=mine"], [DEFAULT_PATH, "HOSTNAME=mine"]),
])
def test_the_environment_follows_moby(tmp_path: pathlib.Path, env: list[str],
                                      expected: list[str]) -> None:
    spec = build_spec("f" * 64, {**CONFIG, "env": env}, acquired(tmp_path))
    assert spec["process"]["env"] == expected


def test_mounts_go_parents_first_whatever_the_flag_order(tmp_path: pathlib.Path) -> None:
    """moby sorts the container's mounts by their count of path components: ``-v A:/a/b -v
    B:/a`` mounted /a over /a/b when taken in flag order."""
    handles = acquired(tmp_path)
    handles["volumes"]["mounts"] = [
        {"source": "/h/inner", "destination": "/a/b", "readonly": False, "volume": None},
        {"source": "/h/outer", "destination": "/a", "readonly": False, "volume": None},
        {"source": "/v/_data", "destination": "/z", "readonly": False, "volume": "v"}]
    spec = build_spec("k" * 64, CONFIG, handles)
    order = [mount["destination"] for mount in spec["mounts"]]
    assert order.index("/a") < order.index("/a/b")
    assert order.index("/z") < order.index("/dev/shm")  # two components before three
    assert order[:6] == ["/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]
    options = {mount["destination"]: mount["options"] for mount in spec["mounts"]}
    assert options["/a"] == ["rbind", "rw", "rprivate"]  # moby's default for a bind
    assert options["/z"] == ["rbind", "rw"]  # a volume gets no propagation mode
    assert list(validator().iter_errors(spec)) == []


def test_a_default_mount_the_user_mounts_over_is_left_out(tmp_path: pathlib.Path) -> None:
    handles = acquired(tmp_path)
    handles["volumes"]["mounts"] = [
        {"source": "/h/mq", "destination": "/dev/mqueue/", "readonly": False, "volume": None}]
    spec = build_spec("k" * 64, CONFIG, handles)
    assert [mount["source"] for mount in spec["mounts"]
            if mount["destination"].rstrip("/") == "/dev/mqueue"] == ["/h/mq"]


def test_a_users_dev_takes_every_default_mount_under_it(tmp_path: pathlib.Path) -> None:
    handles = acquired(tmp_path)
    handles["volumes"]["mounts"] = [
        {"source": "/h/dev", "destination": "/dev", "readonly": False, "volume": None}]
    destinations = [mount["destination"] for mount in
                    build_spec("k" * 64, CONFIG, handles)["mounts"]]
    assert "/dev/pts" not in destinations and "/dev/mqueue" not in destinations
    assert destinations.count("/dev") == 1 and "/dev/shm" in destinations  # its own IPC


@pytest.mark.parametrize("network", [True, False])
def test_spec_json_is_the_spec_with_its_filter_spliced_in(tmp_path: pathlib.Path,
                                                          network: bool) -> None:
    config = {**CONFIG, "network_mode": "none" if network else "host"}
    spec = build_spec("c" * 64, config, acquired(tmp_path, network=network))
    text = spec_json(spec)
    assert json.loads(text) == spec
    assert text.count('"seccomp":') == 1
    validator().validate(json.loads(text))


def test_spec_json_encodes_a_changed_or_missing_filter_as_it_is(tmp_path: pathlib.Path) -> None:
    spec = build_spec("c" * 64, CONFIG, acquired(tmp_path))
    spec["linux"]["seccomp"]["defaultAction"] = "SCMP_ACT_LOG"  # not the default any more
    assert json.loads(spec_json(spec)) == spec
    del spec["linux"]["seccomp"]
    assert json.loads(spec_json(spec)) == spec
    assert json.loads(spec_json({"linux": {"seccomp": build_spec(
        "c" * 64, CONFIG, acquired(tmp_path / "again"))["linux"]["seccomp"]}})) == {
        "linux": {"seccomp": oci_spec.default_profile()}}
    assert json.loads(spec_json({})) == {}

