"""The channel against a scripted HTTP/2 peer, for what a grpc server seldom does on its own:
Huffman-coded, padded and continued header blocks, a tiny flow-control window, PING, GOAWAY
and REFUSED_STREAM (the call goes again), resets, HTTP errors, an undecodable header block.

The peer is written with the ``hpack`` package and its own frame code, not the channel's."""

from __future__ import annotations

import gzip
import pathlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator

import hpack
import pytest

from engine.api.channel import Channel
from engine.api.status import CallError, StatusCode

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    0, 1, 3, 4, 6, 7, 8, 9)
END_STREAM, END_HEADERS, PADDED, PRIORITY = 0x1, 0x4, 0x8, 0x20
OK_HEADERS = [(":status", "200"), ("content-type", "application/grpc")]


class Peer:
    """One accepted connection, driven by a test's script."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 20
        self.received: list[tuple[int, int, int, bytes]] = []

    def frame(self) -> tuple[int, int, int, bytes]:
        header = self._exactly(9)
        length = int.from_bytes(header[:3], "big")
        frame = (header[3], header[4], int.from_bytes(header[5:], "big") & 0x7FFFFFFF,
                 self._exactly(length))
        self.received.append(frame)
        return frame

    def until(self, kind: int) -> tuple[int, int, int, bytes]:
        """The next frame of type ``kind``, skipping any other."""
        while True:
            frame = self.frame()
            if frame[0] == kind:
                return frame

    def _exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.connection.recv(size - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def send(self, kind: int, flags: int, stream: int, payload: bytes = b"") -> None:
        self.connection.sendall(len(payload).to_bytes(3, "big") + bytes((kind, flags))
                                + stream.to_bytes(4, "big") + payload)

    def settings(self, **values: int) -> None:
        ids = {"initial_window_size": 4, "max_frame_size": 5}
        self.send(SETTINGS, 0, 0, b"".join(struct.pack(">HI", ids[name], value)
                                           for name, value in values.items()))

    def headers(self, stream: int, headers: list[tuple[str, str]], *, end_stream: bool = False,
                huffman: bool = True) -> None:
        self.send(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), stream,
                  self.encoder.encode(headers, huffman=huffman))

    def message(self, stream: int, data: bytes, flags: int = 0) -> None:
        self.send(DATA, flags, stream, b"\x00" + len(data).to_bytes(4, "big") + data)

    def trailers(self, stream: int, status: int = 0, message: str = "") -> None:
        self.headers(stream, [("grpc-status", str(status)), ("grpc-message", message)],
                     end_stream=True)

    def request(self) -> tuple[int, list[tuple[str, str]], bytes]:
        """Read frames (acknowledging SETTINGS) up to a whole request: its stream, headers,
        and body."""
        block, body, stream = b"", b"", 0
        headers: list[tuple[str, str]] = []
        while True:
            kind, flags, stream_id, payload = self.frame()
            if kind == SETTINGS and not flags & 1:
                self.send(SETTINGS, 1, 0)
            elif kind in (HEADERS, CONTINUATION):
                stream, block = stream_id, block + payload
                if flags & END_HEADERS:
                    headers = [(bytes(n).decode(), bytes(v).decode())
                               for n, v in self.decoder.decode(block, raw=True)]
            elif kind == DATA:
                body += payload
                if flags & END_STREAM:
                    return stream, headers, body


@pytest.fixture
def peer_address(tmp_path: pathlib.Path) -> Iterator[Callable[..., str]]:
    """``serve(script, ...)``: a unix socket whose n-th connection runs the n-th script; the
    address. A script's assertion failure is raised again by the fixture."""
    listeners: list[socket.socket] = []
    failures: list[BaseException] = []
    threads: list[threading.Thread] = []

    def serve(*scripts: Callable[[Peer], None]) -> str:
        path = str(tmp_path / f"peer{len(listeners)}.sock")
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(path)
        listener.listen()
        listeners.append(listener)

        def run() -> None:
            for script in scripts:
                connection, _ = listener.accept()
                peer = Peer(connection)
                try:
                    assert peer._exactly(len(PREFACE)) == PREFACE
                    script(peer)
                except (EOFError, BrokenPipeError, ConnectionResetError):
                    pass  # the client hung up (on an error it was right to end the call on)
                except BaseException as error:  # reported by the fixture
                    failures.append(error)
                finally:
                    connection.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        return f"unix://{path}"

    yield serve
    for thread in threads:
        thread.join(5)
    for listener in listeners:
        listener.close()
    if failures:
        raise failures[0]


def test_the_first_frames_announce_settings_and_a_large_window(peer_address: Callable[..., str]
                                                               ) -> None:
    def script(peer: Peer) -> None:
        kind, flags, _, payload = peer.frame()
        assert (kind, flags) == (SETTINGS, 0)
        announced = dict(struct.iter_unpack(">HI", payload))
        assert announced == {2: 0, 4: 1 << 20}  # no push; each stream's window
        kind, _, stream, payload = peer.frame()
        assert (kind, stream, int.from_bytes(payload, "big")) == (
            WINDOW_UPDATE, 0, (1 << 20) - 65_535)
        peer.settings(max_frame_size=16_384)
        stream, headers, body = peer.request()
        first_block = next(payload for kind, _, _, payload in peer.received if kind == HEADERS)
        assert first_block[0] == 0x20  # a table size update to 0 opens the first block
        names = [name for name, _ in headers]
        assert names[:4] == [":method", ":scheme", ":path", ":authority"]
        assert dict(headers)[":path"] == "/pkg.Service/Method"
        assert dict(headers)["te"] == "trailers"
        assert body == b"\x00\x00\x00\x00\x03abc"
        peer.headers(1, OK_HEADERS)
        peer.message(1, b"reply")
        peer.trailers(1)
        assert peer.until(SETTINGS)[:2] == (SETTINGS, 1)  # our SETTINGS acknowledged

    with Channel(peer_address(script), receive_window=1 << 20) as channel:
        assert channel.unary_unary("/pkg.Service/Method", b"abc", timeout=5) == b"reply"


def test_huffman_padded_prioritized_and_continued_blocks_are_read(
        peer_address: Callable[..., str]) -> None:
    def script(peer: Peer) -> None:
        peer.settings()
        peer.request()
        peer.send(PING, 0, 0, b"12345678")
        _, flags, _, payload = peer.until(PING)
        assert (flags, payload) == (1, b"12345678")
        block = peer.encoder.encode([*OK_HEADERS, ("x-note", "note " * 600)], huffman=True)
        assert len(block) < len("note " * 600)  # Huffman-coded indeed
        padding = 7
        first = bytes((padding,)) + b"\x00\x00\x00\x00\x10" + block[:100] + b"\x00" * padding
        peer.send(HEADERS, PADDED | PRIORITY, 1, first)
        peer.send(CONTINUATION, 0, 1, block[100:1000])
        peer.send(CONTINUATION, END_HEADERS, 1, block[1000:])
        message = b"\x00" + (5).to_bytes(4, "big") + b"hello"
        peer.send(DATA, PADDED, 1, bytes((3,)) + message[:4] + b"\x00" * 3)
        peer.send(DATA, 0, 1, message[4:])
        peer.trailers(1, 3, "bad %C3%A9 input")

    with Channel(peer_address(script)) as channel, pytest.raises(CallError) as caught:
        channel.unary_unary("/pkg.Service/Method", b"", timeout=5)
    error = caught.value
    assert error.code() is StatusCode.INVALID_ARGUMENT
    assert error.details() == "bad é input"
    assert dict(error.initial_metadata())["x-note"] == "note " * 600


def test_a_request_waits_for_a_tiny_window_and_long_headers_continue(
        peer_address: Callable[..., str]) -> None:
    body = bytes(range(256)) * 4

    def script(peer: Peer) -> None:
        peer.settings(initial_window_size=10)
        stream, _, _ = peer.request()  # the first call reads these settings
        peer.headers(stream, OK_HEADERS)
        peer.message(stream, b"warm")
        peer.trailers(stream)
        frames: list[tuple[int, int, int]] = []
        received = b""
        block_frames = []
        window = 10
        while True:
            kind, flags, stream, payload = peer.frame()
            if kind == SETTINGS and not flags & 1:
                peer.send(SETTINGS, 1, 0)
            elif kind in (HEADERS, CONTINUATION):
                block_frames.append((kind, flags, len(payload)))
            elif kind == DATA:
                assert len(payload) <= window, "more than the window allows"
                window -= len(payload)
                received += payload
                frames.append((kind, flags, len(payload)))
                if flags & END_STREAM:
                    break
                if window == 0:
                    peer.send(WINDOW_UPDATE, 0, stream, (10).to_bytes(4, "big"))
                    window = 10
        assert [kind for kind, _, _ in block_frames] == [HEADERS, CONTINUATION]
        assert all(size <= 16_384 for _, _, size in block_frames)
        assert received == b"\x00" + len(body).to_bytes(4, "big") + body
        assert len(frames) == -(-len(received) // 10)
        peer.headers(stream, OK_HEADERS)
        peer.message(stream, b"done")
        peer.trailers(stream)

    with Channel(peer_address(script)) as channel:
        assert channel.unary_unary("/pkg.Service/Method", b"", timeout=10) == b"warm"
        assert channel.unary_unary("/pkg.Service/Method", body, timeout=10,
                                   metadata=[("x-long", "l" * 20_000)]) == b"done"


def tiny_window_then_data(peer: Peer) -> int:
    """Announce a 10-byte window, answer the warm-up call (which reads it), and read up to
    the next call's first DATA frame: its stream."""
    peer.settings(initial_window_size=10)
    echo(peer)
    while (frame := peer.frame())[0] != DATA:
        pass
    return frame[2]


def warm_then_fail(address: str) -> CallError:
    """A first call (it reads the peer's tiny window), then a 1000-byte one, which must fail:
    its error."""
    with Channel(address) as channel:
        assert channel.unary_unary("/pkg.Service/Method", b"x", timeout=5) == b"x!"
        with pytest.raises(CallError) as caught:
            channel.unary_unary("/pkg.Service/Method", b"y" * 1000, timeout=5)
    return caught.value


def test_a_reply_before_the_whole_request_stops_the_sending(peer_address: Callable[..., str]
                                                            ) -> None:
    reset: list[tuple[int, bytes]] = []
    done = threading.Event()

    def script(peer: Peer) -> None:
        stream = tiny_window_then_data(peer)
        peer.headers(stream, [*OK_HEADERS, ("grpc-status", "8"), ("grpc-message", "too big")],
                     end_stream=True)
        _, _, stream_id, payload = peer.until(RST_STREAM)
        reset.append((stream_id, payload))
        done.set()

    failure = warm_then_fail(peer_address(script))
    assert failure.code() is StatusCode.RESOURCE_EXHAUSTED
    assert done.wait(5)
    assert reset == [(3, (0x8).to_bytes(4, "big"))]  # CANCEL: the rest is not coming


def test_a_stream_refused_by_goaway_goes_again_on_a_new_connection(
        peer_address: Callable[..., str]) -> None:
    def refuse(peer: Peer) -> None:
        peer.settings()
        peer.request()
        peer.send(GOAWAY, 0, 0, (0).to_bytes(4, "big") + (0).to_bytes(4, "big"))

    with Channel(peer_address(refuse, echo)) as channel:
        assert channel.unary_unary("/pkg.Service/Method", b"again", timeout=5) == b"again!"
        assert channel.dials == 2


def test_a_refused_stream_goes_again_on_the_same_connection(peer_address: Callable[..., str]
                                                            ) -> None:
    def refuse_once(peer: Peer) -> None:
        peer.settings()
        stream, _, _ = peer.request()
        peer.send(RST_STREAM, 0, stream, (0x7).to_bytes(4, "big"))  # REFUSED_STREAM
        echo(peer)

    with Channel(peer_address(refuse_once)) as channel:
        assert channel.unary_unary("/pkg.Service/Method", b"again", timeout=5) == b"again!"
        assert channel.dials == 1


def echo(peer: Peer) -> None:
    """Answer the next request with its body and a "!"."""
    peer.settings()
    stream, _, body = peer.request()
    peer.headers(stream, OK_HEADERS)
    peer.message(stream, body[5:] + b"!")
    peer.trailers(stream)


def test_refused_twice_is_unavailable(peer_address: Callable[..., str]) -> None:
    refused: list[int] = []

    def refuse(peer: Peer) -> None:
        peer.settings()
        for _ in range(2):
            stream, _, _ = peer.request()
            refused.append(stream)
            peer.send(RST_STREAM, 0, stream, (0x7).to_bytes(4, "big"))
        peer.until(GOAWAY)  # the channel closing

    with Channel(peer_address(refuse)) as channel:
        with pytest.raises(CallError) as caught:
            channel.unary_unary("/pkg.Service/Method", b"", timeout=5)
        assert caught.value.code() is StatusCode.UNAVAILABLE
        assert "refused" in caught.value.details()
    assert refused == [1, 3]


@pytest.mark.parametrize(("reply", "code"), [
    ("http 503", StatusCode.UNAVAILABLE),
    ("http 404", StatusCode.UNIMPLEMENTED),
    ("http 401", StatusCode.UNAUTHENTICATED),
    ("html", StatusCode.UNKNOWN),
    ("reset cancel", StatusCode.CANCELLED),
    ("reset calm", StatusCode.RESOURCE_EXHAUSTED),
    ("no trailers", StatusCode.INTERNAL),
    ("cut message", StatusCode.INTERNAL),
    ("status 42", StatusCode.UNKNOWN),
    ("two replies", StatusCode.INTERNAL),
])
def test_what_the_peer_answers_maps_to_grpc_codes(peer_address: Callable[..., str], reply: str,
                                                  code: StatusCode) -> None:
    def script(peer: Peer) -> None:
        peer.settings()
        stream, _, _ = peer.request()
        if reply.startswith("http"):
            peer.headers(stream, [(":status", reply.split()[1])], end_stream=True)
        elif reply == "html":
            peer.headers(stream, [(":status", "200"), ("content-type", "text/html")])
            peer.send(DATA, END_STREAM, stream, b"<html>")
        elif reply.startswith("reset"):
            peer.headers(stream, OK_HEADERS)
            peer.send(RST_STREAM, 0, stream, (0x8 if reply == "reset cancel" else 0xB)
                      .to_bytes(4, "big"))
        elif reply == "no trailers":
            peer.headers(stream, OK_HEADERS)
            peer.message(stream, b"x", END_STREAM)
        elif reply == "cut message":
            peer.headers(stream, OK_HEADERS)
            peer.send(DATA, 0, stream, b"\x00\x00\x00\x00\x09abc")
            peer.trailers(stream)
        elif reply == "status 42":
            peer.headers(stream, [*OK_HEADERS, ("grpc-status", "42")], end_stream=True)
        else:
            peer.headers(stream, OK_HEADERS)
            peer.message(stream, b"one")
            peer.message(stream, b"two")
            peer.trailers(stream)
        peer.frame()

    with Channel(peer_address(script)) as channel, pytest.raises(CallError) as caught:
        channel.unary_unary("/pkg.Service/Method", b"", timeout=5)
    assert caught.value.code() is code, caught.value.details()


def test_an_undecodable_header_block_ends_the_connection(peer_address: Callable[..., str]
                                                         ) -> None:
    goaway: list[bytes] = []
    answered = threading.Event()

    def script(peer: Peer) -> None:
        peer.settings()
        stream, _, _ = peer.request()
        peer.send(HEADERS, END_HEADERS, stream, b"\x80")  # index 0 is no field
        try:
            goaway.append(peer.until(GOAWAY)[3])
        finally:
            answered.set()

    with Channel(peer_address(script)) as channel, pytest.raises(CallError) as caught:
        channel.unary_unary("/pkg.Service/Method", b"", timeout=5)
    assert caught.value.code() is StatusCode.INTERNAL
    assert "header block" in caught.value.details()
    assert answered.wait(5)
    assert int.from_bytes(goaway[0][4:8], "big") == 0x9  # COMPRESSION_ERROR


def test_a_call_past_its_deadline_opens_no_stream(peer_address: Callable[..., str]) -> None:
    """A reset for a stream whose HEADERS were never sent is a connection error (RFC 7540
    5.1): a call whose deadline is spent fails before it opens one, and the connection
    stays good for the next call."""
    def script(peer: Peer) -> None:
        stream, _headers, body = peer.request()
        assert stream == 1 and body == b"\x00\x00\x00\x00\x02ok"
        assert not any(kind == RST_STREAM for kind, *_ in peer.received)
        peer.headers(1, OK_HEADERS)
        peer.message(1, b"fine")
        peer.trailers(1)

    with Channel(peer_address(script)) as channel:
        with pytest.raises(CallError) as refused:
            channel.unary_unary("/pkg.Service/Method", b"late", timeout=0)
        assert refused.value.code() is StatusCode.DEADLINE_EXCEEDED
        assert channel.unary_unary("/pkg.Service/Method", b"ok", timeout=5) == b"fine"
        assert channel.dials == 1


@pytest.mark.parametrize(("payload", "code"), [
    (b"\x1f\x8b this is not gzip", StatusCode.INTERNAL),
    (gzip.compress(b"\x00" * (5 << 20)), StatusCode.RESOURCE_EXHAUSTED),
])
def test_a_bad_or_huge_compressed_message_is_a_call_error(
        peer_address: Callable[..., str], payload: bytes, code: StatusCode) -> None:
    """Inflated within the message limit (a small gzip body can hold gigabytes)."""
    def script(peer: Peer) -> None:
        peer.request()
        peer.headers(1, [*OK_HEADERS, ("grpc-encoding", "gzip")])
        peer.send(DATA, 0, 1, b"\x01" + len(payload).to_bytes(4, "big") + payload)  # compressed
        peer.trailers(1)

    with Channel(peer_address(script), max_receive_bytes=4 << 20) as channel, \
            pytest.raises(CallError) as failed:
        channel.unary_unary("/pkg.Service/Method", b"", timeout=5)
    assert failed.value.code() is code


@pytest.mark.parametrize(("increment", "error_code"), [(0, 0x1), (0x7FFF_FFFF, 0x3)])
def test_a_bad_stream_window_update_resets_that_stream_only(
        peer_address: Callable[..., str], increment: int, error_code: int) -> None:
    """RFC 7540 6.9: a zero increment (PROTOCOL_ERROR) or one past 2^31-1 (FLOW_CONTROL_ERROR)
    on a stream is an error of that stream: it is reset, the connection carries on."""
    reset: list[tuple[int, bytes]] = []
    reset_seen = threading.Event()

    def script(peer: Peer) -> None:
        stream = tiny_window_then_data(peer)
        # Twice: whatever the channel sends in between, the second one passes 2^31-1.
        for _ in range(1 if increment == 0 else 2):
            peer.send(WINDOW_UPDATE, 0, stream, increment.to_bytes(4, "big"))
        _, _, stream_id, payload = peer.until(RST_STREAM)
        reset.append((stream_id, payload))
        reset_seen.set()
        echo(peer)

    with Channel(peer_address(script)) as channel:
        assert channel.unary_unary("/pkg.Service/Method", b"x", timeout=5) == b"x!"
        with pytest.raises(CallError) as caught:
            channel.unary_unary("/pkg.Service/Method", b"y" * 1000, timeout=5)
        assert reset_seen.wait(2)  # sent at once, not with the next call
        assert reset == [(3, error_code.to_bytes(4, "big"))]
        assert channel.unary_unary("/pkg.Service/Method", b"z", timeout=5) == b"z!"
        assert channel.dials == 1
    assert caught.value.code() is StatusCode.INTERNAL
    assert caught.value.details().startswith("HTTP/2 protocol error on the stream: a ")


def test_settings_that_overflow_a_stream_window_end_the_connection(
        peer_address: Callable[..., str]) -> None:
    goaway: list[bytes] = []
    answered = threading.Event()

    def script(peer: Peer) -> None:
        stream = tiny_window_then_data(peer)
        peer.send(WINDOW_UPDATE, 0, stream, (0x7FFF_FFF0).to_bytes(4, "big"))
        peer.settings(initial_window_size=0x7FFF_FFFF)  # + 2^31-11 on that stream: too far
        try:
            goaway.append(peer.until(GOAWAY)[3])
        finally:
            answered.set()

    failure = warm_then_fail(peer_address(script))
    assert failure.code() is StatusCode.INTERNAL
    assert "window overflow" in failure.details()
    assert answered.wait(5)
    assert int.from_bytes(goaway[0][4:8], "big") == 0x3  # FLOW_CONTROL_ERROR
