"""An in-process host: acquisitions are records, so tests can prove nothing leaks.

``acquired()`` lists what is held right now; ``calls`` records every acquire and release. With a
``state_dir`` each held resource is a file there, so a restarted process sees what a crashed one
left behind. ``faults`` injects errors into ``acquire:<resource>``, ``attach:network``,
``release:<resource>``, ``release_all`` and ``remove``.
"""

from __future__ import annotations

import json
import os
import pathlib
import threading
from collections.abc import Mapping

from engine.errors import System
from engine.host import Handle, Resource
from engine.store import ContainerRecord
from engine.testing.fault import FaultPlan

_MOUNTS = (Resource.ROOTFS, Resource.IPC, Resource.SECRETS, Resource.VOLUMES)


class FakeHost:
    """Satisfies ``engine.host.Host``."""

    def __init__(self, root: str = "/fake/berth", state_dir: str | os.PathLike[str] | None = None
                 ) -> None:
        self.root = root
        self.faults = FaultPlan()
        self.calls: list[tuple[str, str, str]] = []  # (call, resource, container_id)
        self.removed: set[str] = set()
        self._held: dict[tuple[str, Resource], Handle] = {}
        self._lock = threading.Lock()
        self._dir = pathlib.Path(state_dir) if state_dir is not None else None
        if self._dir is not None:
            self._dir.mkdir(parents=True, exist_ok=True)
            for path in self._dir.glob("*.json"):
                container_id, _, resource = path.stem.partition(".")
                self._held[(container_id, Resource(resource))] = json.loads(path.read_text())

    def _file(self, container_id: str, resource: Resource) -> pathlib.Path | None:
        return None if self._dir is None else self._dir / f"{container_id}.{resource.value}.json"

    def plan(self, resource: Resource, container: ContainerRecord) -> Handle | None:
        base = f"{self.root}/containers/{container.id}"
        config = container.config
        if resource is Resource.ROOTFS:
            return {"path": f"{base}/rootfs"}
        if resource is Resource.NETWORK:
            if config.get("network_mode", "none") == "host":
                return None
            return {"netns": f"/run/berth/netns/{container.id}"}
        if resource is Resource.IPC:
            return {"path": f"{base}/shm"}
        if resource is Resource.SECRETS:
            return {"path": f"{base}/secrets"} if config.get("secrets") else None
        if resource is Resource.VOLUMES:
            mounts = config.get("mounts") or []
            return {"mounts": list(mounts)} if mounts else None
        return {"bundle": f"{base}/bundle"}

    def acquire(self, resource: Resource, container: ContainerRecord, handle: Handle,
                acquired: Mapping[Resource, Handle]) -> Handle:
        with self._lock:
            self.calls.append(("acquire", resource.value, container.id))
            self.faults.check(f"acquire:{resource.value}", container.id)
            self._held[(container.id, resource)] = dict(handle)
            path = self._file(container.id, resource)
            if path is not None:
                path.write_text(json.dumps(dict(handle)))
            return handle

    def attach_network(self, container_id: str, handle: Handle, pid: int) -> None:
        with self._lock:
            self.calls.append(("attach", Resource.NETWORK.value, container_id))
            self.faults.check("attach:network", container_id)
            if pid <= 0 or (container_id, Resource.NETWORK) not in self._held:
                raise System(f"bind network of {container_id}: no init or no sandbox")

    def release(self, resource: Resource, container_id: str, handle: Handle) -> None:
        with self._lock:
            self.calls.append(("release", resource.value, container_id))
            self.faults.check(f"release:{resource.value}", container_id)
            self._forget(container_id, resource)

    def _forget(self, container_id: str, resource: Resource) -> None:
        self._held.pop((container_id, resource), None)
        path = self._file(container_id, resource)
        if path is not None:
            path.unlink(missing_ok=True)

    def release_all(self, container_id: str) -> None:
        with self._lock:
            self.calls.append(("release_all", "", container_id))
            self.faults.check("release_all", container_id)
            for resource in _MOUNTS:
                self._forget(container_id, resource)

    def log_path(self, container_id: str) -> str:
        return f"{self.root}/containers/{container_id}/{container_id}-json.log"

    def remove(self, container_id: str, *, volumes: bool) -> None:
        """Like the Linux host's: everything under the container's directory goes, its
        network namespace and its bundle too, whatever a failed cleanup left."""
        with self._lock:
            self.calls.append(("remove", "volumes" if volumes else "", container_id))
            self.faults.check("remove", container_id)
            for resource in Resource:
                self._forget(container_id, resource)
            self.removed.add(container_id)

    def drain(self) -> None:
        """Nothing is deferred here."""

    def acquired(self, container_id: str | None = None) -> dict[tuple[str, Resource], Handle]:
        with self._lock:
            return {
                key: handle for key, handle in self._held.items()
                if container_id is None or key[0] == container_id
            }

    def released(self, container_id: str) -> list[str]:
        """The resources released for ``container_id``, in call order."""
        return [res for call, res, cid in self.calls if call == "release" and cid == container_id]
