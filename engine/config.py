"""Daemon configuration as immutable snapshots, swapped atomically (read-copy-update).

Contract: an operation calls ``ConfigStore.current()`` once, at its entry, and uses that
``ConfigSnapshot`` to the end; snapshots are frozen, so a reload never changes what an operation
in flight sees. A snapshot holds the user configuration *and* what is derived from it (the
resolved runtimes, with their wrapper scripts) so the two are never seen out of step.

The file is Docker's ``daemon.json`` shape (``parse_config``); validation uses moby's messages
(spec section 4.1). Runtimes with arguments get a wrapper script, written content-addressed as
``<data root>/runtimes/<name>.<sha256 hex of the content>`` (mode 0700, atomically) before the
snapshot that names it is published, and never modified or deleted while the daemon runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import shlex
import shutil
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from engine.errors import InvalidParameter

BUILTIN_RUNTIME = "runc"
# moby's configureRuntimes also names the built-in runtime by its containerd type: both names
# are runc, and they replace any user definition of either.
RUNC_TYPE_NAME = "io.containerd.runc.v2"
BUILTIN_NAMES = frozenset({BUILTIN_RUNTIME, RUNC_TYPE_NAME})
KNOWN_KEYS = frozenset({"default-runtime", "runtimes", "experimental", "live-restore",
                        "data-root", "debug"})
RUNTIME_KEYS = frozenset({"path", "runtimeArgs", "runtimeType", "options"})


@dataclasses.dataclass(frozen=True, slots=True)
class ResolvedRuntime:
    """A runtime name resolved for one start: the binary every later call on the task uses."""

    name: str
    binary: str


@dataclasses.dataclass(frozen=True, slots=True)
class RuntimeDefinition:
    name: str
    path: str
    args: tuple[str, ...] = ()
    binary: str = ""  # the wrapper script when there are args, else ``path``
    digest: str = ""  # SHA-256 hex of the wrapper script

    def resolve(self) -> ResolvedRuntime:
        """Raises InvalidParameter when a wrapped runtime's binary cannot be found (moby's
        pre-flight check; a runtime without args is not checked, as in moby)."""
        if self.args and shutil.which(self.path) is None:
            raise InvalidParameter(
                "error while looking up the specified runtime path: "
                f'exec: "{self.path}": executable file not found in $PATH')
        return ResolvedRuntime(self.name, self.binary or self.path)


def _builtin_runtimes() -> Mapping[str, RuntimeDefinition]:
    return MappingProxyType({name: RuntimeDefinition(name, BUILTIN_RUNTIME, (), BUILTIN_RUNTIME)
                             for name in sorted(BUILTIN_NAMES)})


def is_containerd_runtime_name(name: str) -> bool:
    """moby's IsPermissibleC8dRuntimeName: a name containerd would turn into a shim binary's
    (no ``/``, at least one ``.``, not a leading one), such as ``io.containerd.kata.v2``."""
    return "/" not in name and "." in name and not name.startswith(".")


@dataclasses.dataclass(frozen=True, slots=True)
class ConfigSnapshot:
    generation: int = 0
    default_runtime: str = BUILTIN_RUNTIME
    runtimes: Mapping[str, RuntimeDefinition] = dataclasses.field(
        default_factory=_builtin_runtimes)
    experimental: bool = False
    live_restore: bool = False
    debug: bool = False
    data_root: str = ""
    source: str = "{}"  # the configuration file's JSON, as applied

    def resolve_runtime(self, name: str) -> ResolvedRuntime:
        """Resolve ``name`` (empty: the default runtime).

        Raises InvalidParameter ``unknown or invalid runtime name: <name>``, or the wrapped
        runtime's pre-flight error.
        """
        runtime_name = name or self.default_runtime
        definition = self.runtimes.get(runtime_name)
        if definition is None:
            if is_containerd_runtime_name(runtime_name):
                # moby hands such a name to containerd as a shim; berth runs no shims.
                raise InvalidParameter(
                    f"unknown or invalid runtime name: {runtime_name} (a containerd shim: "
                    "berth runs runc-compatible binaries; configure one with path)")
            raise InvalidParameter(f"unknown or invalid runtime name: {runtime_name}")
        return definition.resolve()

    def resolved_runtimes(self) -> list[RuntimeDefinition]:
        return [self.runtimes[name] for name in sorted(self.runtimes)]

    def wrappers(self) -> set[str]:
        """Paths of the wrapper scripts this snapshot references."""
        return {runtime.binary for runtime in self.runtimes.values() if runtime.args}


def wrapper_script(path: str, args: tuple[str, ...]) -> str:
    """A POSIX sh script that execs ``path`` with ``args`` and its own arguments. Every word is
    single-quoted: an argument with spaces or shell syntax reaches the runtime as one argument
    and runs nothing (moby's script re-splits them)."""
    words = " ".join(shlex.quote(word) for word in (path, *args))
    return f'#!/bin/sh\nexec {words} "$@"\n'


def write_wrapper(directory: pathlib.Path, name: str, content: str) -> tuple[str, str]:
    """Write the script content-addressed; return (path, sha256 hex). Idempotent."""
    digest = hashlib.sha256(content.encode()).hexdigest()
    path = directory / f"{name}.{digest}"
    if path.exists():
        return str(path), digest
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = directory / f".tmp-{name}.{digest}.{os.getpid()}.{threading.get_ident()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, 0o700)
    os.replace(temporary, path)
    return str(path), digest


def parse_config(text: str, *, inherited_runtimes: Mapping[str, Any] | None = None
                 ) -> dict[str, Any]:
    """Parse and validate a daemon.json. Raises InvalidParameter with moby's messages.

    ``inherited_runtimes`` (a reload's: the running configuration's ``runtimes``) stand when
    the file has no ``runtimes`` key: moby's reloadPlatform replaces the runtimes only if the
    key is set. ``default-runtime`` is not inherited: without the key it is ``runc`` again."""
    try:
        raw = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise InvalidParameter(f"invalid daemon configuration file: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidParameter("invalid daemon configuration file: not a JSON object")
    unknown = sorted(set(raw) - KNOWN_KEYS)
    if unknown:
        raise InvalidParameter("the following directives don't match any configuration "
                               f"option: {', '.join(unknown)}")
    if "runtimes" not in raw and inherited_runtimes:
        raw["runtimes"] = dict(inherited_runtimes)
    runtimes = raw.get("runtimes", {})
    if not isinstance(runtimes, dict):
        raise InvalidParameter("invalid daemon configuration file: runtimes must be an object")
    for name, runtime in runtimes.items():
        if name != RUNC_TYPE_NAME:  # moby replaces that one with runc before it looks at it
            _validate_runtime(name, runtime)
    if not isinstance(raw.get("default-runtime", ""), str):  # false, 0 and [] too
        raise InvalidParameter("invalid daemon configuration file: default-runtime must be a "
                               "string")
    default = raw.get("default-runtime") or BUILTIN_RUNTIME
    if default not in BUILTIN_NAMES and default not in runtimes:
        # moby also takes a containerd shim name here; berth has no shims to run it with.
        raise InvalidParameter(f"specified default runtime '{default}' does not exist")
    for flag in ("experimental", "live-restore", "debug"):
        if flag in raw and not isinstance(raw[flag], bool):
            raise InvalidParameter(f"invalid daemon configuration file: {flag} must be a "
                                   "boolean")
    return raw


def _validate_runtime(name: str, runtime: Any) -> None:
    if name == BUILTIN_RUNTIME:
        raise InvalidParameter(f"runtime name '{BUILTIN_RUNTIME}' is reserved")
    if not isinstance(runtime, dict) or set(runtime) - RUNTIME_KEYS:
        raise InvalidParameter(f"runtime {name}: invalid definition {json.dumps(runtime)}")
    path, kind = runtime.get("path"), runtime.get("runtimeType")
    if not path and not kind:
        raise InvalidParameter(
            f"runtime {name}: either a runtimeType or a path must be configured")
    if path and kind:
        raise InvalidParameter(
            f"runtime {name}: cannot configure both path and runtimeType for the same runtime")
    if path and runtime.get("options"):
        raise InvalidParameter(f"runtime {name}: options cannot be used with a path runtime")
    if kind and runtime.get("runtimeArgs"):
        raise InvalidParameter(f"runtime {name}: args cannot be used with a runtimeType runtime")
    if kind:
        raise InvalidParameter(
            f"runtime {name}: runtimeType is not supported: berth has no containerd shims; "
            "configure a runc-compatible binary with path (and runtimeArgs)")
    args = runtime.get("runtimeArgs", [])
    if not isinstance(path, str) or not isinstance(args, list) or not all(
            isinstance(arg, str) for arg in args):
        raise InvalidParameter(f"runtime {name}: path must be a string and runtimeArgs a "
                               "list of strings")


def build_snapshot(raw: Mapping[str, Any], *, generation: int,
                   runtimes_dir: pathlib.Path) -> ConfigSnapshot:
    """The snapshot for a validated configuration, its wrapper scripts written first."""
    definitions: dict[str, RuntimeDefinition] = {}
    for name, runtime in sorted(raw.get("runtimes", {}).items()):
        if name in BUILTIN_NAMES:
            continue  # replaced by the built-in below
        path, args = str(runtime["path"]), tuple(runtime.get("runtimeArgs", []))
        if args:
            binary, digest = write_wrapper(runtimes_dir, name, wrapper_script(path, args))
            definitions[name] = RuntimeDefinition(name, path, args, binary, digest)
        else:
            definitions[name] = RuntimeDefinition(name, path, (), path)
    definitions.update(_builtin_runtimes())
    return ConfigSnapshot(
        generation=generation, default_runtime=raw.get("default-runtime") or BUILTIN_RUNTIME,
        runtimes=MappingProxyType(definitions), experimental=bool(raw.get("experimental")),
        live_restore=bool(raw.get("live-restore")), debug=bool(raw.get("debug")),
        data_root=str(raw.get("data-root", "")), source=json.dumps(raw, sort_keys=True),
    )


class ConfigStore:
    """Holds the current snapshot; readers never lock, writers are serialized."""

    def __init__(self, initial: ConfigSnapshot | None = None) -> None:
        self._current = initial or ConfigSnapshot()
        self.reload_lock = threading.Lock()

    def current(self) -> ConfigSnapshot:
        return self._current

    def swap(self, snapshot: ConfigSnapshot) -> ConfigSnapshot:
        """Publish ``snapshot`` (a reference assignment: atomic for readers); return the old one."""
        previous, self._current = self._current, snapshot
        return previous
