"""Failpoints: named places where a test makes the engine fail, crash or stall on purpose.

``BERTH_FAILPOINTS="start.setup_network=error,cleanup.unmount_ipc=crash,start.persist=sleep(50)"``
* ``error``: raise FailpointSystem (class System) at that place;
* ``crash``: the process exits at once with status 137, as if SIGKILLed (no cleanup, no flush);
* ``sleep(ms)``: stall that long, then go on.
Names are checked against ``engine.steps.failpoint_names()``; an unknown name or action is
InvalidParameter, so a typo never silently disables a test.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping

from engine.errors import FailpointSystem, InvalidParameter
from engine.steps import failpoint_names

ENV_VAR = "BERTH_FAILPOINTS"
CRASH_STATUS = 137
_SLEEP = re.compile(r"sleep\((\d+)\)")


def _crash() -> None:
    os._exit(CRASH_STATUS)


class Failpoints:
    """A set of armed failpoints; ``hit(name)`` is a dict lookup when none is armed."""

    def __init__(self, actions: Mapping[str, str] | None = None, *,
                 crash: Callable[[], None] = _crash) -> None:
        known = set(failpoint_names())
        self._actions: dict[str, str] = {}
        for name, action in (actions or {}).items():
            if name not in known:
                raise InvalidParameter(f"unknown failpoint {name!r} (see `berth failpoints`)")
            if action not in ("error", "crash") and not _SLEEP.fullmatch(action):
                raise InvalidParameter(
                    f"invalid failpoint action {action!r} for {name}: "
                    "expected error, crash or sleep(ms)"
                )
            self._actions[name] = action
        self._crash = crash

    @classmethod
    def parse(cls, spec: str) -> Failpoints:
        """Parse ``name=action,...``. Raises InvalidParameter on a malformed entry."""
        actions: dict[str, str] = {}
        for entry in filter(None, (part.strip() for part in spec.split(","))):
            name, sep, action = entry.partition("=")
            if not sep or not name.strip() or not action.strip():
                raise InvalidParameter(f"invalid failpoint {entry!r}: expected name=action")
            actions[name.strip()] = action.strip()
        return cls(actions)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Failpoints:
        return cls.parse((os.environ if environ is None else environ).get(ENV_VAR, ""))

    def hit(self, name: str) -> None:
        """Act on the failpoint ``name`` if armed. Raises FailpointSystem for ``error``."""
        if not self._actions:
            return
        action = self._actions.get(name)
        if action is None:
            return
        if action == "error":
            raise FailpointSystem(name)
        if action == "crash":
            self._crash()
            return
        match = _SLEEP.fullmatch(action)
        assert match is not None
        time.sleep(int(match.group(1)) / 1000)

    @property
    def armed(self) -> Mapping[str, str]:
        return dict(self._actions)
