"""The berth.v1.System service: info, version, reload, and the event stream.

``Events`` replays the stored history after ``since_seq`` and then follows new rows: it
re-reads the history after every journal commit (``EventBus.watch``) and at least once a
second, always from the last seq it sent, so a client that reconnects with the last seq it saw
misses nothing and gets nothing twice, across daemon restarts too.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator

import grpc

from engine.api.containers import SHUTTING_DOWN
from engine.api.convert import history_message, labels_of
from engine.api.idempotency import RequestLedger
from engine.api.v1 import events_pb2
from engine.api.v1 import system_pb2 as spb
from engine.api.v1 import system_pb2_grpc as rpc
from engine.cli_version import API_VERSION, VERSION
from engine.config import ConfigSnapshot
from engine.errors import Unavailable
from engine.lifecycle import DOCKER_EVENTS
from engine.reference import familiar_name
from engine.service import Engine
from engine.state import ContainerState

EVENT_POLL_SECONDS = 1.0


class SystemService(rpc.SystemServicer):  # type: ignore[misc]
    def __init__(self, engine: Engine, *, data_root: str, backend: str,
                 reload: Callable[[], ConfigSnapshot], ledger: RequestLedger,
                 shutdown: threading.Event | None = None) -> None:
        self._shutdown = shutdown or threading.Event()  # see ContainersService
        self._engine = engine
        self._ledger = ledger
        self._data_root = data_root
        self._backend = backend
        self._reload = reload

    def Info(self, request: spb.InfoRequest, context: grpc.ServicerContext) -> spb.InfoResponse:
        records = self._engine.list_containers(all=True)
        states = [record.state for record in records]
        snapshot = self._engine.config.current()
        images = self._engine.images.list_images() if self._engine.images else []
        return spb.InfoResponse(
            containers=len(records),
            running=sum(s in (ContainerState.RUNNING, ContainerState.RESTARTING)
                        for s in states),
            paused=states.count(ContainerState.PAUSED),
            stopped=sum(s in (ContainerState.CREATED, ContainerState.EXITED,
                              ContainerState.DEAD) for s in states),
            images=len(images), data_root=self._data_root, database=self._engine.saga.db.path,
            default_runtime=snapshot.default_runtime,
            runtimes=[spb.Runtime(name=runtime.name, binary=runtime.binary,
                                  digest=runtime.digest)
                      for runtime in snapshot.resolved_runtimes()],
            config_generation=snapshot.generation, backend=self._backend,
        )

    def Version(self, request: spb.VersionRequest, context: grpc.ServicerContext
                ) -> spb.VersionResponse:
        return spb.VersionResponse(version=VERSION, api_version=API_VERSION,
                                   python=sys.version.split()[0], sqlite=sqlite3.sqlite_version)

    def Reload(self, request: spb.ReloadRequest, context: grpc.ServicerContext
               ) -> spb.ReloadResponse:
        return self._ledger.once(
            "Reload", request, spb.ReloadResponse,
            lambda: spb.ReloadResponse(generation=self._reload().generation))

    def Events(self, request: spb.EventsRequest, context: grpc.ServicerContext
               ) -> Iterator[events_pb2.HistoryEvent]:
        wake = threading.Event()
        unwatch = self._engine.saga.events.watch(wake.set)
        context.add_callback(wake.set)  # a client that goes away ends the wait at once
        last = request.since_seq
        if request.new_only:
            with self._engine.saga.db.read() as reader:
                last = max(last, reader.last_history_seq())
        wanted_containers = set(request.containers)
        wanted_events = set(request.events)
        wanted_images = set(request.images)
        # container id -> (name, image, labels)
        names: dict[str, tuple[str, str, dict[str, str]]] = {}
        try:
            while context.is_active():
                wake.clear()
                with self._engine.saga.db.read() as reader:
                    rows = reader.history(since=last)
                    for row in rows:
                        if row.container_id not in names:
                            record = reader.container(row.container_id)
                            names[row.container_id] = (
                                (record.name, record.image, labels_of(record.config))
                                if record else ("", "", {}))
                for row in rows:
                    last = row.event_seq
                    if request.until_ms and row.at > request.until_ms:
                        return
                    if row.at < request.since_ms:
                        continue
                    name, image, labels = names[row.container_id]
                    if wanted_containers and not wanted_containers & {row.container_id, name}:
                        continue
                    # moby's matchImage: the image as given, or without its tag.
                    if wanted_images and not wanted_images & {image, familiar_name(image)}:
                        continue
                    if wanted_events and row.event not in wanted_events:
                        continue
                    if request.docker_only and row.event not in DOCKER_EVENTS:
                        continue
                    yield history_message(row, name, image, labels)
                wait = EVENT_POLL_SECONDS
                if request.until_ms:  # Docker's --until: the stream ends at that time
                    left = request.until_ms / 1000 - time.time()
                    if left <= 0:
                        return
                    wait = min(wait, left)
                wake.wait(wait)
                if self._shutdown.is_set():
                    raise Unavailable(SHUTTING_DOWN)
        finally:
            unwatch()
