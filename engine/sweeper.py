"""Deferred freeing of host resources that are already out of sight.

Contract: a release that the journal records as done has taken effect before it returns — the
mount is gone from the mount table, the directory is gone from the container's tree — but the
expensive remainder is left to one background thread, off the caller's latency:
* ``close_later(fd, key)``: the descriptor holds a detached filesystem; closing it tears the
  filesystem down (for an overlay: syncing its upper layer and freeing its inodes, ~0.35 ms of
  every exit measured here, and more with dirty data). ``settle(key)`` closes it at once: a
  start that mounts an overlay again on the same upper and work directories settles the old
  one first, since the kernel must not see two overlays on one upper directory;
* ``discard(path)``: ``path`` is renamed atomically into this sweeper's own directory under
  ``<root>/trash`` and its tree freed later (~0.8 ms a container directory).
What is queued can no longer be reached, so deferring it changes nothing anyone can observe
except time. Work runs in submission order (a filesystem is torn down before its directories
are freed); a task that fails is reported and never stops the ones after it.

Crashes lose nothing: the kernel closes descriptors when the process exits, and each sweeper
holds an ``flock`` on its trash directory for its lifetime, so the next sweeper to open frees
every trash directory nobody holds (a dead daemon's) and none that a live one still fills.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import pathlib
import queue
import shutil
import threading

log = logging.getLogger("berth.sweeper")


class Sweeper:
    """One background thread that closes descriptors and frees discarded trees."""

    def __init__(self, trash: pathlib.Path) -> None:
        trash.mkdir(parents=True, exist_ok=True)
        self.directory = trash / os.urandom(8).hex()
        self.directory.mkdir()
        self._lock_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self._queue: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self._descriptors: dict[str, int] = {}  # key -> descriptor waiting to be closed
        self._pending = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        for leftover in sorted(os.listdir(trash)):
            path = trash / leftover
            if path != self.directory and abandoned(path):
                self._submit(("remove", str(path)))

    def close_later(self, descriptor: int, key: str) -> None:
        """Close ``descriptor`` on the background thread (or at ``settle(key)``)."""
        with self._idle:
            previous = self._descriptors.pop(key, None)
            self._descriptors[key] = descriptor
        if previous is not None:
            os.close(previous)
        self._submit(("close", key))

    def settle(self, key: str) -> None:
        """Close now the descriptor queued under ``key``, if it is still waiting."""
        with self._idle:
            descriptor = self._descriptors.pop(key, None)
        if descriptor is not None:
            os.close(descriptor)

    def discard(self, path: str) -> bool:
        """Move ``path`` out of sight (atomically: it is gone when this returns) and free it
        in the background. Returns False if there was nothing at ``path``. Raises OSError if
        it can be neither moved nor freed (then it is still there)."""
        target = self.directory / f"{os.urandom(6).hex()}.{os.path.basename(path)}"
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return False
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            remove_tree(path)  # another filesystem than the trash: free it here and now
            return True
        self._submit(("remove", str(target)))
        return True

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is done; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _submit(self, task: tuple[str, str]) -> None:
        with self._idle:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="berth-sweeper",
                                                daemon=True)
                self._thread.start()
        self._queue.put(task)

    def _work(self) -> None:
        while True:
            kind, subject = self._queue.get()
            try:
                if kind == "close":
                    self.settle(subject)
                else:
                    remove_tree(subject)
            except Exception as exc:  # reported; the next task still runs
                log.warning("sweeper: %s %s: %s", kind, subject, exc)
            finally:
                with self._idle:
                    self._pending -= 1
                    if self._pending == 0:
                        self._idle.notify_all()


def abandoned(path: pathlib.Path) -> bool:
    """True unless a live process holds ``path`` (its flock): a sweeper its trash, an image
    store the staging of an import or a removal."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return True  # not a directory we can lock (a plain leftover): nobody holds it
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(descriptor)  # the lock goes with it: what it guards is being freed
    return True


def remove_tree(path: str) -> None:
    """Delete ``path`` and everything under it; a tree deeper than Python's recursion limit
    (a container can make one) is freed without recursion."""
    if not os.path.isdir(path) or os.path.islink(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    try:
        shutil.rmtree(path, onerror=_report)
    except RecursionError:
        _remove_deep(path)


def _remove_deep(root: str) -> None:
    """Free ``root`` level by level through descriptors, holding one at a time: its paths may
    be longer than PATH_MAX (a container can nest 2000 directories), and no link is followed.
    Each level's subdirectories are listed once; the way back up is ``..`` (the tree is out of
    sight, in the trash, and nothing moves in it)."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    descriptor = os.open(root, flags)
    # One frame a level below root: the directory's name in its parent, and its
    # subdirectories not freed yet (None: not listed yet).
    frames: list[tuple[str, list[str] | None]] = [("", None)]
    try:
        while True:
            name, pending = frames[-1]
            if pending is None:
                pending = []
                with os.scandir(descriptor) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(entry.name)
                        else:
                            with contextlib.suppress(FileNotFoundError):
                                os.unlink(entry.name, dir_fd=descriptor)
                frames[-1] = (name, pending)
            if pending:
                child_name = pending.pop()
                try:
                    child = os.open(child_name, flags, dir_fd=descriptor)
                except FileNotFoundError:
                    continue
                os.close(descriptor)
                descriptor = child
                frames.append((child_name, None))
                continue
            if len(frames) == 1:
                break
            parent = os.open("..", flags, dir_fd=descriptor)
            os.close(descriptor)
            descriptor = parent
            frames.pop()
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(name, dir_fd=descriptor)
    finally:
        os.close(descriptor)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(root)


def _report(function: object, path: str, error: tuple[type[BaseException], BaseException, object]
            ) -> None:
    if not isinstance(error[1], FileNotFoundError):  # freed meanwhile (a second engine's)
        log.warning("sweeper: cannot free %s: %s", path, error[1])
