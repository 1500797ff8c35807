"""Images: root filesystems imported from a tarball (like ``docker import``) or a directory,
stored content-addressed under ``<root>/images/<sha256 hex>/rootfs`` and named by references
(``name:tag``, ``latest`` by default) kept in the database.

The digest of a tarball is the SHA-256 of its bytes; of a directory, the SHA-256 of a
canonical listing: one JSON array per entry (path, mode, owner, device number, extended
attributes, and the symlink's target or the file's content digest), the root first, in a
fixed walk order. Both are of what was staged, not of the source as it may be later.

Nothing an import reads can write outside the new root filesystem: a tarball is unpacked by a
process chrooted into it (``engine.unpack``), a directory is copied through descriptors that
never follow one of its symlinks. An import is unpacked in a staging directory
(``images/.import-*``) and renamed into place complete; a removal renames the image out of
place (``images/.remove-*``) before it deletes it. Staging left by a daemon that died is
deleted when the store next opens.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import itertools
import json
import logging
import os
import pathlib
import re
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

from engine import unpack
from engine.errors import Conflict, InvalidParameter, NotFound, System
from engine.reference import image_id_prefix, normalize_reference
from engine.state import ContainerState
from engine.store import Database, ImageRecord
from engine.sweeper import abandoned, remove_tree

_CHUNK = 1 << 20
log = logging.getLogger("berth.images")
_STAGING = ".import-"
_REMOVING = ".remove-"



_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _walk(top: int) -> Iterator[tuple[str, int, str, os.stat_result]]:
    """Every entry under the directory open as ``top``: (relative path, its directory's
    descriptor, its name, its lstat), a directory's entries by name, each subdirectory's right
    after it. Through descriptors, one a level (no path is ever longer than a name, whatever
    the depth), never following a symlink: each subdirectory is opened with O_NOFOLLOW and
    must be the inode its directory listed. Raises OSError."""
    listed_top = iter(sorted(os.listdir(top)))
    levels = [(os.dup(top), listed_top, "")]
    try:
        while levels:
            directory, names, prefix = levels[-1]
            name = next(names, None)
            if name is None:
                os.close(directory)
                levels.pop()
                continue
            info = os.stat(name, dir_fd=directory, follow_symlinks=False)
            yield prefix + name, directory, name, info
            if stat.S_ISDIR(info.st_mode):
                child = _opened(directory, name, _DIRECTORY, info)
                try:
                    listed = iter(sorted(os.listdir(child)))
                except OSError:
                    os.close(child)
                    raise
                levels.append((child, listed, f"{prefix}{name}/"))
    finally:
        for directory, _, _ in levels:
            os.close(directory)


def _opened(parent: int, name: str, flags: int, listed: os.stat_result) -> int:
    """``name`` in ``parent``, if it is still the inode listed, opened with ``flags`` (never
    following a symlink, not touching its access time). It is first reached with O_PATH,
    which opens nothing: a file swapped for a fifo or a device meanwhile is never opened."""
    reached = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:
        now = os.fstat(reached)
        if (now.st_dev, now.st_ino, stat.S_IFMT(now.st_mode)) != (
                listed.st_dev, listed.st_ino, stat.S_IFMT(listed.st_mode)):
            raise OSError(errno.EAGAIN, "changed while it was read", name)
        # The magic link is followed to the inode reached: O_NOFOLLOW would stop at the link.
        return os.open(f"/proc/self/fd/{reached}",
                       (flags & ~os.O_NOFOLLOW) | os.O_NOATIME | os.O_CLOEXEC)
    finally:
        os.close(reached)


def _special_xattrs(parent: int, name: str) -> list[tuple[str, bytes]]:
    """The extended attributes of a fifo or device node, read without opening it."""
    reached = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:
        return _xattrs_of(f"/proc/self/fd/{reached}")
    finally:
        os.close(reached)


def _directory_digest(root: pathlib.Path) -> tuple[str, int]:
    """The digest of a tree and the bytes of its regular files. One JSON array per entry: no
    name or target (newlines included) can forge another."""
    digest = hashlib.sha256()
    size = 0
    counted: set[tuple[int, int]] = set()  # hardlinked bytes count once, as Docker's
    top = os.open(root, _DIRECTORY | os.O_NOATIME)
    try:
        here = os.fstat(top)  # the root's own mode, owner and attributes are content too
        entries = itertools.chain([("", None, "", here)], _walk(top))
        for relative, directory, name, info in entries:
            xattrs: list[tuple[str, bytes]] = []
            detail = ""
            if directory is None:
                xattrs = _xattrs_of(top)
            elif stat.S_ISLNK(info.st_mode):
                detail = os.readlink(name, dir_fd=directory)
            elif stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode):
                opened = _opened(directory, name, os.O_RDONLY | os.O_NONBLOCK, info)
                try:
                    xattrs = _xattrs_of(opened)
                    if stat.S_ISREG(info.st_mode):
                        detail = _descriptor_digest(opened)
                        if (info.st_dev, info.st_ino) not in counted:
                            counted.add((info.st_dev, info.st_ino))
                            size += info.st_size
                finally:
                    os.close(opened)
            else:
                xattrs = _special_xattrs(directory, name)
            entry = [relative, info.st_mode, info.st_uid, info.st_gid, info.st_rdev,
                     [[key, value.hex()] for key, value in xattrs], detail]
            digest.update(json.dumps(entry).encode("utf-8", "surrogateescape") + b"\n")
    finally:
        os.close(top)
    return digest.hexdigest(), size


def _tree_size(root: pathlib.Path) -> int:
    """The bytes of the regular files under ``root``."""
    top = os.open(root, _DIRECTORY)
    try:
        inodes = {(info.st_dev, info.st_ino): info.st_size for _, _, _, info in _walk(top)
                  if stat.S_ISREG(info.st_mode)}  # hardlinked bytes once
        return sum(inodes.values())
    finally:
        os.close(top)


def _descriptor_digest(descriptor: int) -> str:
    digest = hashlib.sha256()
    while chunk := os.read(descriptor, _CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def copy_tree(source: int, target: str,
               exclude: frozenset[tuple[int, int]] = frozenset()) -> None:
    """Copy the directory open as ``source`` to ``target`` as it is: symlinks as symlinks,
    device nodes and fifos as nodes, hardlinks as hardlinks, with owners, modes (setuid
    included), times and the extended attributes of files and directories. Sockets are left
    out.

    Both trees are walked through descriptors, one a level on each side (no path is longer
    than a name, whatever the depth); each source entry is opened with O_NOFOLLOW and must be
    the inode its directory listed, so a tree changed while it is copied can never lead
    outside it. A directory gets its attributes once all it holds is copied. The directories
    ``exclude`` names (device, inode) are left out: the data root, when the source holds it,
    would copy the staging into itself. Raises OSError."""
    os.mkdir(target, 0o700)
    root = os.open(target, _DIRECTORY)
    linked: dict[tuple[int, int], str] = {}  # inode -> path of its first copy, from ``root``
    listed = iter(sorted(os.listdir(source)))  # before any descriptor to close on failure
    levels = [(os.dup(source), listed, os.dup(root), "", os.fstat(source), _xattrs_of(source))]
    try:
        while levels:
            origin, names, copy, prefix, info, xattrs = levels[-1]
            name = next(names, None)
            if name is None:  # everything in it is copied
                levels.pop()
                try:
                    _attributes(copy, None, info, xattrs)
                finally:
                    os.close(origin)
                    os.close(copy)
                continue
            entry = os.stat(name, dir_fd=origin, follow_symlinks=False)
            kind = stat.S_IFMT(entry.st_mode)
            if kind == stat.S_IFSOCK:
                continue
            if kind == stat.S_IFDIR and (entry.st_dev, entry.st_ino) in exclude:
                continue
            if kind == stat.S_IFDIR:
                child = _opened(origin, name, os.O_RDONLY | os.O_DIRECTORY, entry)
                try:
                    names_in = iter(sorted(os.listdir(child)))
                    found_in = _xattrs_of(child)
                    os.mkdir(name, 0o700, dir_fd=copy)
                    made = os.open(name, _DIRECTORY, dir_fd=copy)
                except OSError:
                    os.close(child)
                    raise
                levels.append((child, names_in, made, f"{prefix}{name}/", entry, found_in))
                continue
            if kind != stat.S_IFLNK and entry.st_nlink > 1 and (
                    entry.st_dev, entry.st_ino) in linked:
                os.link(linked[entry.st_dev, entry.st_ino], name, src_dir_fd=root,
                        dst_dir_fd=copy)
                continue
            found: list[tuple[str, bytes]] = []
            if kind == stat.S_IFLNK:
                os.symlink(os.readlink(name, dir_fd=origin), name, dir_fd=copy)
            elif kind == stat.S_IFREG:
                readable = _opened(origin, name, os.O_RDONLY | os.O_NONBLOCK, entry)
                try:
                    found = _xattrs_of(readable)
                    writable = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                                       0o600, dir_fd=copy)
                    try:
                        _copy_sparse(readable, writable)
                    finally:
                        os.close(writable)
                finally:
                    os.close(readable)
            else:  # character and block devices, fifos: made, never opened
                found = _special_xattrs(origin, name)
                os.mknod(name, entry.st_mode, entry.st_rdev, dir_fd=copy)
            if kind != stat.S_IFLNK and entry.st_nlink > 1:
                linked[entry.st_dev, entry.st_ino] = prefix + name
            _attributes(copy, name, entry, found)
    finally:
        for origin, _, copy, _, _, _ in levels:
            os.close(origin)
            os.close(copy)
        os.close(root)


def _attributes(parent: int, name: str | None, info: os.stat_result,
                xattrs: list[tuple[str, bytes]]) -> None:
    """Owner, then mode (chown clears setuid), extended attributes and times of ``name`` in
    the directory ``parent`` (of ``parent`` itself when ``name`` is None)."""
    if name is None:
        os.chown(parent, info.st_uid, info.st_gid)
        os.chmod(parent, stat.S_IMODE(info.st_mode))
        for key, value in xattrs:
            with contextlib.suppress(PermissionError):  # security.selinux and the like
                os.setxattr(parent, key, value)
        os.utime(parent, ns=(info.st_atime_ns, info.st_mtime_ns))
        return
    os.chown(name, info.st_uid, info.st_gid, dir_fd=parent, follow_symlinks=False)
    if not stat.S_ISLNK(info.st_mode):
        os.chmod(name, stat.S_IMODE(info.st_mode), dir_fd=parent)
        if xattrs:  # reached with O_PATH (a fifo is never opened), set through /proc
            reached = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
            try:
                for key, value in xattrs:
                    with contextlib.suppress(PermissionError):
                        os.setxattr(f"/proc/self/fd/{reached}", key, value)
            finally:
                os.close(reached)
    os.utime(name, ns=(info.st_atime_ns, info.st_mtime_ns), dir_fd=parent,
             follow_symlinks=False)


def _xattrs_of(target: int | str) -> list[tuple[str, bytes]]:
    """Of an open descriptor, or of a path (followed)."""
    try:
        return [(name, os.getxattr(target, name)) for name in sorted(os.listxattr(target))]
    except OSError:  # a filesystem without them
        return []


def _copy_bytes(source: int, target: int, digest: Any = None) -> None:
    """Copy what ``source`` holds to ``target`` (descriptors), feeding ``digest`` if given."""
    while chunk := os.read(source, _CHUNK):
        if digest is not None:
            digest.update(chunk)
        _write_all(target, chunk)


def _write_all(target: int, chunk: bytes) -> None:
    view = memoryview(chunk)
    while view:
        view = view[os.write(target, view):]


def _copy_sparse(source: int, target: int) -> None:
    """Copy the regular file ``source`` to the empty ``target``, its holes left holes: only
    its data runs (``SEEK_DATA``/``SEEK_HOLE``) are copied, then the size is set (a 50 GB
    sparse file took 5 minutes and 51 GB written)."""
    size = os.fstat(source).st_size
    offset = 0
    while offset < size:
        try:
            start = os.lseek(source, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # nothing but a hole to the end
                break
            if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):  # no hole support: whole
                os.lseek(source, 0, os.SEEK_SET)
                _copy_bytes(source, target)
                return
            raise
        end = os.lseek(source, start, os.SEEK_HOLE)
        os.lseek(source, start, os.SEEK_SET)
        os.lseek(target, start, os.SEEK_SET)
        left = end - start
        while left > 0 and (chunk := os.read(source, min(_CHUNK, left))):  # b"": it shrank
            _write_all(target, chunk)
            left -= len(chunk)
        offset = end
    os.ftruncate(target, size)


def _untar(tarball: pathlib.Path, rootfs: pathlib.Path, lock: int) -> None:
    """Unpack ``tarball`` into the empty directory ``rootfs``, chrooted there. The child runs
    isolated (``-I``): no PYTHON* variable, no user site, no current directory on its path;
    it runs this daemon's own ``engine/unpack.py`` by its path (it imports nothing of the
    package), never whatever ``engine`` the interpreter's site has installed. It inherits
    ``lock``, the staging's flock, so that a daemon started after this one died never deletes
    the staging under it; and it stops once this process is gone."""
    rootfs.mkdir()
    with open(tarball, "rb") as source:
        done = subprocess.run(
            [sys.executable, "-I", unpack.__file__, str(rootfs), str(os.getpid())],
            stdin=source, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False,
            pass_fds=(lock,))
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        why = said[-1] if said else f"unpack exited {done.returncode}"
        raise System(why) if done.returncode == unpack.HOST_FAILURE else InvalidParameter(why)


@contextlib.contextmanager
def _held(directory: str, mode: int = fcntl.LOCK_EX) -> Iterator[int]:
    """Hold an flock on ``directory`` (its owner is alive) while the block runs; yields the
    locked descriptor (a child given it holds the lock too)."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(descriptor, mode)
        yield descriptor
    finally:
        os.close(descriptor)


_RUNNING = (ContainerState.RUNNING, ContainerState.PAUSED, ContainerState.RESTARTING)


class Removal(NamedTuple):
    untagged: list[str]  # the names removed (a dangling image has none)
    deleted: str  # the image ID whose files went, or ""


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
        self._reclaim()

    def in_use(self) -> threading.Lock:
        """Hold while a container that will use an image is looked up and stored."""
        return self._users

    def _sweep(self) -> None:
        """Delete the staging of imports and removals whose process is gone (it held an
        flock on it)."""
        for entry in os.scandir(self.root):
            if not entry.name.startswith((_STAGING, _REMOVING)):
                continue
            if abandoned(pathlib.Path(entry.path)):  # else still written, by a live process
                remove_tree(entry.path)

    def _reclaim(self) -> None:
        """An image directory no row names is what a crash left between an import's move
        into place and its row, or between a removal's rows and its files, or the files of
        an image deleted while containers used them, whose last one went while the daemon
        was down: delete it, unless a container still uses it. Skipped while another store
        of this root imports or removes (it holds the store's flock, shared)."""
        try:
            descriptor = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            with self._db.read() as reader:
                named = {image.digest for image in reader.images()}
                used = {str(c.config.get("image_digest", "")) for c in reader.containers()
                        if c.state is not ContainerState.REMOVED}
            for entry in os.scandir(self.root):
                digest = f"sha256:{entry.name}"
                if not re.fullmatch(r"[0-9a-f]{64}", entry.name) or digest in named:
                    continue
                if digest in used:
                    continue  # deleted, but its containers' layer: goes with the last one
                try:
                    log.warning("deleting image %s: no name and no container left",
                                entry.name[:12])
                    self._delete_files(entry.name)
                except OSError as exc:  # never a reason for the daemon not to start
                    log.error("image %s left as it is: %s", entry.name[:12], exc)
        finally:
            os.close(descriptor)

    def rootfs(self, digest: str) -> str:
        return str(self.root / digest.removeprefix("sha256:") / "rootfs")

    def import_image(self, source: str, reference: str) -> ImageRecord:
        """Import a rootfs tarball or directory as ``reference`` (empty: untagged, as
        ``docker import`` without a repository: a ``<none>`` image unless a name has it).

        The source is opened once (a symlink given as the source is followed there) and
        copied into staging, a tarball while it is hashed; the digest is of what was staged,
        so a source changed meanwhile cannot put content under another content's digest.
        Raises InvalidParameter (missing, unreadable or invalid source, bad reference)."""
        reference = normalize_reference(reference) if reference else ""
        if not source.startswith("/") or "\0" in source:  # never the daemon's own directory
            raise InvalidParameter(f"import source {source!r}: give an absolute path on the "
                                   "daemon's host")
        try:
            opened = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise InvalidParameter(f"import source {source} does not exist"
                                   if isinstance(exc, FileNotFoundError)
                                   else f"cannot import {source}: {exc.strerror}") from exc
        try:
            kind = stat.S_IFMT(os.fstat(opened).st_mode)
            if kind not in (stat.S_IFDIR, stat.S_IFREG):
                raise InvalidParameter(f"import source {source} is neither a regular file (a "
                                       "tarball) nor a directory")
            # The store's flock, shared: from its move into place to its row, an image is not
            # an orphan for a store that opens meanwhile (``_reclaim``).
            with _held(str(self.root), fcntl.LOCK_SH):
                try:
                    return self._unpack(opened, directory=kind == stat.S_IFDIR,
                                        reference=reference)
                except (OSError, RecursionError) as exc:
                    why = str(exc)  # a path deep in the image can be thousands of bytes
                    why = why if len(why) <= 300 else f"{why[:140]} ... {why[-140:]}"
                    host = isinstance(exc, OSError) and exc.errno in unpack.HOST_ERRNOS
                    raise (System if host else InvalidParameter)(
                        f"cannot import {source}: {why}") from exc
                except (InvalidParameter, System) as exc:
                    raise type(exc)(f"cannot import {source}: {exc.message}") from exc
        finally:
            os.close(opened)

    def _name(self, reference: str, hexdigest: str, size: int) -> ImageRecord:
        digest = f"sha256:{hexdigest}"
        now = time.time_ns() // 1_000_000
        if not reference:  # untagged: its first name, if it has one, else dangling
            with self._db.read() as reader:
                named = [image for image in reader.images() if image.digest == digest]
            if named:
                return named[0]
            with self._db.write() as writer:
                writer.put_image(digest, digest, size, now)
            return ImageRecord(digest, digest, size, now)
        with self._db.read() as reader:
            previous = reader.image(reference)
            every = reader.images()
        others = [image for image in every if previous is not None
                  and image.digest == previous.digest and image.reference != reference]
        # An image was created when its content first came, whatever names it got since.
        created = min((image.created_at for image in every if image.digest == digest),
                      default=now)
        with self._db.write() as writer:
            writer.put_image(reference, digest, size, created)
            writer.delete_image(digest)  # named again: no longer dangling
            if previous is not None and previous.digest != digest and not others:
                # The name moved to other content: the old image stays, dangling
                # (``<none>``, named by its digest), until it is removed by ID.
                writer.put_image(previous.digest, previous.digest, previous.size_bytes,
                                 previous.created_at)
        return ImageRecord(reference, digest, size, created)

    def _unpack(self, source: int, *, directory: bool, reference: str) -> ImageRecord:
        """Stage the source, then move it under its digest unless that content is in place
        already, and name it ``reference``. The digest and the size are of what was staged:
        nothing is read from the image once it is in place (an import that fails leaves no
        image behind). Staging takes no lock of the store's: an rmi or another import does
        not wait for it; the move and the row are made under it, never while a removal of the
        same content deletes its files."""
        staging = tempfile.mkdtemp(dir=self.root, prefix=_STAGING)
        try:
            with _held(staging) as lock:
                rootfs = pathlib.Path(staging, "rootfs")
                if directory:
                    # Never the data root, the store or this staging: a source that holds them
                    # would copy the staging into itself.
                    mine = [os.stat(path) for path in (self.root.parent, self.root, staging)]
                    copy_tree(source, str(rootfs),
                               frozenset((info.st_dev, info.st_ino) for info in mine))
                    hexdigest, size = _directory_digest(rootfs)
                else:
                    tarball = pathlib.Path(staging, "image.tar")
                    digest = hashlib.sha256()
                    with open(tarball, "xb") as copy:
                        _copy_bytes(source, copy.fileno(), digest)
                    hexdigest = digest.hexdigest()
                    _untar(tarball, rootfs, lock)
                    tarball.unlink()
                    size = _tree_size(rootfs)
                with self._lock:
                    target = self.root / hexdigest
                    if not (target / "rootfs").is_dir():
                        try:
                            os.rename(staging, target)
                        except OSError as exc:  # in place meanwhile: another import's
                            if not (target / "rootfs").is_dir():
                                raise exc
                    return self._name(reference, hexdigest, size)
        finally:
            remove_tree(staging)

    def resolve(self, reference: str) -> ImageRecord:
        """The image named ``reference``, or whose ID (``[sha256:]hex``, or a unique prefix of
        it) it is. Raises NotFound ``No such image: <reference>``, InvalidParameter for an
        invalid reference or an ambiguous ID prefix."""
        try:
            normalized: str | None = normalize_reference(reference)
        except InvalidParameter:
            if image_id_prefix(reference) is None:
                raise
            normalized = None
        with self._db.read(snapshot=False) as reader:
            record = reader.image(normalized) if normalized is not None else None
            if record is not None:
                return record
            prefix = image_id_prefix(reference)
            if prefix is not None:
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

    def remove(self, reference: str, *, force: bool = False) -> Removal:
        """Untag ``reference`` (by name), or remove the image ``reference`` is the ID of; the
        image goes with its last name (moby's ImageDelete).

        Raises NotFound; Conflict, in moby's order: by ID, if a running container uses the
        image (never forced), then, unless ``force``, if several names name it or a stopped
        container uses it; by name, unless ``force``, if a container uses the image and this
        is its last name. Forced, the last name of an image a running container uses is
        untagged and the image stays, dangling; one only stopped containers use is deleted.
        The files of a deleted image stay while a container uses them (its overlay's lower
        layer), and go with the last such container (``collect``)."""
        with self._lock, self._users, _held(str(self.root), fcntl.LOCK_SH):
            record = self.resolve(reference)
            by_id = not self._names(reference, record) or record.reference == record.digest
            with self._db.read() as reader:
                users = [c for c in reader.containers()
                         if c.config.get("image_digest") == record.digest
                         and c.state is not ContainerState.REMOVED]
                references = [i.reference for i in reader.images() if i.digest == record.digest]
            short = record.digest.removeprefix("sha256:")[:12]
            running = [user for user in users if user.state in _RUNNING]
            if by_id:
                if running:
                    raise Conflict(f"conflict: unable to delete {short} (cannot be forced) - "
                                   f"image is being used by running container "
                                   f"{running[0].id[:12]}")
                if not force and len(references) > 1:
                    raise Conflict(f"conflict: unable to delete {short} (must be forced) - "
                                   "image is referenced in multiple repositories")
                if not force and users:
                    raise Conflict(f"conflict: unable to delete {short} (must be forced) - "
                                   f"image is being used by stopped container "
                                   f"{users[0].id[:12]}")
                removed = references
            else:
                if not force and users and len(references) == 1:
                    raise Conflict(
                        f'conflict: unable to remove repository reference "{reference}" (must '
                        f"force) - container {users[0].id[:12]} is using its referenced image "
                        f"{short}")
                removed = [record.reference]
            deleted = len(removed) == len(references)
            with self._db.write() as writer:
                for name in removed:
                    writer.delete_image(name)
                if deleted and running:  # forced by name: untagged, kept as a <none> image
                    writer.put_image(record.digest, record.digest, record.size_bytes,
                                     record.created_at)
                    deleted = False
            if deleted and not users:
                self._delete_files(record.digest.removeprefix("sha256:"))
        return Removal([name for name in removed if name != record.digest],
                       record.digest if deleted else "")

    def collect(self, digest: str) -> bool:
        """Delete the files of image ``digest`` if no name names it and no container uses
        it any more (a deleted image's last container was removed); return whether it did.
        Raises OSError."""
        if not digest:
            return False
        with self._lock, self._users, _held(str(self.root), fcntl.LOCK_SH):
            with self._db.read() as reader:
                if any(image.digest == digest for image in reader.images()):
                    return False
                if any(c.config.get("image_digest") == digest
                       and c.state is not ContainerState.REMOVED
                       for c in reader.containers()):
                    return False
            if not (self.root / digest.removeprefix("sha256:")).exists():
                return False
            self._delete_files(digest.removeprefix("sha256:"))
            return True

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
            remove_tree(doomed)
