"""A load of API clients: each creates, starts and removes its own containers in a loop.

Used by the concurrency test and ``bench/api_concurrency.py``. Every failed call is kept with
its status code, so a caller can assert that none was "database is locked" or internal.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid

import grpc

from engine.api.v1 import containers_pb2 as pb
from engine.api.v1 import containers_pb2_grpc
from engine.client import connect


@dataclasses.dataclass
class LoadReport:
    operations: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (code, message)

    @property
    def per_second(self) -> float:
        return self.operations / self.seconds if self.seconds else 0.0


def run_clients(address: str, *, clients: int, seconds: float, image: str = "busybox",
                command: tuple[str, ...] = ("sleep", "1000")) -> LoadReport:
    """``clients`` threads, each with its own channel, for ``seconds``: create, start, remove
    (forced) in a loop. Returns the operations done and every failure."""
    report = LoadReport()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        channel = connect(address)
        stub = containers_pb2_grpc.ContainersStub(channel)
        done = 0
        while time.monotonic() < deadline:
            name = f"load-{index}-{uuid.uuid4().hex[:8]}"
            try:
                stub.Create(pb.CreateRequest(config=pb.ContainerConfig(
                    image=image, cmd=list(command), name=name)), timeout=60)
                stub.Start(pb.StartRequest(container=name), timeout=60)
                stub.Remove(pb.RemoveRequest(container=name, force=True), timeout=60)
                done += 3
            except grpc.RpcError as error:
                with lock:
                    report.failures.append((error.code().name, error.details() or ""))
        channel.close()
        with lock:
            report.operations += done

    began = time.monotonic()
    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.seconds = time.monotonic() - began
    return report
