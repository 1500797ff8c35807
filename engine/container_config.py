"""A container's configuration as the user gives it at create, and its validation.

Validation follows Docker's messages and classes (InvalidParameter for all of them): container
names, restart policies (spec section 6), AutoRemove with a restart policy, env and volume
specifications, network modes.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
import secrets
from collections.abc import Mapping
from typing import Any

from engine.errors import InvalidParameter

_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
# moby #25099: the only name refused is the empty one (#16585: names are the application's).
_ENV_KEY = re.compile(r"[^=]")
# moby's volume/local validNamePattern: two characters at least.
_VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
VOLUME_NAME_MAX = 255  # NAME_MAX: the name is a directory's (ASCII, so bytes and characters)
# -v modes, as moby's linuxValidMountMode: at most one of each kind. SELinux relabelling
# (z, Z) has nothing to do here (no SELinux), nor do the consistency modes (a Docker Desktop
# matter); nocopy leaves a new volume empty instead of filled from the container's files.
_MODE_KINDS = {"ro": "access", "rw": "access", "z": "label", "Z": "label", "nocopy": "copy",
               "consistent": "consistency", "cached": "consistency", "delegated": "consistency",
               **{mode: "propagation" for mode in ("private", "rprivate", "shared", "rshared",
                                                   "slave", "rslave")}}
HOSTNAME_MAX = 64  # the kernel's HOST_NAME_MAX
RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")
NETWORK_MODES = ("none", "host")
DEFAULT_STOP_TIMEOUT = 10

# A generated name is ADJECTIVE_SURNAME, as moby's namesgenerator makes them (its lists are
# its own; these are berth's): 40 x 48 of them.
_ADJECTIVES = ("agile", "bold", "brave", "bright", "calm", "clever", "cool", "curious",
               "daring", "eager", "earnest", "fond", "gentle", "glad", "happy", "humble",
               "jolly", "keen", "kind", "lively", "lucid", "merry", "mellow", "modest",
               "nifty", "noble", "patient", "plucky", "proud", "quiet", "quick", "serene",
               "sharp", "steady", "sunny", "tender", "upbeat", "vivid", "witty", "zen")
_NOUNS = ("allen", "babbage", "backus", "bardeen", "boole", "cerf", "church", "codd", "conway",
          "curie", "dijkstra", "engelbart", "euler", "fermi", "feynman", "gauss", "goldberg",
          "hamilton", "hoare", "hopper", "kahan", "kay", "kernighan", "knuth", "lamport",
          "liskov", "lovelace", "mccarthy", "meitner", "minsky", "moore", "nash", "neumann",
          "noether", "perlman", "pike", "ramanujan", "ritchie", "shannon", "shaw", "sutherland",
          "tarjan", "thompson", "torvalds", "turing", "wilkes", "wirth", "yonath")


@dataclasses.dataclass(frozen=True, slots=True)
class RestartPolicy:
    name: str = "no"
    maximum_retry_count: int = 0

    @classmethod
    def parse(cls, text: str) -> RestartPolicy:
        """Parse the CLI form ``name[:N]``. Raises InvalidParameter."""
        name, _, count = text.partition(":")
        if not count:
            return cls(name or "no", 0)
        try:
            return cls(name, int(count))
        except ValueError:
            raise InvalidParameter(f"invalid restart policy format: {text}") from None

    def validate(self) -> None:
        """Raises InvalidParameter with Docker's messages."""
        # In moby's order: switch on the name first.
        if self.name in ("always", "unless-stopped", "no"):
            if self.maximum_retry_count != 0:
                raise InvalidParameter(
                    f"maximum retry count cannot be used with restart policy '{self.name}'"
                )
        elif self.name == "on-failure":
            if self.maximum_retry_count < 0:
                raise InvalidParameter("maximum retry count cannot be negative")
        elif self.name != "":
            raise InvalidParameter(f"invalid restart policy '{self.name}'")

    @property
    def is_none(self) -> bool:
        return self.name in ("", "no")


@dataclasses.dataclass(frozen=True, slots=True)
class ContainerConfig:
    image: str
    command: tuple[str, ...]
    name: str = ""
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    hostname: str = ""
    network_mode: str = "none"
    mounts: tuple[str, ...] = ()  # "SRC:DST[:ro|rw]"
    secrets: tuple[str, ...] = ()
    restart_policy: RestartPolicy = RestartPolicy()
    auto_remove: bool = False
    runtime: str = ""
    stop_signal: int | None = None
    stop_timeout: int | None = None
    healthcheck: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()  # (key, value), Docker's Config.Labels

    def stored(self) -> dict[str, Any]:
        """The JSON form kept in ``containers.config``."""
        return {
            "cmd": list(self.command),
            "env": list(self.env),
            "working_dir": self.working_dir,
            "user": self.user,
            "hostname": self.hostname,
            "network_mode": self.network_mode,
            "mounts": list(self.mounts),
            "secrets": list(self.secrets),
            "stop_signal": self.stop_signal,
            "stop_timeout": self.stop_timeout,
            "healthcheck": list(self.healthcheck),
            "labels": dict(self.labels),
        }


def normalize_name(name: str) -> str:
    """Strip the optional leading ``/``. Raises InvalidParameter for an invalid name."""
    bare = name[1:] if name.startswith("/") else name
    if not _NAME.fullmatch(bare):
        raise InvalidParameter(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    return bare


def create_warnings(config: ContainerConfig) -> list[str]:
    """What a create tells its caller without refusing it (moby's create warnings)."""
    if config.restart_policy.is_none:
        return []
    return [f"the restart policy {config.restart_policy.name!r} is stored, not applied: berth "
            "has no restart manager yet, so nothing restarts this container when it exits"]


def validate_command(config: ContainerConfig) -> None:
    """moby's getEntrypointAndArgs, which runs once the image is found (an imported image
    has no command of its own). Raises InvalidParameter."""
    if not config.command or not config.command[0]:
        raise InvalidParameter("no command specified")


GENERATED_NAME_ATTEMPTS = 6  # moby's generateAndReserveName, before the short ID


def generate_name(attempt: int = 0) -> str:
    """moby's GetRandomName(retry): ADJECTIVE_SURNAME, a digit appended on a retry."""
    name = f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NOUNS)}"
    return f"{name}{secrets.randbelow(10)}" if attempt > 0 else name


def validate(config: ContainerConfig) -> None:
    """Check ``config`` as Docker's create does. Raises InvalidParameter."""
    if config.name:
        normalize_name(config.name)
    if not config.image:
        raise InvalidParameter("no image specified")
    for field, values in (("image", (config.image,)), ("command", config.command),
                          ("environment variable", config.env), ("mount", config.mounts),
                          ("user", (config.user,)), ("working directory", (config.working_dir,)),
                          ("hostname", (config.hostname,)), ("secret", config.secrets),
                          ("label", [text for pair in config.labels for text in pair])):
        for value in values:
            if "\0" in value:  # no path, argument or variable of the kernel's can hold one
                raise InvalidParameter(f"invalid {field} {value!r}: it contains a NUL byte")
    config.restart_policy.validate()
    if config.auto_remove and not config.restart_policy.is_none:
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
    if config.network_mode not in NETWORK_MODES:
        raise InvalidParameter(
            f"network mode {config.network_mode!r} is not supported "
            f"(supported: {', '.join(NETWORK_MODES)})"
        )
    for variable in config.env:
        if not _ENV_KEY.match(variable):
            raise InvalidParameter(f"invalid environment variable: {variable}")
    if config.working_dir and not config.working_dir.startswith("/"):
        raise InvalidParameter(f"the working directory '{config.working_dir}' is invalid, it "
                               "needs to be an absolute path")
    if len(config.hostname.encode()) > HOSTNAME_MAX:
        raise InvalidParameter(f"invalid hostname {config.hostname!r}: longer than "
                               f"{HOSTNAME_MAX} bytes")
    destinations: set[str] = set()
    for mount in config.mounts:
        anonymous = anonymous_destination(mount)
        if anonymous is not None and not anonymous.strip("/"):
            raise InvalidParameter('invalid mount config for type "volume": invalid '
                                   "specification: destination can't be '/'")
        destination = clean_path(anonymous if anonymous is not None
                                 else str(validate_mount(mount)["destination"]))
        if destination in destinations:  # moby's registerMountPoints
            raise InvalidParameter(f"Duplicate mount point: {destination}")
        destinations.add(destination)
    names: set[str] = set()
    for entry in config.secrets:
        name = entry.partition("=")[0]
        if not name or name in (".", "..") or "/" in name or "\0" in name:
            raise InvalidParameter(f"invalid secret name {name!r}: it must be a file name")
        if name in names:
            raise InvalidParameter(f"duplicate secret {name!r}")
        names.add(name)


def anonymous_destination(spec: str) -> str | None:
    """The destination of a ``-v /path`` (Docker's anonymous volume: a volume of a random
    name, made for the container), or None for a ``SRC:DST[:MODES]``."""
    return spec if spec.startswith("/") and ":" not in spec else None


def clean_path(path: str) -> str:
    """Go's path.Clean of an absolute path (``//x/`` is ``/x``)."""
    return "/" + posixpath.normpath(path).lstrip("/")


def validate_mount(spec: str) -> Mapping[str, Any]:
    """Parse ``SRC:DST[:MODES]`` as Docker's ``-v`` does: SRC an absolute host path (bind) or
    a volume name; MODES comma-separated (moby's linuxValidMountMode). Raises
    InvalidParameter with Docker's messages."""
    mount = parse_mount(spec)
    source, modes = str(mount["source"]), mount["modes"]
    kind = "bind" if source.startswith("/") else "volume"
    if kind == "volume":
        validate_volume_name(source)
        if mount["propagation"]:
            raise _invalid_mount_config(spec, kind, "field BindOptions must not be specified")
    elif "nocopy" in modes:
        raise _invalid_mount_config(spec, kind, "field VolumeOptions must not be specified")
    return mount


def _invalid_mount_config(spec: str, kind: str, why: str) -> InvalidParameter:
    """moby's ParseMountRaw wrapping what validateMountConfig refused, in its words."""
    return InvalidParameter(f"invalid volume specification: '{spec}': invalid mount config "
                            f'for type "{kind}": {why}')


def validate_volume_name(name: str) -> None:
    """moby's local driver's name rule. Raises InvalidParameter with its messages."""
    if len(name) == 1:
        raise InvalidParameter(f"create {name}: volume name is too short, names should be at "
                               "least two alphanumeric characters")
    if not _VOLUME_NAME.fullmatch(name):
        raise _invalid_volume_name(name)
    if len(name) > VOLUME_NAME_MAX:  # a directory's name: the filesystem's limit
        raise InvalidParameter(f"create {name[:32]}...: volume name is too long, names "
                               f"should be at most {VOLUME_NAME_MAX} characters")


def _invalid_volume_name(name: str) -> InvalidParameter:
    return InvalidParameter(
        f'create {name}: "{name}" includes invalid characters for a local volume name, only '
        '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
        "use absolute path")


def _valid_modes(text: str) -> bool:
    """moby's linuxValidMountMode: comma-separated modes, at most one of each kind ("" is
    none; an empty item is no mode)."""
    kinds = [_MODE_KINDS.get(mode) for mode in text.split(",")] if text else []
    return None not in kinds and len(set(kinds)) == len(kinds)


def parse_mount(spec: str) -> Mapping[str, Any]:
    """What a start needs of a ``-v`` spec stored at create (``validate_mount`` checked it
    then; a container created before a rule was added still starts). Only what would escape
    is refused again: a destination that is the container's root, a volume name that is a
    path. Raises InvalidParameter."""
    parts = spec.split(":")
    # moby's ParseMountRaw: two parts whose second is a mode ("/foo:rw") are no volume.
    if (len(parts) not in (2, 3) or not parts[0] or not parts[1]
            or (len(parts) == 2 and _valid_modes(parts[1]))):
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    source, destination = parts[0], parts[1]
    kind = "bind" if source.startswith("/") else "volume"
    modes = parts[2].split(",") if len(parts) == 3 and parts[2] else []  # "" is no mode
    if not _valid_modes(parts[2] if len(parts) == 3 else ""):  # moby: before the mount's
        raise InvalidParameter(f"invalid mode: {parts[2]}")
    if not posixpath.normpath(destination).strip("/"):  # normpath keeps a leading "//"
        raise _invalid_mount_config(spec, kind,
                                    "invalid specification: destination can't be '/'")
    if not destination.startswith("/"):
        raise _invalid_mount_config(spec, kind, f"invalid mount path: '{destination}' mount "
                                    "path must be absolute")
    if kind == "volume" and ("/" in source or source in (".", "..")):
        raise _invalid_volume_name(source)
    propagation = [mode for mode in modes if _MODE_KINDS[mode] == "propagation"]
    return {"source": source, "destination": destination, "readonly": "ro" in modes,
            "propagation": propagation[0] if propagation else None, "modes": modes}
