"""Images: root filesystems imported from a tarball (like ``docker import``) or a directory,
stored content-addressed under ``<root>/images/<sha256 hex>/rootfs`` and named by references
(``name:tag``, ``latest`` by default) kept in the database.

The digest of a tarball is the SHA-256 of its bytes; of a directory, the SHA-256 of a
canonical listing: one JSON array per entry (path, mode, owner, device number, extended
attributes, and the symlink's target or the file's content digest), in path order.

Nothing an import reads can write outside the new root filesystem: a tarball is unpacked by a
process chrooted into it (``engine.unpack``), a directory is copied without following any of
its symlinks. An import is unpacked in a staging directory (``images/.import-*``) and renamed
into place complete; a removal renames the image out of place (``images/.remove-*``) before it
deletes it. Staging left by a daemon that died is deleted when the store next opens.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pathlib
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

from engine.errors import Conflict, InvalidParameter, NotFound
from engine.state import ContainerState
from engine.store import Database, ImageRecord

_CHUNK = 1 << 20
_STAGING = ".import-"
_REMOVING = ".remove-"

# The distribution reference grammar (docker/distribution/reference), without digests.
_ALNUM = r"[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]"
_DOMAIN = rf"(?:{_ALNUM})(?:\.(?:{_ALNUM}))*(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>[\w][\w.-]{{0,127}}))?")
_HEX_ID = re.compile(r"(?:sha256:)?([0-9a-f]{1,64})")
_NAME_MAX = 255


def normalize_reference(reference: str) -> str:
    """``name[:tag]`` -> ``name:tag`` (``latest`` by default), checked against Docker's
    reference grammar. Raises InvalidParameter ``invalid reference format``."""
    match = _REFERENCE.fullmatch(reference)
    if match is None:
        lowercase = _REFERENCE.fullmatch(reference.lower()) is not None
        detail = ": repository name must be lowercase" if lowercase else ""
        raise InvalidParameter(f"invalid reference format{detail}")
    name, tag = match.group("name"), match.group("tag") or "latest"
    if len(name) > _NAME_MAX:
        raise InvalidParameter(
            f"invalid reference format: repository name must not be more than {_NAME_MAX} "
            "characters")
    if re.fullmatch(r"[0-9a-f]{64}", name):
        raise InvalidParameter(
            f"invalid repository name ({name}), cannot specify 64-byte hexadecimal strings")
    return f"{name}:{tag}"


def _file_digest(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _xattrs(path: str) -> list[tuple[str, bytes]]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:  # a filesystem without them
        return []
    return [(name, os.getxattr(path, name, follow_symlinks=False)) for name in sorted(names)]


def _directory_digest(root: pathlib.Path) -> str:
    """One JSON array per entry: no name or target (newlines included) can forge another."""
    digest = hashlib.sha256()
    for directory, names, files in os.walk(root, followlinks=False):
        names.sort()
        for name in sorted([*names, *files]):
            path = os.path.join(directory, name)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                detail = os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                detail = _file_digest(pathlib.Path(path))
            else:
                detail = ""
            entry = [os.path.relpath(path, root), info.st_mode, info.st_uid, info.st_gid,
                     info.st_rdev, [[key, value.hex()] for key, value in _xattrs(path)], detail]
            digest.update(json.dumps(entry).encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()


def _copy_tree(source: str, target: str) -> None:
    """Copy a directory tree as it is, never following one of its symlinks: symlinks as
    symlinks, device nodes and fifos as nodes, hardlinks as hardlinks, with owners, modes
    (setuid included), extended attributes and times. Sockets are left out."""
    linked: dict[tuple[int, int], str] = {}

    def attributes(path: str, info: os.stat_result, origin: str) -> None:
        os.chown(path, info.st_uid, info.st_gid, follow_symlinks=False)  # before the mode:
        if not stat.S_ISLNK(info.st_mode):  # chown clears setuid
            os.chmod(path, stat.S_IMODE(info.st_mode))
            for key, value in _xattrs(origin):
                with contextlib.suppress(PermissionError):  # security.selinux and the like
                    os.setxattr(path, key, value, follow_symlinks=False)
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns), follow_symlinks=False)

    def copy(origin: str, path: str, info: os.stat_result) -> None:
        kind = stat.S_IFMT(info.st_mode)
        if kind == stat.S_IFDIR:
            os.mkdir(path, 0o700)
            with os.scandir(origin) as entries:
                for entry in entries:
                    copy(entry.path, os.path.join(path, entry.name),
                         entry.stat(follow_symlinks=False))
        elif kind == stat.S_IFSOCK:
            return
        elif kind != stat.S_IFLNK and info.st_nlink > 1 and (
                info.st_dev, info.st_ino) in linked:
            os.link(linked[info.st_dev, info.st_ino], path)
            return
        elif kind == stat.S_IFLNK:
            os.symlink(os.readlink(origin), path)
        elif kind == stat.S_IFREG:
            shutil.copyfile(origin, path, follow_symlinks=False)
        else:  # character and block devices, fifos
            os.mknod(path, info.st_mode, info.st_rdev)
        if kind not in (stat.S_IFDIR, stat.S_IFLNK) and info.st_nlink > 1:
            linked[info.st_dev, info.st_ino] = path
        attributes(path, info, origin)

    copy(source, target, os.lstat(source))


def _untar(tarball: pathlib.Path, rootfs: pathlib.Path) -> None:
    """Unpack ``tarball`` into the empty directory ``rootfs``, chrooted there."""
    rootfs.mkdir()
    with open(tarball, "rb") as source:
        done = subprocess.run([sys.executable, "-m", "engine.unpack", str(rootfs)],
                              stdin=source, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              check=False)
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        raise InvalidParameter(said[-1] if said else f"unpack exited {done.returncode}")


@contextlib.contextmanager
def _held(directory: str) -> Iterator[None]:
    """Hold an flock on ``directory`` (its owner is alive) while the block runs."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


class ImageStore:
    def __init__(self, root: pathlib.Path, db: Database) -> None:
        self.root = root / "images"
        self.root.mkdir(parents=True, exist_ok=True)
        self._db = db
        # Imports and removals of this store, one at a time: a removal must not delete the
        # files an import of the same content just found in place.
        self._lock = threading.Lock()
        # Held by a create from its image lookup to its insert, and by a removal from its check
        # for users to its delete: no container is created on an image being removed.
        self._users = threading.Lock()
        self._sweep()

    def in_use(self) -> threading.Lock:
        """Hold while a container that will use an image is looked up and stored."""
        return self._users

    def _sweep(self) -> None:
        """Delete the staging of imports and removals whose process is gone (it held an
        flock on it)."""
        for entry in os.scandir(self.root):
            if not entry.name.startswith((_STAGING, _REMOVING)):
                continue
            descriptor = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # still being written, by a live process
            finally:
                os.close(descriptor)
            shutil.rmtree(entry.path, ignore_errors=True)

    def rootfs(self, digest: str) -> str:
        return str(self.root / digest.removeprefix("sha256:") / "rootfs")

    def import_image(self, source: str, reference: str) -> ImageRecord:
        """Import a rootfs tarball or directory as ``reference``.

        Raises InvalidParameter (missing, unreadable or invalid source, bad reference)."""
        reference = normalize_reference(reference)
        path = pathlib.Path(source)
        try:
            info = path.stat()
        except OSError as exc:
            raise InvalidParameter(f"import source {source} does not exist") from exc
        if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
            raise InvalidParameter(
                f"import source {source} is neither a regular file (a tarball) nor a directory")
        with self._lock:
            try:
                hexdigest = (_directory_digest(path) if stat.S_ISDIR(info.st_mode)
                             else _file_digest(path))
                target = self.root / hexdigest
                if not (target / "rootfs").is_dir():
                    self._unpack(path, target, directory=stat.S_ISDIR(info.st_mode))
            except OSError as exc:
                raise InvalidParameter(f"cannot import {source}: {exc}") from exc
            except InvalidParameter as exc:
                raise InvalidParameter(f"cannot import {source}: {exc.message}") from exc
            size = sum(entry.stat().st_size for entry in (target / "rootfs").rglob("*")
                       if entry.is_file() and not entry.is_symlink())
            digest = f"sha256:{hexdigest}"
            now = time.time_ns() // 1_000_000
            with self._db.read() as reader:
                previous = reader.image(reference)
                others = [image for image in reader.images() if previous is not None
                          and image.digest == previous.digest and image.reference != reference]
            with self._db.write() as writer:
                writer.put_image(reference, digest, size, now)
                writer.delete_image(digest)  # named again: no longer dangling
                if previous is not None and previous.digest != digest and not others:
                    # The name moved to other content: the old image stays, dangling
                    # (``<none>``, named by its digest), until it is removed by ID.
                    writer.put_image(previous.digest, previous.digest, previous.size_bytes,
                                     previous.created_at)
        return ImageRecord(reference, digest, size, now)

    def _unpack(self, source: pathlib.Path, target: pathlib.Path, *, directory: bool) -> None:
        staging = tempfile.mkdtemp(dir=self.root, prefix=_STAGING)
        try:
            with _held(staging):
                rootfs = pathlib.Path(staging, "rootfs")
                if directory:
                    _copy_tree(str(source), str(rootfs))
                else:
                    _untar(source, rootfs)
                try:
                    os.rename(staging, target)
                except OSError as exc:  # already in place (another import of the same content)
                    if not (target / "rootfs").is_dir():
                        raise exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def resolve(self, reference: str) -> ImageRecord:
        """The image named ``reference``, or whose ID (``[sha256:]hex``, or a unique prefix of
        it) it is. Raises NotFound ``No such image: <reference>``, InvalidParameter for an
        invalid reference or an ambiguous ID prefix."""
        try:
            normalized: str | None = normalize_reference(reference)
        except InvalidParameter:
            if not _HEX_ID.fullmatch(reference):
                raise
            normalized = None
        with self._db.read(snapshot=False) as reader:
            record = reader.image(normalized) if normalized is not None else None
            if record is not None:
                return record
            match = _HEX_ID.fullmatch(reference)
            if match is not None:
                prefix = f"sha256:{match.group(1)}"
                found = [image for image in reader.images() if image.digest.startswith(prefix)]
                if len({image.digest for image in found}) > 1:
                    raise InvalidParameter(
                        f"multiple IDs found with provided prefix: {reference}")
                if found:
                    return found[0]
        raise NotFound(f"No such image: {reference}")

    def list_images(self) -> list[ImageRecord]:
        with self._db.read(snapshot=False) as reader:
            return reader.images()

    def remove(self, reference: str) -> list[str]:
        """Untag ``reference`` (by name), or remove the image ``reference`` is the ID of; its
        files go when no reference names them any more. Returns the references removed.

        Raises NotFound; Conflict if a container uses the image and this was its last name,
        or if an ID names an image with several references (Docker: must be forced)."""
        with self._lock, self._users:
            record = self.resolve(reference)
            by_id = not self._names(reference, record) or record.reference == record.digest
            with self._db.read() as reader:
                users = [c for c in reader.containers()
                         if c.config.get("image_digest") == record.digest
                         and c.state is not ContainerState.REMOVED]
                references = [i.reference for i in reader.images() if i.digest == record.digest]
            short = record.digest.removeprefix("sha256:")[:12]
            if by_id and len(references) > 1:
                raise Conflict(f"conflict: unable to delete {short} (must be forced) - image is "
                               "referenced in multiple repositories")
            removed = references if by_id else [record.reference]
            if users and len(removed) == len(references):
                if by_id:
                    raise Conflict(f"conflict: unable to delete {short} (must be forced) - image "
                                   f"is being used by stopped container {users[0].id[:12]}")
                raise Conflict(
                    f'conflict: unable to remove repository reference "{record.reference}" '
                    f"(must force) - container {users[0].id[:12]} is using its referenced "
                    f"image {short}")
            with self._db.write() as writer:
                for name in removed:
                    writer.delete_image(name)
            if len(removed) == len(references):
                self._delete_files(record.digest.removeprefix("sha256:"))
        return removed

    @staticmethod
    def _names(reference: str, record: ImageRecord) -> bool:
        """True if ``reference`` named ``record`` (rather than being its ID)."""
        try:
            return normalize_reference(reference) == record.reference
        except InvalidParameter:
            return False

    def _delete_files(self, hexdigest: str) -> None:
        """Rename the image out of place first: a crash mid-delete leaves no half image under
        its digest for the next import of that content to trust."""
        doomed = tempfile.mkdtemp(dir=self.root, prefix=_REMOVING)
        with _held(doomed):
            with contextlib.suppress(FileNotFoundError):
                os.rename(self.root / hexdigest, os.path.join(doomed, hexdigest))
            shutil.rmtree(doomed, ignore_errors=True)
