"""The server around the services: health, reflection, generated code, message size limit."""

from __future__ import annotations

import json
import pathlib
import time
import tomllib

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from engine.api import codegen, containers
from engine.api.channel import Channel
from engine.api.server import MAX_MESSAGE_BYTES, SERVICE_NAMES
from engine.api.v1 import containers_pb2 as pb
from engine.api.v1 import containers_pb2_grpc as rpc
from engine.api.v1 import system_pb2 as spb
from engine.log_pump import rfc3339_nano
from tests.api.conftest import CALL_TIMEOUT, ApiDaemon, entries_of, failure

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]


def test_health_reports_serving(daemon: ApiDaemon) -> None:
    health = health_pb2_grpc.HealthStub(daemon.channel)
    for service in ("", "berth.v1.Containers", "berth.v1.System"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service),
                             timeout=CALL_TIMEOUT)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
    # The interceptor leaves the health service's own answers alone.
    error = failure(lambda: health.Check(health_pb2.HealthCheckRequest(service="no.Such"),
                                         timeout=CALL_TIMEOUT))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_and_describes_the_services(daemon: ApiDaemon) -> None:
    database = ProtoReflectionDescriptorDatabase(daemon.channel)
    services = set(database.get_services())
    assert {"berth.v1.Containers", "berth.v1.System", "grpc.health.v1.Health"} <= services
    assert set(SERVICE_NAMES) <= services
    pool = descriptor_pool.DescriptorPool(database)
    containers = pool.FindServiceByName("berth.v1.Containers")
    assert {"Create", "Start", "Remove", "History"} <= set(containers.methods_by_name)
    system = pool.FindServiceByName("berth.v1.System")
    events = system.methods_by_name["Events"]
    assert events.output_type.full_name == "berth.v1.HistoryEvent"


def test_generated_code_is_not_stale(tmp_path: pathlib.Path) -> None:
    generated = codegen.generate(tmp_path)
    committed = sorted(codegen.PROTO_DIR.glob("*_pb2*.py*"))
    assert [path.name for path in generated] == [path.name for path in committed]
    protos = len(list(codegen.PROTO_DIR.glob("*.proto")))
    assert len(generated) == protos * 3  # each proto: _pb2.py, _pb2.pyi, _pb2_grpc.py
    for fresh in generated:
        stale = codegen.PROTO_DIR / fresh.name
        assert fresh.read_bytes() == stale.read_bytes(), (
            f"{stale} is stale: run `python -m engine.api.codegen` and commit the result")


def test_generated_code_is_kept_out_of_linting() -> None:
    with open(REPOSITORY / "pyproject.toml", "rb") as handle:
        project = tomllib.load(handle)
    assert "engine/api/v1" in project["tool"]["ruff"]["extend-exclude"]
    assert any("engine/api/v1" in entry for entry in project["tool"]["mypy"]["exclude"])


def test_an_over_large_request_is_refused_and_the_daemon_keeps_serving(daemon: ApiDaemon
                                                                       ) -> None:
    huge = "BIG=" + "x" * (5 * 1024 * 1024)
    request = pb.CreateRequest(config=pb.ContainerConfig(
        image="busybox", cmd=["sleep", "1000"], name="huge", env=[huge]))
    assert request.ByteSize() > MAX_MESSAGE_BYTES
    # A client with no send limit of its own, so that the server is what refuses.
    unlimited = grpc.insecure_channel(f"unix:{daemon.socket_path}",
                                      options=[("grpc.max_send_message_length", -1)])
    try:
        stub = rpc.ContainersStub(unlimited)
        error = failure(lambda: stub.Create(request, timeout=CALL_TIMEOUT))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # The same connection, and the daemon's usual client, are still served.
        small = pb.CreateRequest(config=pb.ContainerConfig(
            image="busybox", cmd=["sleep", "1000"], name="small", env=["SMALL=1"]))
        assert stub.Create(small, timeout=CALL_TIMEOUT).container.name == "small"
    finally:
        unlimited.close()
    # engine.client.connect refuses to send it at all.
    error = failure(lambda: daemon.containers.Create(request, timeout=CALL_TIMEOUT))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert daemon.system.Version(spb.VersionRequest(), timeout=CALL_TIMEOUT).version
    listed = daemon.containers.List(pb.ListRequest(all=True), timeout=CALL_TIMEOUT)
    assert [container.name for container in listed.containers] == ["small"]


def test_a_list_larger_than_a_request_may_be_is_served(daemon: ApiDaemon) -> None:
    """Each create fits in a request; the list of them all does not, and must still come."""
    for index in range(2):
        daemon.containers.Create(pb.CreateRequest(config=pb.ContainerConfig(
            image="busybox", cmd=["sleep", "1000"], name=f"big{index}",
            env=["BIG=" + "x" * (5 * 1024 * 1024 // 2)])), timeout=CALL_TIMEOUT)
    listed = daemon.containers.List(pb.ListRequest(all=True), timeout=CALL_TIMEOUT)
    assert listed.ByteSize() > MAX_MESSAGE_BYTES
    assert sorted(container.name for container in listed.containers) == ["big0", "big1"]
    with Channel(daemon.address) as channel:  # the CLI's own client
        reply = channel.unary_unary(
            "/berth.v1.Containers/List", pb.ListRequest(all=True).SerializeToString(),
            timeout=CALL_TIMEOUT)
    assert len(pb.ListResponse.FromString(reply).containers) == 2


@pytest.mark.parametrize("size", [1024 * 1024, 3 * 1024 * 1024])
def test_a_large_request_under_the_limit_is_served(daemon: ApiDaemon, size: int) -> None:
    container = daemon.create("large", env=["LARGE=" + "y" * size])
    assert len(container.config.env[0]) == size + len("LARGE=")


def test_a_wait_whose_client_went_away_frees_its_worker(daemon: ApiDaemon) -> None:
    """Otherwise one abandoned `berth wait` keeps a worker forever and a graceful stop never
    ends (the pool joins its threads)."""
    daemon.run("waited")
    active = []
    real = daemon.engine.wait

    def wait(*arguments: object, **options: object) -> object:
        active.append(1)
        try:
            return real(*arguments, **options)  # type: ignore[arg-type]
        finally:
            active.pop()

    daemon.engine.wait = wait  # type: ignore[method-assign]
    call = daemon.containers.Wait.future(pb.WaitRequest(container="waited"))
    deadline = time.monotonic() + 5
    while not active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert active, "the wait never reached the engine"
    call.cancel()
    deadline = time.monotonic() + 5
    while active and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not active, "the engine still waits for a client that is gone"


def test_a_wait_without_a_timeout_outlasts_its_slices(daemon: ApiDaemon,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`berth wait` on a container that runs longer than one slice returns its exit code."""
    monkeypatch.setattr(containers, "WAIT_SLICE", 0.05)
    created = daemon.run("longer")
    call = daemon.containers.Wait.future(pb.WaitRequest(container="longer"))
    time.sleep(0.3)  # several slices
    assert not call.done()
    daemon.runtime.exit(created.id, 4)
    assert call.result(timeout=30).exit_code == 4


def test_a_wait_with_a_timeout_still_times_out(daemon: ApiDaemon) -> None:
    """The wait's own timeout, longer than one slice, still ends it with the deadline."""
    daemon.run("slow")
    with pytest.raises(grpc.RpcError) as failed:
        daemon.containers.Wait(pb.WaitRequest(container="slow", timeout=1.5), timeout=30)
    assert failed.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


def log_of(daemon: ApiDaemon, container_id: str) -> pathlib.Path:
    """The container's json-file log, its directory made: what a test writes there."""
    log = pathlib.Path(daemon.engine.saga.host.log_path(container_id))
    log.parent.mkdir(parents=True, exist_ok=True)
    return log


def line(text: str, at: int | None = None) -> str:
    """One json-file line of stdout, written at ``at`` (nanoseconds; now by default)."""
    return json.dumps({"log": text, "stream": "stdout",
                       "time": rfc3339_nano(time.time_ns() if at is None else at)}) + "\n"


def test_logs_follow_ends_when_its_run_ends_even_if_a_restart_follows(daemon: ApiDaemon) -> None:
    """Docker's ``logs -f`` ends at the stop; the restart's new run is another one."""
    created = daemon.run("followed")
    log = log_of(daemon, created.id)
    log.write_text(json.dumps({"log": "hi\n", "stream": "stdout", "time": "t"}) + "\n")
    stream = entries_of(daemon.containers.Logs(pb.LogsRequest(container="followed",
                                                              follow=True), timeout=30))
    assert next(stream).line == "hi\n"
    time.sleep(3 * containers.LOG_POLL_SECONDS)  # it has looked at the run it follows
    daemon.containers.Restart(pb.StopRequest(container="followed", timeout=0), timeout=30)
    assert daemon.engine.inspect("followed").state.value == "running"
    assert list(stream) == []  # ended (a stream still following would hit the 30 s deadline)


def test_logs_take_a_tail_and_a_time_window(daemon: ApiDaemon) -> None:
    """Docker's ``logs --tail N --since T --until T``: the tail is taken first, then the
    window; a negative tail is all of it."""
    created = daemon.run("windowed")
    log = log_of(daemon, created.id)
    base = 1_700_000_000_000_000_000
    log.write_text("".join(line(f"{index}\n", base + index * 1_000_000_000)
                           for index in range(6)))

    def lines(**fields: int) -> list[str]:
        request = pb.LogsRequest(container="windowed", **fields)
        return [entry.line for entry in entries_of(daemon.containers.Logs(request, timeout=30))]

    assert lines() == [f"{index}\n" for index in range(6)]
    assert lines(tail=2) == ["4\n", "5\n"]
    assert lines(tail=0) == []
    assert lines(tail=-1) == lines()
    assert lines(since_ns=base + 4 * 10**9) == ["4\n", "5\n"]
    assert lines(until_ns=base + 10**9) == ["0\n", "1\n"]
    assert lines(tail=3, since_ns=base + 4 * 10**9) == ["4\n", "5\n"]
    assert lines(since_ns=base + 2 * 10**9, until_ns=base + 3 * 10**9) == ["2\n", "3\n"]


def test_a_follow_never_shows_the_next_runs_output(daemon: ApiDaemon,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The new run of a restart writes before the follow looks at the container again: the
    follow still ends at its own run's last line (its exit journals where the log was)."""
    monkeypatch.setattr(containers, "LOG_POLL_SECONDS", 0.5)  # it reads before it looks
    created = daemon.run("restarted")
    log = log_of(daemon, created.id)

    log.write_text(line("old\n"))
    stream = entries_of(daemon.containers.Logs(pb.LogsRequest(container="restarted",
                                                              follow=True), timeout=30))
    assert next(stream).line == "old\n"
    daemon.containers.Restart(pb.StopRequest(container="restarted", timeout=0), timeout=30)
    with log.open("a") as appended:  # the new run's output, before the follow's next look
        appended.write(line("new\n"))
    assert [entry.line for entry in stream] == []


def test_a_follow_of_an_exited_container_ends_at_what_is_there(daemon: ApiDaemon) -> None:
    """Docker's ``logs -f`` of a stopped container prints its output and ends: a run started
    while it reads is not followed, and a last line cut short does not keep it going."""
    created = daemon.run("stopped")
    daemon.containers.Stop(pb.StopRequest(container="stopped", timeout=0), timeout=30)
    log = log_of(daemon, created.id)
    log.write_text("".join(line(f"{index}\n") for index in range(2500))
                   + '{"log":"cut sh')  # more than one batch, then a fragment
    stream = entries_of(daemon.containers.Logs(pb.LogsRequest(container="stopped",
                                                              follow=True), timeout=30))
    assert next(stream).line == "0\n"
    daemon.containers.Start(pb.StartRequest(container="stopped"), timeout=30)
    with log.open("a") as appended:
        appended.write('ort"}\n' + line("new run\n"))
    rest = [entry.line for entry in stream]  # ends (a spin or a follow would hit 30 s)
    assert rest == [f"{index}\n" for index in range(1, 2500)]


def test_a_log_line_that_is_no_entry_is_skipped_and_the_rest_is_read(daemon: ApiDaemon
                                                                     ) -> None:
    """A torn entry (a full disk) ended the whole read as INTERNAL, with a traceback; Docker
    stops there too ("Error grabbing logs"). The lines after it are the next run's."""
    created = daemon.run("torn")
    log = log_of(daemon, created.id)

    log.write_text(line("before\n") + '{"log":"cut sh\n' + '["no", "entry"]\n' +
                   '{"log":5,"stream":"stdout","time":"2024-01-01T00:00:00Z"}\n' +
                   line("after\n"))
    shown = [entry.line for entry in entries_of(daemon.containers.Logs(
        pb.LogsRequest(container="torn"), timeout=30))]
    assert shown == ["before\n", "after\n"]


def test_a_large_log_comes_in_batches_of_many_lines(daemon: ApiDaemon) -> None:
    """One message a line cost ~100 us a line (200,000 lines: 22 s)."""
    created = daemon.run("large")
    log = log_of(daemon, created.id)
    moment = time.time_ns()
    log.write_text("".join(line(f"{index}\n", moment) for index in range(2500)))
    batches = list(daemon.containers.Logs(pb.LogsRequest(container="large"), timeout=30))
    assert [len(batch.entries) for batch in batches] == [1000, 1000, 500]
    assert [entry.line for batch in batches for entry in batch.entries] == [
        f"{index}\n" for index in range(2500)]


def test_attach_answers_what_it_cannot_do_with_its_class(daemon: ApiDaemon) -> None:
    """The fake runtime cannot attach: NotImplemented (the CLI's run then reads the log); a
    missing container is NotFound; a stopped one is moby's Conflict."""
    def attach(name: str) -> list[pb.OutputChunk]:
        return list(daemon.containers.Attach(pb.AttachRequest(container=name),
                                             timeout=CALL_TIMEOUT))

    daemon.create("made")
    cases = [("made", grpc.StatusCode.UNIMPLEMENTED, "NotImplemented", "cannot attach"),
             ("ghost", grpc.StatusCode.NOT_FOUND, "NotFound", "No such container: ghost")]
    daemon.run("done")
    daemon.containers.Kill(pb.KillRequest(container="done", signal=9), timeout=CALL_TIMEOUT)
    daemon.containers.Wait(pb.WaitRequest(container="done"), timeout=CALL_TIMEOUT)
    cases.append(("done", grpc.StatusCode.FAILED_PRECONDITION, "Conflict",
                  "You cannot attach to a stopped container, start it first"))
    for name, code, error_class, words in cases:
        error = failure(lambda name=name: attach(name))  # type: ignore[misc]
        assert error.code() is code
        assert dict(error.trailing_metadata())["berth-error-class"] == error_class
        assert words in error.details()
