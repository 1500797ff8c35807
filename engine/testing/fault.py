"""Per-call fault injection shared by the fakes."""

from __future__ import annotations

import dataclasses
import threading


@dataclasses.dataclass
class Fault:
    call: str  # e.g. "start", "acquire:rootfs", "release:network"
    error: BaseException
    container_id: str | None = None  # None: any container
    times: int = 1  # how many calls fail; -1: every call


class FaultPlan:
    """Faults armed by a test; ``check(call, container_id)`` raises the first matching one."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, call: str, error: BaseException, *, container_id: str | None = None,
            times: int = 1) -> None:
        with self._lock:
            self._faults.append(Fault(call, error, container_id, times))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def check(self, call: str, container_id: str) -> None:
        if not self._faults:  # the common case: nothing armed, no lock
            return
        with self._lock:
            for fault in self._faults:
                if fault.call != call:
                    continue
                if fault.container_id not in (None, container_id):
                    continue
                if fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                raise fault.error
