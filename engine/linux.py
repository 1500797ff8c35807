"""Thin, typed wrappers over the Linux system calls the host driver needs (through libc).

Errors become ``System`` errors carrying the errno text; "not mounted" on unmount is not an
error (releases are idempotent).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import logging
import os
import queue
import socket
import struct
import threading

from engine.errors import System

log = logging.getLogger("berth.linux")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong]

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_BIND = 0x1000
MNT_DETACH = 0x2
CLONE_NEWNET = 0x40000000
PR_SET_CHILD_SUBREAPER = 36
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


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
        point = line.split()[4].encode().decode("unicode_escape")
        if point == base or point.startswith(base + "/"):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def set_child_subreaper() -> None:
    if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise _fail("prctl(PR_SET_CHILD_SUBREAPER)")


class _NamespaceWorker:
    """The one thread that makes network namespaces (see ``create_network_namespace``)."""

    def __init__(self) -> None:
        self.requests: queue.SimpleQueue[_NamespaceRequest] = queue.SimpleQueue()
        self.alive = True
        # Where to return after each namespace: the daemon's (its main thread's), whichever
        # thread starts the worker.
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        threading.Thread(target=self._run, name="berth-netns", daemon=True).start()

    def _run(self) -> None:
        # The starting thread (and so this one) may be in another namespace than the daemon.
        if not self._go_home():
            return
        while True:
            request = self.requests.get()
            try:
                _make_network_namespace(request.path)
            except BaseException as exc:
                request.failure = exc
            home = self._go_home()
            if not home:
                request.failure = request.failure or System(
                    "cannot return to the daemon's network namespace")
            request.done.set()
            if not home:
                return

    def _go_home(self) -> bool:
        """Back to the daemon's namespace; if that fails, retire (False)."""
        if _libc.setns(self.home, CLONE_NEWNET) == 0:
            return True
        log.error("network namespace worker: %s", _fail("setns to the daemon's namespace"))
        self._retire()
        return False

    def _retire(self) -> None:
        """Stop taking requests and fail those already queued (the next caller starts a
        fresh worker)."""
        with _worker_guard:
            self.alive = False
            os.close(self.home)
            while True:
                try:
                    waiting = self.requests.get_nowait()
                except queue.Empty:
                    return
                waiting.failure = System("the network namespace worker stopped")
                waiting.done.set()


class _NamespaceRequest:
    __slots__ = ("done", "failure", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self.failure: BaseException | None = None
        self.done = threading.Event()


_worker: _NamespaceWorker | None = None
_worker_guard = threading.Lock()


def _forget_worker() -> None:
    global _worker
    _worker = None  # a forked child has the object, not the thread


os.register_at_fork(after_in_child=_forget_worker)


def _make_network_namespace(path: str) -> None:
    if _libc.unshare(CLONE_NEWNET) != 0:
        raise _fail("unshare(CLONE_NEWNET)")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(probe, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(probe, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))
    mount("/proc/thread-self/ns/net", path, "none", MS_BIND)


def create_network_namespace(path: str) -> None:
    """Create a network namespace with loopback up, kept alive by a bind mount on ``path``.

    unshare(CLONE_NEWNET) moves only the calling thread, so it never runs on a caller's: one
    long-lived worker thread makes every namespace (a thread each cost ~0.15 ms of every
    start) and returns to the daemon's namespace after each, so that it keeps none of them
    alive. A worker that cannot return fails its request and stops; the next call starts
    another. The daemon never leaves its own namespace and no process is forked. Raises
    System.
    """
    global _worker
    with open(path, "a"):
        pass
    request = _NamespaceRequest(path)
    with _worker_guard:
        if _worker is None or not _worker.alive:
            _worker = _NamespaceWorker()
        _worker.requests.put(request)
    request.done.wait()
    if request.failure is not None:
        raise System(f"network namespace {path}: {request.failure}")
