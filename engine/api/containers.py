"""The berth.v1.Containers service: a thin adapter from messages to ``engine.service.Engine``.

Errors are not caught here (``ErrorInterceptor`` maps them), except NotModified, which is a
successful ``changed: false`` reply.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO

import grpc

from engine.api.convert import (
    config_from,
    container_message,
    history_message,
    image_message,
    inspect_details,
)
from engine.api.idempotency import RequestLedger
from engine.api.v1 import containers_pb2 as pb
from engine.api.v1 import containers_pb2_grpc as rpc
from engine.container_config import create_warnings
from engine.errors import (
    BerthError,
    Cancelled,
    Conflict,
    DataLoss,
    Deadline,
    InvalidParameter,
    NotFound,
    NotImplemented_,
    NotModified,
    Unavailable,
    wrapped,
)
from engine.log_pump import parse_rfc3339_nano, tail_offset
from engine.service import Engine, check_wait_timeout, still_running
from engine.state import Actor, ContainerState
from engine.store import ContainerRecord, JournalContext
from engine.volume import VolumeRecord, VolumeStore

logger = logging.getLogger("berth.api")

LOG_POLL_SECONDS = 0.1
REMOVAL_POLL_SECONDS = 0.05  # how often a wait for "removed" looks for the removal
FOLLOW_BATCH = 1000  # lines a follow reads before it looks at the run again
FOLLOW_BATCH_BYTES = 1 << 20  # and bytes: what one follow holds is bounded
WAIT_SLICE = 1.0  # seconds a Wait blocks before it checks that its caller is still there
SHUTTING_DOWN = "the berth daemon is shutting down"


def wait_condition(condition: str) -> bool:
    """Whether a Wait with Docker's ``condition`` answers for a container removed already.
    Raises InvalidParameter."""
    if condition in ("", "not-running"):
        return False
    if condition == "removed":
        return True
    if condition == "next-exit":
        return False  # not found, as for not-running (``Engine.wait_next_exit``)
    raise InvalidParameter(f'invalid condition: "{condition}"')


def volume_message(record: VolumeRecord, users: Sequence[str] = ()) -> pb.Volume:
    return pb.Volume(name=record.name, mountpoint=record.mountpoint,
                     created_ms=record.created_ms, anonymous=record.anonymous, users=users)


def _context(request_id: str) -> JournalContext:
    return JournalContext(Actor.API, request_id or None)


class ContainersService(rpc.ContainersServicer):  # type: ignore[misc]
    def __init__(self, engine: Engine, ledger: RequestLedger,
                 shutdown: threading.Event | None = None) -> None:
        self._engine = engine
        self._ledger = ledger
        # Set when the daemon stops: long calls (a wait, a followed log) end at once instead
        # of holding the server's grace period and being cancelled at its end.
        self._shutdown = shutdown or threading.Event()

    def _check_shutdown(self) -> None:
        if self._shutdown.is_set():
            raise Unavailable(SHUTTING_DOWN)

    def _change(self, method: str, request: pb.ContainerRequest | pb.StopRequest
                | pb.KillRequest | pb.RemoveRequest | pb.StartRequest,
                action: Callable[[JournalContext], object]) -> pb.ChangeResponse:
        container = request.container

        def call() -> pb.ChangeResponse:
            changed = True
            try:
                outcome = action(_context(request.request_id))
                changed = outcome is not False
            except NotModified:
                changed = False
            try:
                record = self._engine.inspect(container)
            except NotFound:
                return pb.ChangeResponse(changed=changed)
            return pb.ChangeResponse(changed=changed, container=container_message(record))

        return self._ledger.once(method, request, pb.ChangeResponse, call)

    def Create(self, request: pb.CreateRequest, context: grpc.ServicerContext
               ) -> pb.CreateResponse:
        def call() -> pb.CreateResponse:
            config = config_from(request.config)
            record = self._engine.create(config, context=_context(request.request_id))
            return pb.CreateResponse(container=container_message(record),
                                     warnings=create_warnings(config))

        return self._ledger.once("Create", request, pb.CreateResponse, call)

    def Start(self, request: pb.StartRequest, context: grpc.ServicerContext
              ) -> pb.ChangeResponse:
        return self._change("Start", request,
                            lambda ctx: self._engine.start(
                                request.container, checkpoint=request.checkpoint,
                                checkpoint_dir=request.checkpoint_dir, context=ctx))

    def Stop(self, request: pb.StopRequest, context: grpc.ServicerContext) -> pb.ChangeResponse:
        timeout = request.timeout if request.HasField("timeout") else None
        return self._change("Stop", request,
                            lambda ctx: self._engine.stop(
                                request.container, timeout=timeout,
                                signal=request.signal or None, context=ctx))

    def Restart(self, request: pb.StopRequest, context: grpc.ServicerContext
                ) -> pb.ChangeResponse:
        timeout = request.timeout if request.HasField("timeout") else None
        return self._change("Restart", request,
                            lambda ctx: self._engine.restart(
                                request.container, timeout=timeout,
                                signal=request.signal or None, context=ctx))

    def Kill(self, request: pb.KillRequest, context: grpc.ServicerContext) -> pb.ChangeResponse:
        def kill(ctx: JournalContext) -> object:
            try:
                return self._engine.kill(request.container, signal=request.signal or 9,
                                         context=ctx)
            except NotModified:
                raise
            except BerthError as exc:  # moby's router wraps every kill failure so
                raise wrapped(exc, f"Cannot kill container: {request.container}") from exc

        return self._change("Kill", request, kill)

    def Pause(self, request: pb.ContainerRequest, context: grpc.ServicerContext
              ) -> pb.ChangeResponse:
        return self._change("Pause", request,
                            lambda ctx: self._engine.pause(request.container, context=ctx))

    def Unpause(self, request: pb.ContainerRequest, context: grpc.ServicerContext
                ) -> pb.ChangeResponse:
        return self._change("Unpause", request,
                            lambda ctx: self._engine.unpause(request.container, context=ctx))

    def Remove(self, request: pb.RemoveRequest, context: grpc.ServicerContext
               ) -> pb.ChangeResponse:
        return self._change("Remove", request,
                            lambda ctx: self._engine.remove(
                                request.container, force=request.force,
                                volumes=request.volumes, context=ctx))

    def Wait(self, request: pb.WaitRequest, context: grpc.ServicerContext) -> pb.WaitResponse:
        """Waits in slices while the call is active: a client that goes away (or a server
        that stops) frees this worker within one slice instead of never."""
        timeout = request.timeout if request.HasField("timeout") else None
        check_wait_timeout(timeout)
        removed = wait_condition(request.condition)
        until_removed = request.condition == "removed"  # Docker's: answered once it is gone
        if timeout is not None and math.isinf(timeout):
            timeout = None
        if request.condition == "next-exit":
            return self._wait_next_exit(request.container, timeout, context)
        deadline = None if timeout is None else time.monotonic() + timeout
        container = request.container  # its ID once found: a removed one's name is free
        while True:
            left = WAIT_SLICE if deadline is None else deadline - time.monotonic()
            try:
                record = self._engine.wait(container, timeout=max(0.0, min(left, WAIT_SLICE)),
                                           removed=removed)
            except Deadline as exc:
                if deadline is not None and left <= WAIT_SLICE:  # the caller's own timeout
                    record = self._engine.inspect(request.container)
                    raise Deadline(still_running(record.id, timeout)) from exc
                if not context.is_active():
                    return pb.WaitResponse()  # nobody is listening any more
                self._check_shutdown()
                removed = True  # it existed: removed from now on, its exit still answers
                continue
            if until_removed and record.state is not ContainerState.REMOVED:
                container, removed = record.id, True
                if deadline is not None and time.monotonic() >= deadline:
                    raise Deadline(f"container {record.id} not removed after {timeout:g}s")
                if not context.is_active():
                    return pb.WaitResponse()
                self._check_shutdown()
                time.sleep(REMOVAL_POLL_SECONDS)
                continue
            return pb.WaitResponse(exit_code=record.exit_code, error=record.error)

    def _wait_next_exit(self, container: str, timeout: float | None,
                        context: grpc.ServicerContext) -> pb.WaitResponse:
        def gone() -> bool:
            self._check_shutdown()
            return not context.is_active()

        try:
            record = self._engine.wait_next_exit(container, timeout=timeout, gone=gone)
        except Cancelled:
            return pb.WaitResponse()  # nobody is listening any more
        return pb.WaitResponse(exit_code=record.exit_code, error=record.error)

    def Inspect(self, request: pb.InspectRequest, context: grpc.ServicerContext
                ) -> pb.Container:
        record = self._engine.inspect(request.container)
        volumes = self._engine.volumes
        return inspect_details(container_message(record),
                               record, log_path=self._engine.saga.host.log_path(record.id),
                               volumes_root=str(volumes.root) if volumes is not None else None)

    def List(self, request: pb.ListRequest, context: grpc.ServicerContext) -> pb.ListResponse:
        records = self._engine.list_containers(all=request.all)
        listed = [container_message(r) for r in records]
        images = self._engine.images
        now: dict[str, str] = {}  # a reference -> the image it names now ("" for none)
        for container in listed:
            # moby's list: the reference as given while it still names the container's image,
            # else the image's ID (the name moved to other content, or went).
            if images is None or not container.image_digest:
                continue
            if container.image not in now:
                try:
                    now[container.image] = images.resolve(container.image).digest
                except (NotFound, InvalidParameter):
                    now[container.image] = ""
            if now[container.image] != container.image_digest:
                container.image = container.image_digest
        return pb.ListResponse(containers=listed)

    def History(self, request: pb.HistoryRequest, context: grpc.ServicerContext
                ) -> pb.HistoryResponse:
        record = self._engine.inspect(request.container)
        rows = self._engine.history(record.id)
        return pb.HistoryResponse(events=[history_message(row, record.name) for row in rows])

    def Attach(self, request: pb.AttachRequest, context: grpc.ServicerContext
               ) -> Iterator[pb.OutputChunk]:
        """docker run's attach: the output of the container's run (the next one for a created
        container), raw, as the supervisor reads it. NotImplemented where the runtime cannot
        attach (the fake; a supervisor from before): ``run`` then reads the log."""
        record = self._engine.inspect(request.container)
        if record.state not in (ContainerState.CREATED, ContainerState.RUNNING,
                                ContainerState.PAUSED, ContainerState.RESTARTING):
            raise Conflict("You cannot attach to a stopped container, start it first")
        output = self._engine.saga.runtime.attach(record.id)
        if output is None:
            raise NotImplemented_("this runtime cannot attach; read the container's log")
        context.add_callback(output.close)  # a caller that goes away ends it at once
        try:
            yield pb.OutputChunk()  # attached: the caller may start the container now
            for item in output.chunks():
                self._check_shutdown()  # at least once a second (a heartbeat's None)
                if item is not None:
                    yield pb.OutputChunk(stream=item[0], data=item[1])
            self._check_shutdown()  # the stream ended because the daemon stops
            if not output.complete and context.is_active():
                raise DataLoss("the container's output stopped coming before its end (the "
                               "supervisor went away, or could not keep what was not read "
                               "yet); see its log")
        finally:
            output.close()

    def Logs(self, request: pb.LogsRequest, context: grpc.ServicerContext
             ) -> Iterator[pb.LogBatch]:
        record = self._engine.inspect(request.container)
        path = self._engine.saga.host.log_path(record.id)
        log: BinaryIO | None = None
        position = 0
        # Docker's: a negative tail is all of it; the tail is taken first, then the window.
        tail = request.tail if request.HasField("tail") and request.tail >= 0 else None
        since, until = request.since_ns, request.until_ns
        followed: list[int | None] = [None]  # the run followed: the first live one seen
        limit: int | None = None  # once it ended: where its output ends in the log
        try:
            if request.follow and request.from_start:
                # Held open from here: a removal at the exit (--rm) moves the file away, and
                # what the run wrote is still read to its end.
                os.makedirs(os.path.dirname(path), exist_ok=True)
                log = open(path, "a+b")  # noqa: SIM115 - closed below
                log.seek(0)
                yield pb.LogBatch()  # the handshake: the caller may start the container now
            while True:
                if log is None:
                    with contextlib.suppress(FileNotFoundError):
                        log = open(path, "rb")  # noqa: SIM115 - closed below
                        if tail is not None:
                            position = tail_offset(log, tail)
                # A follow reads a batch, then looks at the run: lines read while it still
                # ran are its own; once it ended, only those before its exit's log end.
                batch: list[tuple[int, bytes]] = []
                full = False  # the batch is at its bound: more may be there at once
                if log is not None:
                    log.seek(position)
                    size = 0
                    entries: list[pb.LogEntry] = []
                    for line in log:
                        if not line.endswith(b"\n"):
                            break
                        position += len(line)
                        if not request.follow:
                            entries.extend(self._entry(line, since, until))
                            size += len(line)
                            if len(entries) >= FOLLOW_BATCH or size >= FOLLOW_BATCH_BYTES:
                                yield pb.LogBatch(entries=entries)
                                entries, size = [], 0
                            continue
                        batch.append((position, line))
                        size += len(line)
                        if len(batch) >= FOLLOW_BATCH or size >= FOLLOW_BATCH_BYTES:
                            full = True
                            break
                if not request.follow:
                    if log is not None and entries:
                        yield pb.LogBatch(entries=entries)
                    return
                if not context.is_active():
                    return
                if limit is None and not self._still_running(
                        record.id, followed, waiting=request.from_start and followed[0] is None):
                    # Ended: where its output ends, journaled with its exit, or else all that
                    # is there now (the supervisor records an exit once its output ended).
                    limit = self._log_end(record.id, followed[0])
                    if limit is None:
                        limit = os.fstat(log.fileno()).st_size if log is not None else 0
                shown: list[pb.LogEntry] = []
                for end, line in batch:
                    if limit is not None and end > limit:
                        if shown:
                            yield pb.LogBatch(entries=shown)
                        return  # the next run's output
                    shown.extend(self._entry(line, since, until))
                if shown:
                    yield pb.LogBatch(entries=shown)
                if until and time.time_ns() > until:
                    return  # Docker's follow ends once --until is past
                self._check_shutdown()
                if limit is not None:
                    if full and position < limit:
                        continue  # the rest of its output, then the end
                    return
                if not full:
                    time.sleep(LOG_POLL_SECONDS)
        finally:
            if log is not None:
                log.close()

    @staticmethod
    def _entry(line: bytes, since: int, until: int) -> Iterator[pb.LogEntry]:
        """The log line as an entry, if it was written within the window. A line that is no
        json-file entry (a write a full disk cut short) is skipped, and the rest is read:
        Docker's reader stops there ("Error grabbing logs")."""
        try:
            entry = json.loads(line)
            made = pb.LogEntry(stream=entry["stream"], line=entry["log"], time=entry["time"])
            if since or until:
                written = parse_rfc3339_nano(made.time)
                if written < since or (until and written > until):
                    return
        except (ValueError, KeyError, TypeError) as error:  # a field of another type too
            logger.warning("a log line that is no json-file entry is skipped: %s: %.80r",
                           error, line)
            return
        yield made

    def _log_end(self, container_id: str, run: int | None) -> int | None:
        """Where run ``run``'s output ends in the log (journaled with its exit), if known."""
        if run is None or run < 0:
            return None
        with self._engine.saga.db.read() as reader:
            operations = reader.operations(container_id)
        for operation in reversed(operations):
            params = operation.params or {}
            if operation.kind == "exit" and params.get("run") == run:
                end = params.get("log_end")
                return int(end) if isinstance(end, int) else None
        return None

    def _still_running(self, container_id: str, followed: list[int | None], *,
                       waiting: bool = False) -> bool:
        """True while the run the follow is on has not ended. A restart's new run is not it:
        Docker's ``logs -f`` ends at the stop. ``waiting``: no run seen yet, and a created
        container is still to be started (``from_start``)."""
        try:
            record: ContainerRecord = self._engine.inspect(container_id)
        except NotFound:
            return False
        if waiting and record.state is ContainerState.CREATED and record.started_at is None:
            return True
        if waiting and record.state is ContainerState.EXITED and followed[0] is None:
            # It ran and ended between two looks: the run is the one that ended.
            followed[0] = record.resources_operation_id or -1
            return False
        if record.state not in (ContainerState.RUNNING, ContainerState.PAUSED,
                                ContainerState.STARTING, ContainerState.EXITING):
            return False
        run = record.resources_operation_id
        if run is None:  # starting: the run is numbered once it is running
            return True
        if followed[0] is None:
            followed[0] = run
        return run == followed[0]

    def Import(self, request: pb.ImportRequest, context: grpc.ServicerContext) -> pb.Image:
        images = self._engine.images
        if images is None:
            raise Unavailable("this daemon has no image store (fake backend)")
        return self._ledger.once("Import", request, pb.Image, lambda: image_message(
            images.import_image(request.source, request.reference)))

    def Images(self, request: pb.ImagesRequest, context: grpc.ServicerContext
               ) -> pb.ImagesResponse:
        images = self._engine.images
        records = images.list_images() if images is not None else []
        return pb.ImagesResponse(images=[image_message(record) for record in records])

    def RemoveImage(self, request: pb.RemoveImageRequest, context: grpc.ServicerContext
                    ) -> pb.RemoveImageResponse:
        images = self._engine.images
        if images is None:
            raise NotFound(f"No such image: {request.reference}")

        def call() -> pb.RemoveImageResponse:
            removal = images.remove(request.reference, force=request.force)
            return pb.RemoveImageResponse(untagged=removal.untagged, deleted=removal.deleted)

        return self._ledger.once("RemoveImage", request, pb.RemoveImageResponse,
                                 call)

    def _volumes(self) -> VolumeStore:
        volumes = self._engine.volumes
        if volumes is None:
            raise Unavailable("this daemon's backend has no volumes")
        return volumes

    def Volumes(self, request: pb.VolumesRequest, context: grpc.ServicerContext
                ) -> pb.VolumesResponse:
        volumes = self._volumes()
        records = ([volumes.inspect(name) for name in request.names] if request.names
                   else volumes.list_volumes())
        users = volumes.users_by_volume()
        return pb.VolumesResponse(volumes=[volume_message(record, users.get(record.name, ()))
                                           for record in records])

    def CreateVolume(self, request: pb.CreateVolumeRequest, context: grpc.ServicerContext
                     ) -> pb.Volume:
        volumes = self._volumes()
        return self._ledger.once("CreateVolume", request, pb.Volume, lambda: volume_message(
            volumes.create(request.name)))

    def RemoveVolume(self, request: pb.RemoveVolumeRequest, context: grpc.ServicerContext
                     ) -> pb.RemoveVolumeResponse:
        volumes = self._volumes()
        return self._ledger.once("RemoveVolume", request, pb.RemoveVolumeResponse,
                                 lambda: pb.RemoveVolumeResponse(removed=volumes.remove(
                                     request.name, force=request.force)))

    def PruneVolumes(self, request: pb.PruneVolumesRequest, context: grpc.ServicerContext
                     ) -> pb.PruneVolumesResponse:
        volumes = self._volumes()

        def call() -> pb.PruneVolumesResponse:
            pruned = volumes.prune(everything=request.all)
            return pb.PruneVolumesResponse(removed=[name for name, _ in pruned],
                                           reclaimed_bytes=sum(size for _, size in pruned))

        return self._ledger.once("PruneVolumes", request, pb.PruneVolumesResponse, call)
