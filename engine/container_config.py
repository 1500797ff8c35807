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
    for mount in config.mounts:
        validate_mount(mount)


def validate_mount(spec: str) -> Mapping[str, Any]:
    """Parse ``SRC:DST[:ro|rw]``. Raises InvalidParameter ``invalid volume specification``."""
    parts = spec.split(":")
    invalid = InvalidParameter(f"invalid volume specification: '{spec}'")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise invalid
    if not parts[1].startswith("/"):
        raise InvalidParameter(
            f"invalid volume specification: '{spec}': invalid mount config: "
            "mount path must be absolute"
        )
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise invalid
    return {"source": parts[0], "destination": parts[1], "readonly": mode == "ro"}
