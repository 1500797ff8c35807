"""The real berth gRPC server, in-process, on a temporary unix socket over the fake backend.

``start_daemon(root)`` composes what ``berth daemon`` composes (engine, server, listener,
socket mode) and returns a running ``ApiDaemon`` with a client channel from
``engine.client.connect``; ``stop()`` shuts it down the way the daemon does (server first,
then the database), so a second ``start_daemon`` on the same root is a daemon restart: the
journal and the fake runtime's state under ``<root>/fake`` survive it.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import tempfile
from collections.abc import Callable, Iterable, Iterator

import grpc
import pytest

from engine.api.errors import ERROR_CLASS_KEY
from engine.api.server import build_server, listen, secure_sockets
from engine.api.v1 import containers_pb2 as pb
from engine.api.v1 import containers_pb2_grpc as rpc
from engine.api.v1 import events_pb2
from engine.api.v1 import system_pb2_grpc as system_rpc
from engine.client import connect
from engine.composition import open_engine
from engine.failpoint import Failpoints
from engine.service import Engine
from engine.store import HistoryRecord
from engine.testing import FakeRuntime

CALL_TIMEOUT = 10.0  # a deadline on every call: a broken server fails a test, never hangs it


@dataclasses.dataclass
class ApiDaemon:
    root: pathlib.Path
    engine: Engine
    server: grpc.Server
    address: str
    channel: grpc.Channel
    containers: rpc.ContainersStub
    system: system_rpc.SystemStub

    @property
    def socket_path(self) -> str:
        return self.address.removeprefix("unix://")

    @property
    def runtime(self) -> FakeRuntime:
        runtime = self.engine.saga.runtime
        assert isinstance(runtime, FakeRuntime)
        return runtime

    def history(self) -> list[HistoryRecord]:
        """Every row of the history table, in event_seq order."""
        with self.engine.saga.db.read(snapshot=False) as reader:
            return reader.history()

    def create(self, name: str, **config: object) -> pb.Container:
        fields: dict[str, object] = {"image": "busybox", "cmd": ["sleep", "1000"], "name": name}
        fields.update(config)
        reply = self.containers.Create(
            pb.CreateRequest(config=pb.ContainerConfig(**fields)),  # type: ignore[arg-type]
            timeout=CALL_TIMEOUT)
        return reply.container

    def run(self, name: str) -> pb.Container:
        self.create(name)
        reply = self.containers.Start(pb.StartRequest(container=name), timeout=CALL_TIMEOUT)
        assert reply.container.state == "running"
        return reply.container

    def stop(self) -> None:
        self.channel.close()
        self.server.stop(grace=None).wait()
        self.engine.saga.db.close()


def start_daemon(root: pathlib.Path, *, failpoints: Failpoints | None = None,
                 socket_dir: pathlib.Path | None = None) -> ApiDaemon:
    engine, _ = open_engine(root, backend="fake",
                            failpoints=failpoints if failpoints is not None else Failpoints())
    server = build_server(engine, data_root=str(root), backend="fake",
                          reload=lambda: engine.config.current())
    address = listen(server, f"unix://{socket_dir or root}/berth.sock")
    server.start()
    secure_sockets([address])
    channel = connect(address)
    return ApiDaemon(root, engine, server, address, channel, rpc.ContainersStub(channel),
                     system_rpc.SystemStub(channel))


@pytest.fixture
def short_dir() -> Iterator[pathlib.Path]:
    """A short directory under /tmp (unix socket paths are limited to 107 bytes)."""
    with tempfile.TemporaryDirectory(prefix="berth-api-") as name:
        yield pathlib.Path(name)


@pytest.fixture
def daemon_root(short_dir: pathlib.Path) -> pathlib.Path:
    return short_dir / "root"


@pytest.fixture
def daemon(daemon_root: pathlib.Path) -> Iterator[ApiDaemon]:
    running = start_daemon(daemon_root)
    yield running
    running.stop()


def entries_of(batches: Iterable[pb.LogBatch]) -> Iterator[pb.LogEntry]:
    """The entries of a Logs stream, one after another (it sends them in batches)."""
    for batch in batches:
        yield from batch.entries


def take(stream: Iterable[events_pb2.HistoryEvent], count: int) -> list[events_pb2.HistoryEvent]:
    """The next ``count`` messages of a (never-ending) event stream."""
    taken: list[events_pb2.HistoryEvent] = []
    iterator = iter(stream)
    while len(taken) < count:
        taken.append(next(iterator))
    return taken


def failure(call: Callable[[], object]) -> grpc.RpcError:
    """Run ``call``; return the RpcError it must raise."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def error_class_of(error: grpc.RpcError) -> str:
    """The ``berth-error-class`` trailing metadata of a failed call ('' if absent)."""
    trailers = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
    return str(trailers.get(ERROR_CLASS_KEY, ""))


def make_traversable(path: pathlib.Path) -> None:
    """Let any user reach ``path`` (so only the socket's own mode decides who connects)."""
    for directory in (path, *path.parents):
        if str(directory) in ("/", "/tmp"):
            break
        os.chmod(directory, 0o755)
