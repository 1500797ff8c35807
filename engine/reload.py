"""The daemon's configuration over time: load at start, reload, garbage-collect wrappers.

Contract:
* reloads are serialized; a configuration that fails validation (or whose wrapper scripts
  cannot be written) changes nothing and says why;
* each applied configuration is a new generation, stored with its content, the binaries its
  runtimes resolve to and its time in ``config_generations``, then published atomically and
  announced with a ``reload`` event;
* wrapper scripts are only ever deleted at daemon start, before anything runs: those that
  neither the configuration nor any existing container's locked-in binary references (better
  than moby, which wipes them all and breaks live-restored containers). What was removed is
  recorded with the start's generation.
"""

from __future__ import annotations

import json
import logging
import pathlib

from engine.config import ConfigSnapshot, ConfigStore, build_snapshot, parse_config
from engine.event import ContainerEvent, EventBus
from engine.saga import now_ms
from engine.state import ContainerState
from engine.store import Database

log = logging.getLogger("berth.config")


class ConfigKeeper:
    def __init__(self, *, path: str | None, root: pathlib.Path, store: ConfigStore,
                 db: Database, events: EventBus) -> None:
        self.path = path
        self.runtimes_dir = root / "runtimes"
        self.store = store
        self.db = db
        self.events = events

    def _read(self, inherited_runtimes: dict[str, object] | None = None) -> dict[str, object]:
        """Raises InvalidParameter (bad JSON, unknown key, invalid runtime), OSError."""
        if not self.path:
            return {"runtimes": inherited_runtimes} if inherited_runtimes else {}
        with open(self.path, encoding="utf-8") as handle:
            return parse_config(handle.read(), inherited_runtimes=inherited_runtimes)

    def _next_generation(self) -> int:
        with self.db.read() as reader:
            generations = reader.generations()
        return (generations[-1].generation if generations else 0) + 1

    def _record(self, snapshot: ConfigSnapshot, reason: str, removed: list[str] | None
                ) -> None:
        runtimes = {runtime.name: runtime.binary for runtime in snapshot.resolved_runtimes()}
        with self.db.write() as writer:
            writer.put_generation(snapshot.generation, reason, snapshot.source, runtimes,
                                  removed, now_ms())

    def start(self) -> ConfigSnapshot:
        """At daemon start: load the file, collect stale wrappers, publish generation N+1."""
        with self.store.reload_lock:
            raw = self._read()
            snapshot = build_snapshot(raw, generation=self._next_generation(),
                                      runtimes_dir=self.runtimes_dir)
            removed = self.collect_garbage(snapshot)
            self._record(snapshot, "start", removed)
            self.store.swap(snapshot)
        return snapshot

    def reload(self) -> ConfigSnapshot:
        """Re-read the file and publish it. Raises InvalidParameter or OSError; the running
        configuration stays then."""
        with self.store.reload_lock:
            # A file without "runtimes" keeps the running ones (moby's reloadPlatform).
            raw = self._read(json.loads(self.store.current().source).get("runtimes"))
            snapshot = build_snapshot(raw, generation=self._next_generation(),
                                      runtimes_dir=self.runtimes_dir)
            self._record(snapshot, "reload", None)
            self.store.swap(snapshot)
        log.info("Reloaded configuration: generation %d: %s", snapshot.generation,
                 snapshot.source)
        self.events.publish(ContainerEvent("", "", "reload", now_ms(),
                                           (("generation", str(snapshot.generation)),)))
        return snapshot

    def collect_garbage(self, snapshot: ConfigSnapshot) -> list[str]:
        """Delete the wrapper scripts nothing references; return their paths."""
        if not self.runtimes_dir.is_dir():
            return []
        with self.db.read() as reader:
            locked = {record.runtime_binary for record in reader.containers()
                      if record.runtime_binary and record.state is not ContainerState.REMOVED}
        keep = snapshot.wrappers() | locked
        removed = []
        for script in sorted(self.runtimes_dir.iterdir()):
            if str(script) not in keep:
                script.unlink(missing_ok=True)
                removed.append(str(script))
        if removed:
            log.info("removed %d unreferenced wrapper scripts: %s", len(removed), removed)
        return removed
