"""Thin, typed wrappers over the Linux system calls the host driver needs (through libc).

Errors become ``System`` errors carrying the errno text; "not mounted" on unmount is not an
error (releases are idempotent).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import re

from engine.errors import System

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong]

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_BIND = 0x1000
MNT_DETACH = 0x2
PR_SET_CHILD_SUBREAPER = 36


def _fail(what: str) -> System:
    code = ctypes.get_errno()
    return System(f"{what}: {os.strerror(code)}")


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    """mount(2). Raises System."""
    result = _libc.mount(source.encode(), target.encode(), fstype.encode(), flags,
                         data.encode() if data else None)
    if result != 0:
        raise _fail(f"mount {fstype} on {target}")


def unmount(target: str, *, lazy: bool = False) -> bool:
    """Unmount ``target`` (lazily if asked, or if it is busy); False if nothing was mounted
    there. Raises System."""
    if _libc.umount2(target.encode(), MNT_DETACH if lazy else 0) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOENT):  # not a mount point, or gone
        return False
    if code == errno.EBUSY and _libc.umount2(target.encode(), MNT_DETACH) == 0:
        return True
    raise System(f"unmount {target}: {os.strerror(code)}")


def detach(target: str) -> int | None:
    """Detach the mount on ``target`` from the mount table, keeping its filesystem alive.

    Returns an O_PATH descriptor that holds the detached filesystem: closing it (on any
    thread) tears the filesystem down, which for an overlay includes syncing its upper layer.
    The mount is gone for everyone when this returns. Returns None if nothing was mounted on
    ``target``. Raises System.
    """
    try:
        descriptor = os.open(target, os.O_PATH | os.O_NOFOLLOW)  # a directory or a file (a netns)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise System(f"unmount {target}: {exc.strerror}") from exc
    try:
        detached = unmount(target, lazy=True)
    except BaseException:
        os.close(descriptor)
        raise
    if not detached:
        os.close(descriptor)
        return None
    return descriptor


def _plain(path: str) -> bool:
    """True if /proc/self/mountinfo shows ``path`` as it is (no octal escapes)."""
    return not any(character in path for character in " \t\n\\")


def _unescape(field: str) -> str:
    """A mountinfo path field: the kernel writes space, tab, newline and backslash as octal
    escapes (``\\040``); any other byte, UTF-8 or not, is as it is."""
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def propagation_of(path: str) -> tuple[str, list[str]]:
    """The mount ``path`` is on and its propagation fields (``shared:N``, ``master:N``; none
    for a private one), from /proc/self/mountinfo, as moby's getSourceMount finds them."""
    target = os.path.realpath(path)
    best, fields = "/", []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as table:
        for line in table:
            parts = line.split()
            point = _unescape(parts[4])
            inside = target == point or target.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, fields = point, parts[6:parts.index("-")]
    return best, fields


def mounts_under(prefix: str) -> list[str]:
    """Mount points at or below ``prefix``, deepest first (from /proc/self/mountinfo)."""
    base = prefix.rstrip("/")
    descriptor = os.open("/proc/self/mountinfo", os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(descriptor, 65536):
            chunks.append(chunk)
    finally:
        os.close(descriptor)
    content = b"".join(chunks).decode(errors="surrogateescape")
    if _plain(base) and base not in content:
        return []  # the common case, decided without parsing a line
    found = []
    for line in content.splitlines():
        if base not in line and "\\" not in line:
            continue  # cheap: most lines are other mounts (escapes: decode to be sure)
        point = _unescape(line.split()[4])
        if point == base or point.startswith(base + "/"):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def hold_lock(path: str | os.PathLike[str]) -> int | None:
    """An exclusive flock on ``path`` (created 0600), held by the descriptor returned for as
    long as the process keeps it (the kernel drops it however the process ends); None if
    another process holds it."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    return descriptor


def set_child_subreaper() -> None:
    if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise _fail("prctl(PR_SET_CHILD_SUBREAPER)")


def pin_network_namespace(pid: int, path: str) -> None:
    """Keep the network namespace of process ``pid`` alive with a bind mount on ``path``
    (an existing file), as libnetwork's SetKey does with the namespace runc made for a
    container's init. Raises System (also if ``pid`` is gone)."""
    source = f"/proc/{pid}/ns/net"
    if _libc.mount(source.encode(), path.encode(), b"none", MS_BIND, None) != 0:
        raise _fail(f"bind {source} on {path}")
