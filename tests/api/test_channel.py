"""The CLI's grpc-free channel (``engine.api.channel``) against real grpc (C-core) servers: the
berth server in-process on a temporary socket, a raiser behind ``ErrorInterceptor`` for every
error class, an echo server for metadata, trailers and limits, and the berth server on TCP with
TLS and mutual TLS."""

from __future__ import annotations

import contextlib
import json
import pathlib
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from engine.api import connection as h2
from engine.api.channel import Channel
from engine.api.server import Tls, build_server, listen
from engine.api.status import CallError, StatusCode
from engine.api.stub import Stub
from engine.api.v1 import containers_pb2 as pb
from engine.api.v1 import system_pb2 as spb
from engine.errors import ErrorClass
from tests.api.conftest import CALL_TIMEOUT, ApiDaemon, start_daemon
from tests.api.pki import Pki, make_pki
from tests.api.raiser import serve_raiser
from tests.api.test_errors import EXPECTED


def stubs(channel: Channel) -> tuple[Stub, Stub]:
    return (Stub(channel, pb.DESCRIPTOR.services_by_name["Containers"]),
            Stub(channel, spb.DESCRIPTOR.services_by_name["System"]))


def call_error(call: object) -> CallError:
    assert callable(call)
    with pytest.raises(CallError) as caught:
        result = call()
        if isinstance(result, Iterator):
            list(result)
    return caught.value


@pytest.fixture
def channel(daemon: ApiDaemon) -> Iterator[Channel]:
    with Channel(daemon.address) as opened:
        yield opened


@pytest.fixture
def frames(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int, int]]:
    """Every frame the channel sends or reads: (direction, type, flags, stream id)."""
    seen: list[tuple[str, int, int, int]] = []
    queue, receive = h2.Connection._queue, h2.Connection.receive

    def queued(self: h2.Connection, kind: int, flags: int, stream_id: int,
               payload: bytes | memoryview) -> None:
        seen.append(("out", kind, flags, stream_id))
        if kind == h2.WINDOW_UPDATE:
            seen.append(("credit", int.from_bytes(payload[:4], "big"), 0, stream_id))
        queue(self, kind, flags, stream_id, payload)

    def received(self: h2.Connection, deadline: float | None) -> None:
        self.flush(deadline)
        self._fill(9, deadline)
        header = bytes(self._input[:9])
        seen.append(("in", header[3], header[4], int.from_bytes(header[5:9], "big")))
        receive(self, deadline)

    monkeypatch.setattr(h2.Connection, "_queue", queued)
    monkeypatch.setattr(h2.Connection, "receive", received)
    return seen


# -- unary calls and errors on the berth server -------------------------------------------------

def test_unary_calls_answer_what_grpc_answers(daemon: ApiDaemon, channel: Channel) -> None:
    containers, system = stubs(channel)
    ours = system.Version(spb.VersionRequest(), timeout=CALL_TIMEOUT)
    assert ours == daemon.system.Version(spb.VersionRequest(), timeout=CALL_TIMEOUT)
    assert ours.version and ours.api_version == "v1"
    created = containers.Create(pb.CreateRequest(config=pb.ContainerConfig(
        image="busybox", cmd=["sleep", "1000"], name="web")), timeout=CALL_TIMEOUT).container
    started = containers.Start(pb.StartRequest(container="web"), timeout=CALL_TIMEOUT)
    assert started.changed and started.container.state == "running"
    inspected = containers.Inspect(pb.InspectRequest(container=created.id[:12]))
    assert inspected == daemon.containers.Inspect(pb.InspectRequest(container="web"),
                                                  timeout=CALL_TIMEOUT)
    again = containers.Start(pb.StartRequest(container="web"), timeout=CALL_TIMEOUT)
    assert again.changed is False  # NotModified is not an error on the wire
    assert channel.dials == 1  # every call on one connection


def test_the_daemons_errors_keep_their_status_details_and_class(daemon: ApiDaemon,
                                                                channel: Channel) -> None:
    containers, _ = stubs(channel)
    containers.Create(pb.CreateRequest(config=pb.ContainerConfig(
        image="busybox", cmd=["true"], name="web")), timeout=CALL_TIMEOUT)
    cases = [
        (lambda: containers.Inspect(pb.InspectRequest(container="ghost")),
         StatusCode.NOT_FOUND, "NotFound", "No such container: ghost"),
        (lambda: containers.Create(pb.CreateRequest(config=pb.ContainerConfig(
            image="busybox", cmd=["true"], name="bad name!"))),
         StatusCode.INVALID_ARGUMENT, "InvalidParameter", "Invalid container name"),
        (lambda: containers.Create(pb.CreateRequest(config=pb.ContainerConfig(
            image="busybox", cmd=["true"], name="web"))),
         StatusCode.ALREADY_EXISTS, "Conflict", 'The container name "/web" is already in use'),
        (lambda: containers.Pause(pb.ContainerRequest(container="web")),
         StatusCode.FAILED_PRECONDITION, "Conflict", "is not running"),
        (lambda: containers.Start(pb.StartRequest(container="web", checkpoint_dir="/x")),
         StatusCode.PERMISSION_DENIED, "Forbidden", ""),
        (lambda: containers.Import(pb.ImportRequest(source="/nowhere.tar")),
         StatusCode.UNAVAILABLE, "Unavailable", ""),
        (lambda: containers.Logs(pb.LogsRequest(container="ghost")),
         StatusCode.NOT_FOUND, "NotFound", "No such container: ghost"),
    ]
    for call, code, error_class, details in cases:
        error = call_error(call)
        assert error.code() is code, error.details()
        assert dict(error.trailing_metadata())["berth-error-class"] == error_class
        assert details in error.details()
        assert str(error) == f"{code.name}: {error.details()}"
    daemon.runtime.faults.add("start", RuntimeError("weird"))
    unknown = call_error(lambda: containers.Start(pb.StartRequest(container="web")))
    assert unknown.code() is StatusCode.UNKNOWN
    assert channel.dials == 1


def test_errors_come_as_trailers_only_replies(daemon: ApiDaemon, channel: Channel,
                                              frames: list[tuple[str, int, int, int]]) -> None:
    containers, system = stubs(channel)
    error = call_error(lambda: containers.Inspect(pb.InspectRequest(container="ghost")))
    assert error.code() is StatusCode.NOT_FOUND
    assert error.initial_metadata() == ()
    assert dict(error.trailing_metadata()) == {"berth-error-class": "NotFound"}
    replies = [(kind, flags) for direction, kind, flags, stream in frames
               if direction == "in" and stream == 1]
    assert replies == [(h2.HEADERS, h2.END_STREAM | h2.END_HEADERS)]  # one block: no DATA
    frames.clear()
    assert system.Version(spb.VersionRequest(), timeout=CALL_TIMEOUT).version
    replies = [kind for direction, kind, _, stream in frames if direction == "in" and stream == 3]
    assert replies == [h2.HEADERS, h2.DATA, h2.HEADERS]  # headers, message, trailers


# -- every error class, through ErrorInterceptor on a raiser ---------------------------------

@pytest.fixture(scope="module")
def raiser() -> Iterator[str]:
    with serve_raiser() as address:
        yield f"tcp://{address}"


@pytest.mark.parametrize("member", list(ErrorClass), ids=lambda member: member.value)
def test_every_error_class_arrives_with_its_code(raiser: str, member: ErrorClass) -> None:
    with Channel(raiser) as channel:
        unary = call_error(lambda: channel.unary_unary("/test.Raiser/Unary",
                                                       member.value.encode()))
        received: list[bytes] = []

        def consume() -> None:
            received.extend(channel.unary_stream("/test.Raiser/Stream", member.value.encode()))

        streamed = call_error(consume)
        assert received == [b"first"]
        for error in (unary, streamed):
            assert error.code().name == EXPECTED[member].name
            assert error.code().value == EXPECTED[member].value[0]
            assert error.details() == f"raised {member.value}"
            assert ("berth-error-class", member.value) in error.trailing_metadata()
        assert channel.dials == 1


# -- an echo server: metadata, trailers, streams, limits ------------------------------------------

def _echo_unary(request: bytes, context: grpc.ServicerContext) -> bytes:
    order = json.loads(request)
    if order.get("sleep"):
        time.sleep(order["sleep"])
    if "trailers" in order:
        context.set_trailing_metadata(tuple(
            (key, bytes.fromhex(value) if key.endswith("-bin") else value)
            for key, value in order["trailers"].items()))
    if "abort" in order:
        code = next(c for c in grpc.StatusCode if c.value[0] == order["abort"][0])
        context.abort(code, order["abort"][1])
    if "reply_size" in order:
        return b"r" * order["reply_size"]
    received = [(key, value.hex() if isinstance(value, bytes) else value)
                for key, value in context.invocation_metadata()]
    return json.dumps({"metadata": received, "timeout": context.time_remaining()}).encode()


def _echo_stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    order = json.loads(request)
    for number in range(order["count"]):
        yield number.to_bytes(4, "big") + b"s" * order["size"]


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    handler = grpc.method_handlers_generic_handler("test.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(_echo_unary),
        "Stream": grpc.unary_stream_rpc_method_handler(_echo_stream),
    })
    server = grpc.server(ThreadPoolExecutor(max_workers=4), options=[
        ("grpc.max_send_message_length", -1), ("grpc.max_metadata_size", 256 * 1024)])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"tcp://127.0.0.1:{port}"
    server.stop(None).wait()


def order(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_metadata_reaches_the_server_text_and_binary(echo: str) -> None:
    with Channel(echo) as channel:
        reply = json.loads(channel.unary_unary("/test.Echo/Unary", order(), timeout=5, metadata=[
            ("x-request-id", "r-42"), ("x-trace-bin", b"\x00\xff\x10 binary"),
            ("x-empty", "")]))
    received = dict(map(tuple, reply["metadata"]))
    assert received["x-request-id"] == "r-42"
    assert bytes.fromhex(received["x-trace-bin"]) == b"\x00\xff\x10 binary"
    assert received["x-empty"] == ""
    assert received["user-agent"].startswith("berth-channel")
    assert 0 < reply["timeout"] <= 5  # grpc-timeout arrived


@pytest.mark.parametrize("metadata", [[("X-Upper", "v")], [("grpc-timeout", "1S")],
                                      [(":path", "/x")], [("x-newline", "a\nb")],
                                      [("x-unicode", "é")]])
def test_malformed_metadata_is_refused_before_sending(echo: str,
                                                      metadata: list[tuple[str, str]]) -> None:
    with Channel(echo) as channel, pytest.raises(ValueError):
        channel.unary_unary("/test.Echo/Unary", order(), metadata=metadata)


def test_status_details_are_percent_decoded_and_trailers_kept(echo: str) -> None:
    message = "100% sûr: ça a échoué\nligne 2 \x01"
    trailers = {"x-big": "t" * 40_000, "x-small": "s", "x-blob-bin": "000102"}
    with Channel(echo) as channel:
        error = call_error(lambda: channel.unary_unary("/test.Echo/Unary", order(
            abort=[9, message], trailers=trailers), timeout=5))
        assert error.code() is StatusCode.FAILED_PRECONDITION
        assert error.details() == message
        received = dict(error.trailing_metadata())
        assert received["x-big"] == "t" * 40_000  # more than a frame: CONTINUATION frames
        assert received["x-small"] == "s"
        assert received["x-blob-bin"] == b"\x00\x01\x02"
        assert json.loads(channel.unary_unary("/test.Echo/Unary", order(), timeout=5))


def test_a_long_stream_and_large_replies_flow_with_a_small_window(
        echo: str, frames: list[tuple[str, int, int, int]]) -> None:
    """A 65535-octet window: the server can send more only because the channel gives back
    what it read, on the stream and on the connection."""
    with Channel(echo, receive_window=65_535) as channel:
        count, size = 3000, 100
        replies = list(channel.unary_stream("/test.Echo/Stream", order(count=count, size=size),
                                            timeout=20))
        assert [int.from_bytes(reply[:4], "big") for reply in replies] == list(range(count))
        assert all(len(reply) == 4 + size for reply in replies)
        big = channel.unary_unary("/test.Echo/Unary", order(reply_size=1_000_000), timeout=20)
        assert big == b"r" * 1_000_000
    credits = [(amount, stream) for direction, amount, _, stream in frames
               if direction == "credit"]
    assert sum(amount for amount, stream in credits if stream == 0) > 1_000_000
    assert any(stream == 1 for _, stream in credits) and any(stream == 3 for _, stream in credits)
    assert all(amount <= 65_535 for amount, _ in credits)


def test_the_receive_limit_ends_one_call_not_the_connection(echo: str) -> None:
    with Channel(echo, max_receive_bytes=10_000) as channel:
        error = call_error(lambda: channel.unary_unary("/test.Echo/Unary",
                                                       order(reply_size=10_001), timeout=5))
        assert error.code() is StatusCode.RESOURCE_EXHAUSTED
        assert "10001 vs. 10000" in error.details()
        assert channel.unary_unary("/test.Echo/Unary", order(reply_size=10_000),
                                   timeout=5) == b"r" * 10_000
        assert channel.dials == 1


def test_a_deadline_ends_a_call_on_time_and_the_connection_serves_on(echo: str) -> None:
    with Channel(echo) as channel:
        started = time.monotonic()
        error = call_error(lambda: channel.unary_unary("/test.Echo/Unary", order(sleep=2),
                                                       timeout=0.3))
        elapsed = time.monotonic() - started
        assert error.code() is StatusCode.DEADLINE_EXCEEDED
        assert 0.25 < elapsed < 1.5
        assert json.loads(channel.unary_unary("/test.Echo/Unary", order(), timeout=5))
        assert channel.dials == 1


# -- flow control, limits and deadlines on the berth server ---------------------------------------

def test_large_replies_and_many_messages_from_the_daemon(daemon: ApiDaemon) -> None:
    env = ["PAD=" + "p" * 30_000]
    for number in range(6):
        daemon.create(f"c{number}", env=env)
    record = daemon.create("talker")
    log = pathlib.Path(daemon.engine.saga.host.log_path(record.id))
    log.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"log": f"line {number} " + "x" * 60 + "\n", "stream": "stdout",
                         "time": "2026-01-01T00:00:00Z"}) for number in range(4000)]
    log.write_text("\n".join(lines) + "\n")
    with Channel(daemon.address, receive_window=65_535) as channel:
        containers, _ = stubs(channel)
        listed = containers.List(pb.ListRequest(all=True), timeout=CALL_TIMEOUT)
        assert listed.ByteSize() > 180_000
        assert listed == daemon.containers.List(pb.ListRequest(all=True), timeout=CALL_TIMEOUT)
        entries = [entry for batch in containers.Logs(pb.LogsRequest(container="talker"),
                                                      timeout=CALL_TIMEOUT)
                   for entry in batch.entries]
        assert [entry.line for entry in entries] == [
            f"line {number} " + "x" * 60 + "\n" for number in range(4000)]
        assert channel.dials == 1


def test_requests_larger_than_the_servers_window_wait_for_it(daemon: ApiDaemon) -> None:
    """The server announces 4 MiB windows: 3 MiB twice must wait for its WINDOW_UPDATEs
    (without flow control the second request would overrun the connection window)."""
    with Channel(daemon.address) as channel:
        containers, _ = stubs(channel)
        for number in range(3):
            config = pb.ContainerConfig(image="busybox", cmd=["true"], name=f"big{number}",
                                        env=["BIG=" + "b" * (3 * 1024 * 1024)])
            reply = containers.Create(pb.CreateRequest(config=config), timeout=CALL_TIMEOUT)
            assert len(reply.container.config.env[0]) == 3 * 1024 * 1024 + 4
        assert channel.dials == 1


def test_an_over_large_request_is_refused_and_the_connection_serves_on(daemon: ApiDaemon
                                                                       ) -> None:
    huge = pb.CreateRequest(config=pb.ContainerConfig(
        image="busybox", cmd=["true"], name="huge", env=["BIG=" + "x" * (5 * 1024 * 1024)]))
    with Channel(daemon.address, max_send_bytes=None) as unlimited:
        containers, system = stubs(unlimited)
        assert system.Version(spb.VersionRequest(), timeout=CALL_TIMEOUT).version
        error = call_error(lambda: containers.Create(huge, timeout=CALL_TIMEOUT))
        assert error.code() is StatusCode.RESOURCE_EXHAUSTED, error.details()
        assert system.Version(spb.VersionRequest(), timeout=CALL_TIMEOUT).version
        assert unlimited.dials == 1  # the same connection
    with Channel(daemon.address, max_send_bytes=4 * 1024 * 1024) as limited:
        containers, _ = stubs(limited)
        error = call_error(lambda: containers.Create(huge, timeout=CALL_TIMEOUT))
        assert error.code() is StatusCode.RESOURCE_EXHAUSTED
        assert error.details().startswith("Sent message larger than max")
        assert limited.dials == 0  # refused here, nothing sent
    assert [c.name for c in daemon.containers.List(pb.ListRequest(all=True),
                                                   timeout=CALL_TIMEOUT).containers] == []


def test_deadlines_on_the_daemon(daemon: ApiDaemon, channel: Channel) -> None:
    daemon.run("web")
    containers, system = stubs(channel)
    started = time.monotonic()
    error = call_error(lambda: containers.Wait(pb.WaitRequest(container="web"), timeout=0.3))
    assert error.code() is StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2
    events = system.Events(spb.EventsRequest(since_seq=0, docker_only=True), timeout=0.5)
    received = []
    with pytest.raises(CallError) as caught:
        for event in events:
            received.append(event.event)
    assert caught.value.code() is StatusCode.DEADLINE_EXCEEDED
    assert received[:2] == ["create", "start"]  # the replay came before the deadline
    assert system.Version(spb.VersionRequest(), timeout=CALL_TIMEOUT).version
    assert channel.dials == 1
    # The server's Wait outlives its cancelled call until the container stops.
    containers.Stop(pb.StopRequest(container="web", timeout=0), timeout=CALL_TIMEOUT)


def test_a_stream_closed_early_is_cancelled(daemon: ApiDaemon, channel: Channel,
                                            frames: list[tuple[str, int, int, int]]) -> None:
    daemon.run("web")
    _, system = stubs(channel)
    events = system.Events(spb.EventsRequest(since_seq=0, docker_only=True))
    assert next(events).event == "create"
    events.close()
    assert ("out", h2.RST_STREAM, 0, 1) in frames
    assert system.Version(spb.VersionRequest(), timeout=CALL_TIMEOUT).version


def test_a_daemon_restart_is_survived_by_reconnecting(daemon_root: pathlib.Path) -> None:
    first = start_daemon(daemon_root)
    channel = Channel(first.address)
    _, system = stubs(channel)
    try:
        assert system.Version(spb.VersionRequest(), timeout=CALL_TIMEOUT).version
    finally:
        first.stop()  # GOAWAY, then the connection closes
    error = call_error(lambda: system.Version(spb.VersionRequest(), timeout=CALL_TIMEOUT))
    assert error.code() is StatusCode.UNAVAILABLE
    second = start_daemon(daemon_root)
    try:
        assert system.Version(spb.VersionRequest(), timeout=CALL_TIMEOUT).version
        assert channel.dials == 2
    finally:
        channel.close()
        second.stop()


def test_no_daemon_is_unavailable_with_the_reason(short_dir: pathlib.Path) -> None:
    missing = call_error(lambda: Channel(f"unix://{short_dir}/none.sock").unary_unary(
        "/berth.v1.System/Version", b"", timeout=CALL_TIMEOUT))
    assert missing.code() is StatusCode.UNAVAILABLE
    assert missing.details() == (f"failed to connect to unix://{short_dir}/none.sock: "
                                 "No such file or directory")
    dead = short_dir / "dead.sock"
    with socket.socket(socket.AF_UNIX) as bound:
        bound.bind(str(dead))  # a socket file nobody listens on
    refused = call_error(lambda: Channel(f"unix://{dead}").unary_unary(
        "/berth.v1.System/Version", b""))
    assert refused.code() is StatusCode.UNAVAILABLE
    assert "Connection refused" in refused.details()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = call_error(lambda: Channel(f"tcp://127.0.0.1:{port}").unary_unary(
        "/berth.v1.System/Version", b""))
    assert closed.code() is StatusCode.UNAVAILABLE and "failed to connect" in closed.details()


def test_a_server_that_never_answers_still_meets_the_deadline(short_dir: pathlib.Path) -> None:
    path = str(short_dir / "mute.sock")
    mute = socket.socket(socket.AF_UNIX)
    mute.bind(path)
    mute.listen()
    try:
        started = time.monotonic()
        error = call_error(lambda: Channel(f"unix://{path}").unary_unary(
            "/berth.v1.System/Version", b"", timeout=0.3))
        assert error.code() is StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 2
    finally:
        mute.close()


# -- TLS and mutual TLS ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("channel-pki"))


@pytest.fixture(params=["tls", "mutual"])
def tls_daemon(request: pytest.FixtureRequest, daemon: ApiDaemon, certificates: Pki
               ) -> Iterator[tuple[str, str]]:
    """The daemon's engine served on TCP with TLS, or mutual TLS: (mode, address)."""
    with serve_tls(daemon, certificates, mutual=request.param == "mutual") as address:
        yield request.param, address


@contextlib.contextmanager
def serve_tls(daemon: ApiDaemon, pki: Pki, *, mutual: bool) -> Iterator[str]:
    server = build_server(daemon.engine, data_root=str(daemon.root), backend="fake",
                          reload=lambda: daemon.engine.config.current())
    address = listen(server, "tcp://127.0.0.1:0",
                     tls=Tls(pki.server_cert, pki.server_key, pki.ca if mutual else None))
    server.start()
    try:
        yield address
    finally:
        server.stop(None).wait()


def version_over(address: str, **tls: str) -> spb.VersionResponse:
    with Channel(address, **tls) as channel:  # type: ignore[arg-type]
        return stubs(channel)[1].Version(spb.VersionRequest(), timeout=CALL_TIMEOUT)


def test_tls_serves_a_client_that_trusts_the_server(tls_daemon: tuple[str, str],
                                                    certificates: Pki) -> None:
    mode, address = tls_daemon
    pki = certificates
    assert version_over(address, tls_ca=pki.ca, tls_cert=pki.client_cert,
                        tls_key=pki.client_key).version
    if mode == "tls":  # no client certificate needed
        assert version_over(address, tls_ca=pki.ca).version
    untrusted = call_error(lambda: version_over(address, tls_ca=pki.rogue_cert.replace(
        "rogue.pem", "rogue-ca.pem")))
    assert untrusted.code() is StatusCode.UNAVAILABLE
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.details()
    plaintext = call_error(lambda: version_over(address))
    assert plaintext.code() is StatusCode.UNAVAILABLE
    assert plaintext.details().startswith(f"failed to connect to {address}")


@pytest.mark.parametrize("client", ["no certificate", "another CA's certificate"])
def test_mutual_tls_refuses_a_client_without_a_valid_certificate(
        daemon: ApiDaemon, certificates: Pki, client: str) -> None:
    pki = certificates
    if client == "no certificate":
        tls = {"tls_ca": pki.ca}
    else:
        tls = {"tls_ca": pki.ca, "tls_cert": pki.rogue_cert, "tls_key": pki.rogue_key}
    with serve_tls(daemon, pki, mutual=True) as address:
        error = call_error(lambda: version_over(address, **tls))
        assert error.code() is StatusCode.UNAVAILABLE
        assert error.details().startswith(f"failed to connect to {address}")
        assert version_over(address, tls_ca=pki.ca, tls_cert=pki.client_cert,
                            tls_key=pki.client_key).version  # the control: a valid one
