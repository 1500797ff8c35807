"""A container's configuration as the user gives it at create, and its validation.

Validation follows Docker's messages and classes (InvalidParameter for all of them): container
names, restart policies (spec section 6), AutoRemove with a restart policy, env and volume
specifications, network modes.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from collections.abc import Mapping
from typing import Any

from engine.errors import InvalidParameter

_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
_ENV_KEY = re.compile(r"[^=\s][^=]*")
# moby's volume/local validNamePattern: two characters at least.
_VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
# -v modes Docker accepts: one of ro/rw, SELinux relabelling (z, Z: no SELinux here, so
# nothing to do), nocopy (named volumes are never pre-filled here) and bind propagation.
_ACCESS_MODES = ("ro", "rw")
_PROPAGATION = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
_IGNORED_MODES = ("z", "Z", "nocopy")
HOSTNAME_MAX = 64  # the kernel's HOST_NAME_MAX
RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")
NETWORK_MODES = ("none", "host")
DEFAULT_STOP_TIMEOUT = 10

_ADJECTIVES = ("brave", "calm", "eager", "fond", "gentle", "keen", "lucid", "merry", "nifty",
               "quiet", "sharp", "tender", "vivid", "witty", "zen")
_NOUNS = ("lovelace", "hopper", "turing", "ritchie", "thompson", "liskov", "knuth", "hamilton",
          "perlman", "torvalds", "pike", "kernighan", "allen", "babbage", "curie")


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
        }


def normalize_name(name: str) -> str:
    """Strip the optional leading ``/``. Raises InvalidParameter for an invalid name."""
    bare = name[1:] if name.startswith("/") else name
    if not _NAME.fullmatch(bare):
        raise InvalidParameter(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    return bare


def generate_name() -> str:
    return f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NOUNS)}_{secrets.token_hex(3)}"


def validate(config: ContainerConfig) -> None:
    """Check ``config`` as Docker's create does. Raises InvalidParameter."""
    if config.name:
        normalize_name(config.name)
    if not config.image:
        raise InvalidParameter("no image specified")
    if not config.command or not config.command[0]:
        raise InvalidParameter("no command specified")
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
    for mount in config.mounts:
        validate_mount(mount)
    names: set[str] = set()
    for entry in config.secrets:
        name = entry.partition("=")[0]
        if not name or name in (".", "..") or "/" in name or "\0" in name:
            raise InvalidParameter(f"invalid secret name {name!r}: it must be a file name")
        if name in names:
            raise InvalidParameter(f"duplicate secret {name!r}")
        names.add(name)


def validate_mount(spec: str) -> Mapping[str, Any]:
    """Parse ``SRC:DST[:MODES]`` as Docker's ``-v`` does: SRC an absolute host path (bind) or
    a volume name; MODES comma-separated (``ro``/``rw``, ``z``/``Z``, ``nocopy``, a bind
    propagation). Raises InvalidParameter with Docker's messages."""
    parts = spec.split(":")
    invalid = InvalidParameter(f"invalid volume specification: '{spec}'")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise invalid
    source, destination = parts[0], parts[1]
    kind = "bind" if source.startswith("/") else "volume"
    if not destination.startswith("/"):
        raise InvalidParameter(
            f"invalid volume specification: '{spec}': invalid mount config: "
            "mount path must be absolute"
        )
    if destination.rstrip("/") == "":
        raise InvalidParameter(f'invalid mount config for type "{kind}": invalid '
                               "specification: destination can't be '/'")
    modes = parts[2].split(",") if len(parts) == 3 else []
    access = [mode for mode in modes if mode in _ACCESS_MODES]
    propagation = [mode for mode in modes if mode in _PROPAGATION]
    if (len(access) > 1 or len(propagation) > 1 or len(set(modes)) != len(modes)
            or any(mode not in (*_ACCESS_MODES, *_PROPAGATION, *_IGNORED_MODES)
                   for mode in modes)
            or (propagation and kind == "volume")):
        raise InvalidParameter(f"invalid mode: {parts[2]}")
    if kind == "volume":
        if len(source) == 1:
            raise InvalidParameter(f"create {source}: volume name is too short, names should "
                                   "be at least two alphanumeric characters")
        if not _VOLUME_NAME.fullmatch(source):
            raise InvalidParameter(
                f'create {source}: "{source}" includes invalid characters for a local volume '
                'name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass '
                "a host directory, use absolute path")
    return {"source": source, "destination": destination,
            "readonly": access == ["ro"], "propagation": propagation[0] if propagation else None}
