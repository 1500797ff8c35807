"""Daemon configuration as immutable snapshots, swapped atomically (read-copy-update).

Contract: an operation calls ``ConfigStore.current()`` once, at its entry, and uses that
``ConfigSnapshot`` to the end; snapshots are frozen, so a reload never changes what an operation
in flight sees. A snapshot holds the user configuration *and* what is derived from it (the
resolved runtimes) so the two can never be observed out of step.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from types import MappingProxyType

from engine.errors import InvalidParameter

BUILTIN_RUNTIME = "runc"


@dataclasses.dataclass(frozen=True, slots=True)
class ResolvedRuntime:
    """A runtime name resolved for one start: the binary every later call on the task uses."""

    name: str
    binary: str


@dataclasses.dataclass(frozen=True, slots=True)
class ConfigSnapshot:
    generation: int = 0
    default_runtime: str = BUILTIN_RUNTIME
    # runtime name -> binary to execute (a path, or a wrapper script's path)
    runtimes: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: MappingProxyType({BUILTIN_RUNTIME: BUILTIN_RUNTIME})
    )
    experimental: bool = False
    live_restore: bool = False

    def resolve_runtime(self, name: str) -> ResolvedRuntime:
        """Resolve ``name`` (empty: the default runtime).

        Raises InvalidParameter ``unknown or invalid runtime name: <name>``.
        """
        runtime_name = name or self.default_runtime
        binary = self.runtimes.get(runtime_name)
        if binary is None:
            raise InvalidParameter(f"unknown or invalid runtime name: {runtime_name}")
        return ResolvedRuntime(runtime_name, binary)


class ConfigStore:
    """Holds the current snapshot; readers never lock, writers are serialized."""

    def __init__(self, initial: ConfigSnapshot | None = None) -> None:
        self._current = initial or ConfigSnapshot()
        self._reload_lock = threading.Lock()

    def current(self) -> ConfigSnapshot:
        return self._current

    def swap(self, snapshot: ConfigSnapshot) -> ConfigSnapshot:
        """Publish ``snapshot`` (a reference assignment: atomic for readers); return the old one."""
        with self._reload_lock:
            previous, self._current = self._current, snapshot
            return previous
