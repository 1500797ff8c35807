"""The database's per-thread read connections: one a live thread, none for ended ones."""

from __future__ import annotations

import os
import pathlib
import threading

from engine.store import Database


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_the_read_connections_of_ended_threads_are_closed(tmp_path: pathlib.Path) -> None:
    """Each exit monitor thread read through a connection of its own, kept for good: two
    descriptors a container for the daemon's life (helper-47)."""
    database = Database(str(tmp_path / "berth.db"))
    try:
        def read_once() -> None:
            with database.read() as reader:
                reader.last_history_seq()

        def one_thread() -> None:
            thread = threading.Thread(target=read_once)
            thread.start()
            thread.join()

        for _ in range(5):
            one_thread()
        before = open_descriptors()
        for _ in range(40):
            one_thread()
        # Each new thread's first read closes the connections of those that ended: the count
        # stays put (it grew by two a thread).
        assert open_descriptors() <= before
        assert len(database._readers) == 1
        read_once()  # this thread's own, kept while it lives
        assert len(database._readers) == 1
        assert database._readers[0][0] is threading.current_thread()
    finally:
        database.close()
