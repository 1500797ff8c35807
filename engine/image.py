"""Images: root filesystems imported from a tarball (like ``docker import``) or a directory,
stored content-addressed under ``<root>/images/<sha256 hex>/rootfs`` and named by references
(``name:tag``, ``latest`` by default) kept in the database.

The digest of a tarball is the SHA-256 of its bytes; of a directory, the SHA-256 of a
canonical listing (path, type, mode, owner, target or content digest, in path order).
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import stat
import tarfile
import tempfile
import time

from engine.errors import Conflict, InvalidParameter, NotFound
from engine.state import ContainerState
from engine.store import Database, ImageRecord

_CHUNK = 1 << 20


def normalize_reference(reference: str) -> str:
    """``name`` -> ``name:latest``. Raises InvalidParameter."""
    if not reference or reference.strip() != reference or " " in reference:
        raise InvalidParameter(f"invalid reference format: {reference!r}")
    name, _, tag = reference.rpartition(":") if ":" in reference.split("/")[-1] else (
        reference, "", "")
    return f"{name}:{tag or 'latest'}" if name else f"{reference}:latest"


def _file_digest(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _directory_digest(root: pathlib.Path) -> str:
    digest = hashlib.sha256()
    for directory, names, files in os.walk(root, followlinks=False):
        names.sort()
        for name in sorted([*names, *files]):
            path = pathlib.Path(directory, name)
            info = path.lstat()
            relative = path.relative_to(root).as_posix()
            if stat.S_ISLNK(info.st_mode):
                detail = os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                detail = _file_digest(path)
            else:
                detail = ""
            digest.update(f"{relative}\0{info.st_mode:o}\0{info.st_uid}\0{info.st_gid}\0"
                          f"{detail}\n".encode())
    return digest.hexdigest()


class ImageStore:
    def __init__(self, root: pathlib.Path, db: Database) -> None:
        self.root = root / "images"
        self.root.mkdir(parents=True, exist_ok=True)
        self._db = db

    def rootfs(self, digest: str) -> str:
        return str(self.root / digest.removeprefix("sha256:") / "rootfs")

    def import_image(self, source: str, reference: str) -> ImageRecord:
        """Import a rootfs tarball or directory as ``reference``.

        Raises InvalidParameter (missing or unreadable source, bad reference)."""
        reference = normalize_reference(reference)
        path = pathlib.Path(source)
        if not path.exists():
            raise InvalidParameter(f"import source {source} does not exist")
        try:
            hexdigest = _directory_digest(path) if path.is_dir() else _file_digest(path)
            target = self.root / hexdigest
            if not (target / "rootfs").is_dir():
                self._unpack(path, target)
        except (OSError, tarfile.TarError) as exc:
            raise InvalidParameter(f"cannot import {source}: {exc}") from exc
        size = sum(entry.stat().st_size for entry in (target / "rootfs").rglob("*")
                   if entry.is_file() and not entry.is_symlink())
        digest = f"sha256:{hexdigest}"
        now = time.time_ns() // 1_000_000
        with self._db.write() as writer:
            writer.put_image(reference, digest, size, now)
        return ImageRecord(reference, digest, size, now)

    def _unpack(self, source: pathlib.Path, target: pathlib.Path) -> None:
        staging = pathlib.Path(tempfile.mkdtemp(dir=self.root, prefix=".import-"))
        try:
            rootfs = staging / "rootfs"
            if source.is_dir():
                shutil.copytree(source, rootfs, symlinks=True)
            else:
                rootfs.mkdir()
                with tarfile.open(source) as archive:
                    archive.extractall(rootfs, numeric_owner=True, filter="tar")
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def resolve(self, reference: str) -> ImageRecord:
        """Raises NotFound ``No such image: <reference>``."""
        with self._db.read(snapshot=False) as reader:
            record = reader.image(normalize_reference(reference))
        if record is None:
            raise NotFound(f"No such image: {reference}")
        return record

    def list_images(self) -> list[ImageRecord]:
        with self._db.read(snapshot=False) as reader:
            return reader.images()

    def remove(self, reference: str) -> None:
        """Untag ``reference``; delete its files if no other reference names them.

        Raises NotFound, or Conflict if a container uses the image."""
        record = self.resolve(reference)
        with self._db.read() as reader:
            users = [c for c in reader.containers()
                     if c.config.get("image_digest") == record.digest
                     and c.state is not ContainerState.REMOVED]
            others = [i for i in reader.images()
                      if i.digest == record.digest and i.reference != record.reference]
        if users:
            raise Conflict(
                f'conflict: unable to remove repository reference "{record.reference}" '
                f"(must force) - container {users[0].id[:12]} is using its referenced image "
                f"{record.digest.removeprefix('sha256:')[:12]}")
        with self._db.write() as writer:
            writer.delete_image(record.reference)
        if not others:
            shutil.rmtree(self.root / record.digest.removeprefix("sha256:"), ignore_errors=True)
