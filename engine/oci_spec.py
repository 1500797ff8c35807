"""The OCI runtime spec (config.json) of a container: what the ``create_spec`` step writes.

Built from the container's stored configuration and the handles the earlier steps acquired
(rootfs mount, /dev/shm tmpfs, secrets tmpfs, volumes). Defaults follow
``runc spec`` and Docker's: Docker's default capabilities, masked and read-only paths, the
usual /proc, /dev, /sys mounts; rlimits never above the host's hard limit (no
CAP_SYS_RESOURCE here). Validated against the runtime-spec JSON schema in the tests.
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
import re
import resource
import socket
import stat
from collections.abc import Mapping
from typing import Any

from engine.container_config import clean_path
from engine.errors import InvalidParameter
from engine.host import Handle
from engine.seccomp import default_profile

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Docker's default capability set (moby oci/caps/defaults.go).
DEFAULT_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
NOFILE_WANTED = 1048576
TABLE_MAX = 64 * 1024
_ID_MAX = 2147483647  # runc's user package: ids are int32
# moby's defaults for a container with a network namespace of its own: ping (ICMP echo
# sockets) for every group and any port bound without CAP_NET_BIND_SERVICE.
NETWORK_SYSCTLS = {"net.ipv4.ping_group_range": "0 2147483647",
                   "net.ipv4.ip_unprivileged_port_start": "0"}
_SYMLINK_HOPS = 40  # as the kernel's MAXSYMLINKS


def _table(path: str) -> list[str]:
    """The lines of an image's /etc/passwd or /etc/group: a regular file, its first
    ``TABLE_MAX`` bytes (as Docker's reader); nothing if it is anything else (a fifo would
    block, a device node never end)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return []
        return os.read(descriptor, TABLE_MAX).decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    finally:
        os.close(descriptor)


@functools.cache
def _unified_cgroups() -> bool:
    """Whether the host runs cgroup v2 alone (its root has ``cgroup.controllers``)."""
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


@functools.cache
def _host_has_sysctl(key: str) -> bool:
    return os.path.exists("/proc/sys/" + key.replace(".", "/"))


def _rlimits() -> list[dict[str, Any]]:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = NOFILE_WANTED if hard == resource.RLIM_INFINITY else min(NOFILE_WANTED, hard)
    return [{"type": "RLIMIT_NOFILE", "soft": limit, "hard": limit}]


def _user(user: str, rootfs: str) -> dict[str, Any]:
    """The process user of ``name|uid[:group|gid]``, as Docker's getUser makes it with runc's
    GetExecUser from the image's /etc/passwd and /etc/group: a name must be there, a uid may
    be (its entry gives the gid), the default is uid 0's entry; without a group, the groups
    that list the user are added; the additional gids start with the primary one (moby's fix
    of CVE-2022-36109).

    Raises InvalidParameter (unknown name or group, an id given out of range)."""
    user_arg, _, rest = user.partition(":")
    group_arg = rest.partition(":")[0]
    uid_arg = _number(user_arg)
    uid, gid, matched = 0, 0, ""
    for fields in _fields(in_root(rootfs, "/etc/passwd"), 7, comments=False):
        name, entry_uid = fields[0], _atoi(fields[2])
        if (entry_uid == 0 if not user_arg else
                entry_uid == uid_arg if uid_arg is not None else name == user_arg):
            uid, gid, matched = entry_uid, _atoi(fields[3]), name
            break
    else:
        if uid_arg is None and user_arg:
            raise InvalidParameter(
                f"unable to find user {user_arg}: no matching entries in passwd file")
        if uid_arg is not None:
            uid = _in_range(uid_arg)
    groups = _fields(in_root(rootfs, "/etc/group"), 4, comments=True)
    supplementary: list[int] = []
    if group_arg:
        gid_arg = _number(group_arg)
        named = [fields for fields in groups if (
            _atoi(fields[2]) == gid_arg if gid_arg is not None else fields[0] == group_arg)]
        if named:
            gid = _atoi(named[0][2])
        elif gid_arg is None:
            raise InvalidParameter(
                f"unable to find group {group_arg}: no matching entries in group file")
        else:
            gid = _in_range(gid_arg)
    elif matched:
        supplementary = [_atoi(fields[2]) for fields in groups
                         if matched in fields[3].split(",")]
    # Ids read from the image are checked as the typed ones are: moby casts them to uint32,
    # so a passwd entry's 4294967296 would run as root, and runc refuses a negative one.
    return {"uid": _in_range(uid), "gid": _in_range(gid),
            "additionalGids": [_in_range(number) for number in (gid, *supplementary)]}


def _number(text: str) -> int | None:
    """Go's strconv.Atoi: an optional sign, ASCII digits; else None."""
    return int(text) if re.fullmatch(r"[+-]?[0-9]+", text) else None


def _atoi(text: str) -> int:
    """A field as runc's parser reads it: a number, or 0."""
    number = _number(text)
    return number if number is not None else 0


def _in_range(value: int) -> int:
    if not 0 <= value <= _ID_MAX:
        raise InvalidParameter(f"uids and gids must be in range 0-{_ID_MAX}")
    return value


def _fields(path: str, count: int, *, comments: bool) -> list[list[str]]:
    """The entries of an image's passwd or group file as runc parses them: each line
    trimmed, blank ones (and, in the group file, ``#`` ones) skipped, ``count`` fields."""
    entries = []
    for line in _table(path):
        text = line.strip()
        if not text or (comments and text.startswith("#")):
            continue
        fields = text.split(":")
        entries.append((fields + [""] * count)[:count])
    return entries


def in_root(rootfs: str, path: str) -> str:
    """``path`` as the container will see it: its symlinks followed inside ``rootfs``
    (absolute targets from its top, ``..`` never above it), as Docker's symlink-safe lookup
    does; an image whose /etc/passwd links to a host file never reads that file."""
    parts = [part for part in path.split("/") if part]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(rootfs, *resolved, part)
        if not os.path.islink(candidate):
            resolved.append(part)
            continue
        hops += 1
        if hops > _SYMLINK_HOPS:
            return os.path.join(rootfs, *resolved, part)  # unreadable: "no matching entries"
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        parts = [piece for piece in target.split("/") if piece] + parts
    return os.path.join(rootfs, *resolved)


def working_dir_error(rootfs: str, path: str) -> str | None:
    """Why the working directory ``path`` cannot be made in ``rootfs``, or None.

    moby makes it at create (``SetupWorkingDirectory``: a MkdirAll in the container's
    filesystem) and fails the create when something on the way is not a directory."""
    clean = posixpath.normpath(path)
    parts = [part for part in clean.split("/") if part]
    for depth in range(1, len(parts) + 1):
        shown = "/" + "/".join(parts[:depth])
        try:  # lstat: a link left (too many hops) is never followed on the host
            mode = os.lstat(in_root(rootfs, shown)).st_mode
        except OSError:
            return None  # the rest is made (or the runtime says why not, at start)
        if stat.S_ISLNK(mode):
            return None
        if not stat.S_ISDIR(mode):
            if depth == len(parts):
                return f"Cannot mkdir: {clean} is not a directory"
            return f"mkdir {shown}: not a directory"
    return None


def volume_over_file_error(rootfs: str, path: str) -> str | None:
    """Why an anonymous volume (``-v /path``) cannot go on ``path`` in ``rootfs``, or None.

    moby's create refuses one where the container's filesystem has something other than a
    directory, in its words (with the container's path here, not a host path)."""
    try:  # lstat: a link left (too many hops) is never followed on the host
        mode = os.lstat(in_root(rootfs, path)).st_mode
    except OSError:
        return None  # not there: made at start
    if stat.S_ISDIR(mode) or stat.S_ISLNK(mode):
        return None
    return f"cannot mount volume over existing file, file exists {clean_path(path)}"


def _environment(variables: list[str]) -> list[str]:
    """The process environment: the default PATH, then ``variables`` in order,
    a later one replacing an earlier one of its name; a bare name (no ``=``) unsets the
    variable (moby's ReplaceOrAppendEnvValues)."""
    env: dict[str, str] = {"PATH": DEFAULT_PATH}
    for variable in variables:
        name, equals, _value = variable.partition("=")
        env.pop(name, None)  # re-inserted last: moby replaces in place, order is cosmetic
        if equals:
            env[name] = variable
    return list(env.values())


def container_hostname(container_id: str, config: Mapping[str, Any]) -> str:
    """Docker's: the -h name; else the host's own with the host's network, else the ID."""
    if config.get("hostname"):
        return str(config["hostname"])
    return socket.gethostname() if config.get("network_mode") == "host" else container_id[:12]


@functools.cache
def _default_seccomp() -> tuple[dict[str, Any], str]:
    """The default filter and its JSON, made once: it is most of a spec's text."""
    profile = default_profile()
    return profile, json.dumps(profile, separators=(",", ":"))


def spec_json(spec: Mapping[str, Any]) -> str:
    """``spec`` as compact JSON, the default seccomp filter spliced in already serialized:
    encoding it anew took two thirds of a spec's encoding time. The same JSON value as
    ``json.dumps`` gives (``seccomp`` comes first in ``linux``); a filter is taken for the
    default when it compares equal to it (nothing in the engine changes one)."""
    linux = spec.get("linux")
    profile, encoded = _default_seccomp()
    if not isinstance(linux, Mapping) or linux.get("seccomp") != profile:
        return json.dumps(spec, separators=(",", ":"))
    rest = json.dumps({key: value for key, value in linux.items() if key != "seccomp"},
                      separators=(",", ":"))
    linux_text = ('{"seccomp":' + encoded + ("," + rest[1:] if rest != "{}" else "}"))
    outer = json.dumps({key: value for key, value in spec.items() if key != "linux"},
                       separators=(",", ":"))
    return outer[:-1] + ("," if outer != "{}" else "") + '"linux":' + linux_text + "}"


def build_spec(container_id: str, config: Mapping[str, Any], acquired: Mapping[str, Handle],
               files: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The config.json of ``container_id``; ``files``: the host files bound on container
    paths (/etc/hosts, /etc/hostname, /etc/resolv.conf), unless the user mounts there.
    Raises InvalidParameter (unknown user)."""
    rootfs = str(acquired["rootfs"]["path"])
    host_network = config.get("network_mode") == "host"
    hostname = container_hostname(container_id, config)
    # moby's CreateDaemonEnvironment: PATH and HOSTNAME first, the container's own after.
    env = _environment([f"HOSTNAME={hostname}", *config.get("env", [])])
    # Its own UTS namespace in either mode, as Docker's (only --uts=host shares the host's).
    namespaces: list[dict[str, str]] = [{"type": "pid"}, {"type": "ipc"}, {"type": "mount"},
                                        {"type": "uts"}]
    if not host_network:
        # A new one, made by the runtime (which brings loopback up) and bound to the network
        # handle's path once the task is created (``Host.attach_network``).
        namespaces.append({"type": "network"})
    if _unified_cgroups():  # moby's default cgroupns mode: private on cgroup v2, host on v1
        namespaces.append({"type": "cgroup"})
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                     "gid=5"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ]
    user_mounts: list[dict[str, Any]] = []
    ipc = acquired.get("ipc")
    if ipc:
        user_mounts.append({"destination": "/dev/shm", "type": "bind",
                            "source": str(ipc["path"]),
                            "options": ["rbind", "rprivate", "nosuid", "noexec", "nodev"]})
    secrets = acquired.get("secrets")
    if secrets:
        user_mounts.append({"destination": "/run/secrets", "type": "bind",
                            "source": str(secrets["path"]), "options": ["rbind", "ro"]})
    volumes = acquired.get("volumes")
    shared_root = False
    for volume in (volumes or {}).get("mounts", []):
        options = ["rbind", "ro" if volume["readonly"] else "rw"]
        # moby's parser: a bind without a propagation mode is rprivate (a mount made later
        # under its host source never appears in the container); a volume gets none.
        propagation = volume.get("propagation") or (
            "rprivate" if volume.get("volume") is None else None)
        if propagation:
            options.append(propagation)
            if propagation in ("shared", "rshared"):
                shared_root = True  # moby: a shared bind needs a shared container root
        user_mounts.append({"destination": volume["destination"], "type": "bind",
                            "source": volume["source"], "options": options})
    covered = {posixpath.normpath(mount["destination"]) for mount in user_mounts}
    for destination, source in (files or {}).items():
        if destination not in covered:  # moby's HasMountFor: the user's mount wins
            covered.add(destination)
            user_mounts.append({"destination": destination, "type": "bind", "source": source,
                                "options": ["rbind", "rprivate"]})
    # moby's WithMounts: parents before what is mounted inside them, whatever the order of
    # the -v flags (stable: the count of path components); a default mount the user mounts
    # over is left out.
    user_mounts.sort(key=lambda mount: len(posixpath.normpath(mount["destination"])
                                           .split("/")))
    mounts = [mount for mount in mounts if mount["destination"] not in covered
              and not ("/dev" in covered and mount["destination"].startswith("/dev/"))
              ] + user_mounts  # moby: everything under a /dev the user mounts goes too
    capabilities = list(DEFAULT_CAPABILITIES)
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": _user(str(config.get("user") or ""), rootfs),
            "args": list(config["cmd"]),
            "env": env,
            "cwd": config.get("working_dir") or "/",
            "capabilities": {"bounding": capabilities, "effective": capabilities,
                             "permitted": capabilities},
            "rlimits": _rlimits(),
            "noNewPrivileges": False,
            # moby always sets it (HostConfig.OomScoreAdj, 0 by default): the container
            # never inherits the daemon's.
            "oomScoreAdj": 0,
        },
        "root": {"path": rootfs, "readonly": False},
        "hostname": hostname,
        "mounts": mounts,
        "linux": {
            "cgroupsPath": f"/berth/{container_id}",
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": namespaces,
            "seccomp": default_profile(),
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }
    if not host_network:
        spec["linux"]["sysctl"] = {key: value for key, value in NETWORK_SYSCTLS.items()
                                   if _host_has_sysctl(key)}  # moby: kernels that have them
    if shared_root:  # runc's default is rslave; the 1.0.2 schema names it "shared"
        spec["linux"]["rootfsPropagation"] = "shared"
    return spec
