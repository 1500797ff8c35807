"""The in-process event bus: wakes live subscribers after a transition is committed.

The durable event *is* the history row; the bus only tells listeners that rows were written, so
a subscriber that missed a notification loses nothing (it re-reads history from its last seq).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable

log = logging.getLogger("berth.event")


@dataclasses.dataclass(frozen=True, slots=True)
class ContainerEvent:
    container_id: str
    name: str
    action: str  # Docker's event name: create, start, die, stop, kill, pause, unpause, destroy
    at: int
    attributes: tuple[tuple[str, str], ...] = ()


Subscriber = Callable[[ContainerEvent], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._watchers: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def watch(self, watcher: Callable[[], None]) -> Callable[[], None]:
        """Call ``watcher`` after every journal commit (no argument: re-read the history).
        Return a function that removes it."""
        with self._lock:
            self._watchers = [*self._watchers, watcher]

        def unwatch() -> None:
            with self._lock:
                self._watchers = [w for w in self._watchers if w is not watcher]

        return unwatch

    def committed(self) -> None:
        for watcher in self._watchers:
            watcher()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add ``subscriber``; return a function that removes it."""
        with self._lock:
            self._subscribers = [*self._subscribers, subscriber]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not subscriber]

        return unsubscribe

    def publish(self, event: ContainerEvent) -> None:
        """Call every subscriber; a failing subscriber is logged and never fails the caller."""
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:
                log.exception("event subscriber failed on %s", event.action)
