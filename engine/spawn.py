"""Running the runtime binary: ``posix_spawnp`` instead of ``subprocess.Popen``.

A runc call is on the critical path of every start, exit and removal, and Popen's Python-side
set-up (its objects, its error pipe, its descriptor sweep, ``communicate``'s selector) costs
~0.2 ms of each. ``posix_spawnp`` is one call into libc (a vfork and an exec) and reports a
program that cannot be executed as an ``OSError`` (``FileNotFoundError`` when it is missing).

Contract, as ``subprocess`` with ``close_fds=True`` and ``restore_signals=True``:
* only stdin (``/dev/null``), stdout and stderr reach the child: every descriptor Python opens
  is close-on-exec (PEP 446), and those this process inherited open (a shell's, a service
  manager's) are made so before its first spawn;
* the child starts with the default action for the signals a daemon ignores (``SIGPIPE``,
  ``SIGXFSZ``, and the supervisor's ``SIGHUP`` and ``SIGINT``), whatever this process does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
from collections.abc import Sequence

_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGHUP, signal.SIGINT)
_devnull: int | None = None


def devnull() -> int:
    """A descriptor of /dev/null, opened once (read-write, close-on-exec)."""
    global _devnull
    if _devnull is None:
        _seal_inherited()
        _devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    return _devnull


def _seal_inherited() -> None:
    """Make every descriptor above stderr close-on-exec (once: what Python opens already is)."""
    for name in os.listdir("/proc/self/fd"):
        descriptor = int(name)
        if descriptor > 2:
            with contextlib.suppress(OSError):  # the listing's own one, closed since
                os.set_inheritable(descriptor, False)


def spawn(argv: Sequence[str], *, stdout: int, stderr: int) -> int:
    """Start ``argv`` (looked up in PATH) with stdin from /dev/null and the given descriptors
    as its stdout and stderr; return its pid. Raises OSError if it cannot be executed."""
    null = devnull()
    return os.posix_spawnp(
        argv[0], list(argv), os.environ,
        file_actions=[(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, stdout, 1),
                      (os.POSIX_SPAWN_DUP2, stderr, 2)],
        setsigdef=_DEFAULT_SIGNALS,
    )


def exit_code(status: int) -> int:
    """A wait status as subprocess reports it: the exit code, or minus the signal."""
    return os.waitstatus_to_exitcode(status)


@dataclasses.dataclass(frozen=True, slots=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


def run(argv: Sequence[str], *, capture_stdout: bool = False) -> Completed:
    """Run ``argv`` to its end; its stderr is captured, and its stdout if asked (else it goes
    to /dev/null). Raises OSError if it cannot be executed."""
    err_read, err_write = os.pipe()
    out_read, out_write = os.pipe() if capture_stdout else (-1, devnull())
    try:
        pid = spawn(argv, stdout=out_write, stderr=err_write)
    except BaseException:
        for descriptor in (err_read, err_write, out_read, out_write):
            if descriptor not in (-1, _devnull):
                os.close(descriptor)
        raise
    os.close(err_write)
    if capture_stdout:
        os.close(out_write)
        stdout, stderr = _read_both(out_read, err_read)
    else:
        stdout, stderr = b"", _read_all(err_read)
    _, status = _wait(pid)
    return Completed(exit_code(status), stdout.decode(errors="replace"),
                     stderr.decode(errors="replace"))


def _wait(pid: int) -> tuple[int, int]:
    try:
        return os.waitpid(pid, 0)
    except ChildProcessError:  # reaped by another waiter of this process: status unknown
        return pid, 255 << 8


def _read_all(descriptor: int) -> bytes:
    chunks = []
    try:
        while chunk := os.read(descriptor, 65536):
            chunks.append(chunk)
    finally:
        os.close(descriptor)
    return b"".join(chunks)


def _read_both(out_read: int, err_read: int) -> tuple[bytes, bytes]:
    """Read two pipes to their ends at once (either one may fill while the other is read)."""
    import selectors

    chunks: dict[int, list[bytes]] = {out_read: [], err_read: []}
    with selectors.DefaultSelector() as selector:
        for descriptor in chunks:
            selector.register(descriptor, selectors.EVENT_READ)
        try:
            while selector.get_map():
                for key, _ in selector.select():
                    chunk = os.read(key.fd, 65536)
                    if chunk:
                        chunks[key.fd].append(chunk)
                    else:
                        selector.unregister(key.fd)
        finally:
            os.close(out_read)
            os.close(err_read)
    return b"".join(chunks[out_read]), b"".join(chunks[err_read])
