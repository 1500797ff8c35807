"""Deferred freeing of host resources that are already out of sight.

Contract: a release that the journal records as done has taken effect before it returns — the
mount is gone from the mount table, the directory is gone from the container's tree — but the
expensive remainder is left to one background thread, off the caller's latency:
* ``close_later(fd)``: the descriptor holds a detached filesystem; closing it tears the
  filesystem down (for an overlay: syncing its upper layer and freeing its inodes, ~0.35 ms of
  every exit measured here, and more with dirty data);
* ``discard(path)``: ``path`` is renamed atomically into ``<root>/trash`` and its tree freed
  later (~0.8 ms a container directory).
What is queued can no longer be reached, so deferring it changes nothing anyone can observe
except time. A crash loses nothing: the kernel closes descriptors when the process exits, and
the trash left behind is emptied when the next host opens (``Sweeper(trash)`` queues it).
Work runs in submission order (a filesystem is torn down before its directories are freed).
"""

from __future__ import annotations

import itertools
import logging
import os
import pathlib
import queue
import shutil
import threading

log = logging.getLogger("berth.sweeper")

_Task = tuple[str, int | str]


class Sweeper:
    """One background thread that closes descriptors and frees discarded trees."""

    def __init__(self, trash: pathlib.Path) -> None:
        self.trash = trash
        trash.mkdir(parents=True, exist_ok=True)
        self._queue: queue.SimpleQueue[_Task] = queue.SimpleQueue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self._names = itertools.count()
        for leftover in sorted(os.listdir(trash)):  # a crashed daemon's
            self._submit(("remove", str(trash / leftover)))

    def close_later(self, descriptor: int) -> None:
        """Close ``descriptor`` on the background thread."""
        self._submit(("close", descriptor))

    def discard(self, path: str) -> bool:
        """Move ``path`` into the trash (atomically: it is gone when this returns) and free it
        in the background. Returns False if there was nothing at ``path``. Raises OSError if
        it cannot be moved (then nothing happened)."""
        target = self.trash / f"{os.getpid()}.{next(self._names)}.{os.path.basename(path)}"
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return False
        self._submit(("remove", str(target)))
        return True

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is done; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _submit(self, task: _Task) -> None:
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
                    os.close(int(subject))
                else:
                    shutil.rmtree(str(subject), onerror=_report)
            except OSError as exc:
                log.warning("sweeper: %s %s: %s", kind, subject, exc)
            finally:
                with self._idle:
                    self._pending -= 1
                    if self._pending == 0:
                        self._idle.notify_all()


def _report(function: object, path: str, error: tuple[type[BaseException], BaseException, object]
            ) -> None:
    if not isinstance(error[1], FileNotFoundError):  # freed meanwhile (a second engine's)
        log.warning("sweeper: cannot free %s: %s", path, error[1])
