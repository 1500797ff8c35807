"""Named volumes: Docker's ``local`` driver, a directory ``<root>/volumes/<name>/_data`` each.

A volume is made by ``volume create`` or by the create of a container that mounts it
(moby's registerMountPoints; ``engine.linux_host`` fills a new one from the container's files
at the container's first start, and makes again one a container created before this rule
mounts), and stays until
``volume rm`` or ``volume prune -a`` removes it; ``rm -v`` keeps named volumes, as Docker's.
An anonymous one (``-v /path``: named at create by 64 random hex digits, marked by a file
beside its ``_data``) also goes with its container's ``rm -v`` or ``--rm`` (unless another
container uses it) and with a ``volume prune``.
A volume some container (not removed) names in its mounts is in use and is not removed:
moby's "volume is in use". A create holds the image store's users lock from its lookups to
its insert, and a removal from its check for users to its delete, so no container is created
on a volume being removed.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import stat
import threading
from collections.abc import Collection, Iterable
from typing import NamedTuple

from engine.container_config import parse_mount, validate_volume_name
from engine.errors import Conflict, InvalidParameter, NotFound, System
from engine.state import ContainerState
from engine.store import Database
from engine.sweeper import Sweeper

DATA = "_data"
ANONYMOUS = "anonymous"  # a file beside _data: made for one container (``-v /path``)


def data_path(volumes: str, name: str) -> str:
    """The directory volume ``name`` mounts, under the store's ``volumes`` directory."""
    return f"{volumes}/{name}/{DATA}"


class VolumeRecord(NamedTuple):
    name: str
    mountpoint: str  # its _data directory, on the daemon's host
    created_ms: int
    anonymous: bool = False


class VolumeStore:
    def __init__(self, root: pathlib.Path, db: Database, users: threading.Lock,
                 sweeper: Sweeper) -> None:
        self.root = root / "volumes"
        self.root.mkdir(parents=True, exist_ok=True)
        self._db = db
        self._users = users
        self._sweeper = sweeper

    def _record(self, name: str) -> VolumeRecord | None:
        path = self.root / name
        try:
            created = path.stat().st_mtime_ns // 1_000_000
        except OSError:  # not there, or a name no directory can have (too long)
            return None
        return VolumeRecord(name, data_path(str(self.root), name), created,
                            (path / ANONYMOUS).exists())

    def list_volumes(self) -> list[VolumeRecord]:
        """Every volume, by name."""
        names = sorted(entry.name for entry in os.scandir(self.root)
                       if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."))
        return [record for name in names if (record := self._record(name)) is not None]

    def inspect(self, name: str) -> VolumeRecord:
        """Raises NotFound ``get NAME: no such volume`` (moby's words)."""
        record = self._record(name) if _plain(name) else None
        if record is None:
            raise NotFound(f"get {name}: no such volume")
        return record

    def create(self, name: str) -> VolumeRecord:
        """Make volume ``name`` (a random one if empty); an existing one is answered as it
        is, as moby's. Raises InvalidParameter for a name the local driver refuses."""
        name = name or os.urandom(32).hex()
        validate_volume_name(name)
        with self._users:  # never half made while a removal takes it away
            try:
                (self.root / name / DATA).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise System(f"create {name}: {exc.strerror or exc}") from exc
            return self.inspect(name)

    def provide(self, mounts: Iterable[str], anonymous: Collection[str]) -> None:
        """Make the volumes a container being created mounts (its ``-v`` specs ``mounts``,
        ``anonymous`` the names of its ``-v /path`` ones, marked as such), as moby's create
        does: a volume listed, inspected and refused for removal before the container starts.
        The caller holds the users lock (``ImageStore.in_use``). Raises System."""
        for name in {source for spec in mounts if (source := _source(spec)) is not None}:
            try:
                (self.root / name / DATA).mkdir(parents=True, exist_ok=True)
                if name in anonymous:
                    (self.root / name / ANONYMOUS).touch(mode=0o600)
            except OSError as exc:
                raise System(f"create {name}: {exc.strerror or exc}") from exc

    def withdraw(self, anonymous: Iterable[str]) -> None:
        """Remove the ``anonymous`` volumes ``provide`` made for a create that failed after
        it (moby's cleanup of a failed create: its anonymous volumes go). The caller holds
        the users lock."""
        for name in anonymous:
            with contextlib.suppress(OSError):
                self._sweeper.discard(str(self.root / name))

    def users(self, name: str) -> list[str]:
        """The IDs of the containers (not removed) that mount volume ``name``."""
        return self.users_by_volume().get(name, [])

    def users_by_volume(self) -> dict[str, list[str]]:
        """Each mounted volume's name -> the IDs of the containers (not removed) using it."""
        with self._db.read() as reader:
            containers = reader.containers()
        users: dict[str, list[str]] = {}
        for container in containers:
            if container.state is ContainerState.REMOVED:
                continue
            for name in {_source(spec) for spec in container.config.get("mounts") or []}:
                if name is not None:
                    users.setdefault(name, []).append(container.id)
        return users

    def remove(self, name: str, *, force: bool = False) -> bool:
        """Remove volume ``name``; return whether there was one. Raises Conflict ``remove
        NAME: volume is in use - [IDS]``, NotFound unless ``force`` (moby: -f ignores a
        missing volume, never a used one)."""
        with self._users:
            if not _plain(name) or self._record(name) is None:
                if force:
                    return False
                raise NotFound(f"get {name}: no such volume")
            users = self.users(name)
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
            return self._sweeper.discard(str(self.root / name))

    def prune(self, *, everything: bool = False) -> list[tuple[str, int]]:
        """Remove the anonymous volumes no container uses, every unused one with
        ``everything`` (Docker 23's ``volume prune`` and ``-a``); return their names and the
        bytes their files held (moby's directory.Size: regular files, a hardlinked one
        once)."""
        with self._users:
            used = self.users_by_volume()
            removed = []
            for record in self.list_volumes():
                if record.name in used or not (everything or record.anonymous):
                    continue
                size = _size(str(self.root / record.name))
                if self._sweeper.discard(str(self.root / record.name)):
                    removed.append((record.name, size))
            return removed


def _size(top: str) -> int:
    seen: set[tuple[int, int]] = set()
    total = 0
    for directory, _names, files in os.walk(top):
        for name in files:
            with contextlib.suppress(OSError):
                info = os.lstat(os.path.join(directory, name))
                if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) not in seen:
                    seen.add((info.st_dev, info.st_ino))
                    total += info.st_size
    return total


def _plain(name: str) -> bool:
    """A name that is one directory under the store (never a path out of it)."""
    return bool(name) and "/" not in name and name not in (".", "..") and "\0" not in name


def _source(spec: str) -> str | None:
    """The volume name a stored ``-v`` spec mounts, or None (a bind, or unreadable)."""
    try:
        source = str(parse_mount(spec)["source"])
    except InvalidParameter:
        return None
    return None if source.startswith("/") else source
