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
import fcntl
import os
import select
import signal
import threading
import time
from collections.abc import Sequence

_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGHUP, signal.SIGINT)
# Once the child has exited, how long its pipes may stay open (a grandchild a wrapper script
# left behind, holding them) before they are closed: Go's exec.Cmd WaitDelay, here fixed.
WAIT_DELAY = 1.0
_devnull: int | None = None
_guard = threading.Lock()


def devnull() -> int:
    """A descriptor of /dev/null, opened once (read-write, close-on-exec)."""
    global _devnull
    if _devnull is not None:  # every call after the first: no lock
        return _devnull
    with _guard:
        if _devnull is None:
            _seal_inherited()
            _devnull = _high(os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC))
        return _devnull


def _seal_inherited() -> None:
    """Make every descriptor above stderr close-on-exec (once: what Python opens already is)."""
    for name in os.listdir("/proc/self/fd"):
        descriptor = int(name)
        if descriptor > 2:
            with contextlib.suppress(OSError):  # the listing's own one, closed since
                os.set_inheritable(descriptor, False)


def _high(descriptor: int) -> int:
    """``descriptor``, moved above 2 if it is one of them (a process started with its
    standard descriptors closed gets pipes there, which the child's dup2s would overwrite)."""
    if descriptor > 2:
        return descriptor
    try:
        return fcntl.fcntl(descriptor, fcntl.F_DUPFD_CLOEXEC, 3)
    finally:
        os.close(descriptor)


def pipe() -> tuple[int, int]:
    """``os.pipe()``, both ends above 2."""
    read, write = os.pipe()
    return _high(read), _high(write)


def spawn(argv: Sequence[str], *, stdout: int, stderr: int) -> int:
    """Start ``argv`` (looked up in PATH) with stdin from /dev/null and the given descriptors
    (above 2: see ``pipe``) as its stdout and stderr; return its pid. Raises OSError if it
    cannot be executed."""
    null = devnull()
    return os.posix_spawnp(
        argv[0], list(argv), os.environ,
        file_actions=[(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, stdout, 1),
                      (os.POSIX_SPAWN_DUP2, stderr, 2)],
        setsigdef=_DEFAULT_SIGNALS,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Completed:
    returncode: int  # as subprocess reports it: the exit code, or minus the signal
    stdout: str
    stderr: str


def run(argv: Sequence[str], *, capture_stdout: bool = False) -> Completed:
    """Run ``argv`` to its end; its stderr is captured, and its stdout if asked (else it goes
    to /dev/null). Output still coming ``WAIT_DELAY`` after the exit is not waited for.
    Raises OSError if it cannot be executed."""
    err_read, err_write = pipe()
    out_read, out_write = pipe() if capture_stdout else (-1, -1)
    try:
        pid = spawn(argv, stdout=out_write if capture_stdout else devnull(), stderr=err_write)
    except BaseException:
        for descriptor in (err_read, out_read):
            if descriptor != -1:
                os.close(descriptor)
        raise
    finally:
        for descriptor in (err_write, out_write):
            if descriptor != -1:
                os.close(descriptor)
    try:
        output = _collect(pid, [descriptor for descriptor in (out_read, err_read)
                                if descriptor != -1])
    finally:
        status = _wait(pid)  # never a zombie, whatever happened while reading
    stdout = output.get(out_read, b"") if capture_stdout else b""
    return Completed(os.waitstatus_to_exitcode(status), stdout.decode(errors="replace"),
                     output[err_read].decode(errors="replace"))


def _wait(pid: int) -> int:
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:  # reaped by another waiter of this process: status unknown
        return 255 << 8


def _collect(pid: int, pipes: list[int]) -> dict[int, bytes]:
    """Read ``pipes`` to their ends, or until ``WAIT_DELAY`` after ``pid`` exited; closes
    them."""
    chunks: dict[int, list[bytes]] = {descriptor: [] for descriptor in pipes}
    poller = select.poll()
    for descriptor in pipes:
        poller.register(descriptor, select.POLLIN)
    try:
        exited = os.pidfd_open(pid)
    except OSError:  # out of descriptors: the pipes still go
        for descriptor in pipes:
            os.close(descriptor)
        raise
    poller.register(exited, select.POLLIN)
    deadline: float | None = None
    open_pipes = len(pipes)
    try:
        while open_pipes:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = poller.poll(None if timeout is None else timeout * 1000)
            if not ready:
                break  # the child is gone and something else still holds its pipes
            for descriptor, _ in ready:
                if descriptor == exited:
                    poller.unregister(exited)
                    deadline = time.monotonic() + WAIT_DELAY
                elif chunk := os.read(descriptor, 65536):
                    chunks[descriptor].append(chunk)
                else:
                    poller.unregister(descriptor)
                    open_pipes -= 1
    finally:
        os.close(exited)
        for descriptor in pipes:
            os.close(descriptor)
    return {descriptor: b"".join(parts) for descriptor, parts in chunks.items()}
