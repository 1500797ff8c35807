"""The host seam: the resources a start acquires besides the runtime task.

Each resource is acquired in three moves the journal can follow: ``plan`` (pure: the handle the
acquisition will produce, committed with the step's intent), ``acquire`` (the side effect), and
``release`` (idempotent: releasing what was never acquired, or was already released, does
nothing). Handles are JSON-able dicts. Implementations: the Linux host (overlay, namespaces,
tmpfs) and ``engine.testing.fake_host.FakeHost``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Protocol

from engine.store import ContainerRecord

Handle = Mapping[str, Any]


class Resource(enum.StrEnum):
    ROOTFS = "rootfs"  # the container's root filesystem mount
    NETWORK = "network"  # its network namespace (none mode) or nothing (host mode)
    IPC = "ipc"  # its /dev/shm tmpfs
    SECRETS = "secrets"  # its secrets tmpfs
    VOLUMES = "volumes"  # named volumes and bind mounts
    SPEC = "spec"  # the OCI bundle (config.json)


class Host(Protocol):
    def plan(self, resource: Resource, container: ContainerRecord) -> Handle | None:
        """The handle ``acquire`` will produce, or None if there is nothing to acquire."""
        ...

    def acquire(
        self,
        resource: Resource,
        container: ContainerRecord,
        handle: Handle,
        acquired: Mapping[Resource, Handle],
    ) -> Handle:
        """Acquire ``resource`` as planned; ``acquired`` holds the earlier handles.
        Raises System (or the classified error of the failing layer)."""
        ...

    def attach_network(self, container_id: str, handle: Handle, pid: int) -> None:
        """Bind the network namespace the runtime made for the task (its init is ``pid``) to
        the network handle's path: libnetwork's SetKey, which Docker runs from runc's prestart
        hook, run here once ``create`` returns. Raises System."""
        ...

    def release(self, resource: Resource, container_id: str, handle: Handle) -> None:
        """Release ``resource``; idempotent. Raises System on failure."""
        ...

    def release_all(self, container_id: str) -> None:
        """Unmount anything still mounted under the container's directory. Raises System."""
        ...

    def log_path(self, container_id: str) -> str:
        """Where the container's stdout and stderr are kept (json-file lines)."""
        ...

    def remove(self, container_id: str, *, volumes: bool) -> None:
        """Delete the container's files (and its anonymous volumes if ``volumes``); idempotent.
        Raises System."""
        ...

    def drain(self) -> None:
        """Finish the deferred work submitted so far (freeing what releases moved out of
        sight); the host stays usable."""
        ...
