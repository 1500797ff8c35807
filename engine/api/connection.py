"""One HTTP/2 connection (RFC 7540), client side, blocking, used by one thread at a time.

The client preface and this side's SETTINGS leave with the first frames sent. The peer's
SETTINGS are applied (MAX_FRAME_SIZE, INITIAL_WINDOW_SIZE, whose change moves every open
stream's window) and acknowledged, PINGs are answered, a GOAWAY is honoured: no new stream, and
the streams above its last id are marked refused (never processed, so safe to send again).

Flow control works both ways. DATA waits for the peer's connection and stream windows, reading
frames (WINDOW_UPDATE among them) while it waits, and stops when the peer ends or resets the
stream. This side announces ``receive_window`` for each stream and for the connection, and gives
back what it received once half of a window is used, so long streams never stall.

Frames are read into the connection's own buffer and taken out whole, so a timeout in the middle
of one loses nothing and the connection stays usable. A broken connection raises LinkError; so
does a protocol violation by the peer, after a GOAWAY that names it.
"""

from __future__ import annotations

import contextlib
import struct
import time
from collections.abc import Iterable
from typing import NoReturn, Protocol

from engine.api.header_codec import Header, HeaderBlockError, HeaderDecoder, encode_block

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, \
    MAX_HEADER_LIST_SIZE = range(1, 7)

NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = 0x6, 0x7, 0x8, 0x9

DEFAULT_WINDOW = 65_535
DEFAULT_FRAME_SIZE = 16_384  # this side never announces more: frames it reads are that small
MAX_WINDOW = 2**31 - 1
MAX_STREAM_ID = 2**31 - 1
LARGEST_FRAME_SIZE = 2**24 - 1
QUIET_FLUSH_SECONDS = 1.0

_FRAME_HEADER = struct.Struct(">HBBBI")  # 24-bit length as 16 + 8 bits, type, flags, stream
_SETTING = struct.Struct(">HI")
_WORD = struct.Struct(">I")


class Transport(Protocol):
    """What the connection needs of a socket (a plain or an ``ssl`` one)."""

    def sendall(self, data: bytes | bytearray, /) -> None: ...

    def recv(self, size: int, /) -> bytes: ...

    def settimeout(self, timeout: float | None, /) -> None: ...

    def close(self) -> None: ...


class LinkError(Exception):
    """The connection failed or ended: no frame can be read or written on it any more.

    ``established``: the peer's SETTINGS had arrived (it is an HTTP/2 server that answered);
    ``protocol``: the peer broke the protocol, or this side could not decode what it sent."""

    def __init__(self, reason: str, *, established: bool, protocol: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.established = established
        self.protocol = protocol


class Stream:
    """One request's stream: what arrived on it, and how much this side may still send."""

    __slots__ = ("data", "ended", "header_blocks", "peer_error", "reset_code", "send_window",
                 "sent_end", "stream_id", "unacknowledged")

    def __init__(self, stream_id: int, send_window: int) -> None:
        self.stream_id = stream_id
        self.send_window = send_window
        self.header_blocks: list[list[Header]] = []
        self.data = bytearray()
        self.ended = False  # END_STREAM received
        self.sent_end = False  # END_STREAM sent
        self.reset_code: int | None = None  # RST_STREAM received (REFUSED_STREAM after GOAWAY)
        self.peer_error: str | None = None  # what the peer broke on it (this side reset it)
        self.unacknowledged = 0  # DATA octets received and not yet given back

    @property
    def finished(self) -> bool:
        return self.ended or self.reset_code is not None


class Connection:
    """An HTTP/2 client connection over ``transport`` (already connected, TLS done)."""

    def __init__(self, transport: Transport, *, receive_window: int = DEFAULT_WINDOW) -> None:
        if not DEFAULT_WINDOW <= receive_window <= MAX_WINDOW:
            raise ValueError(f"receive window {receive_window} outside 65535..2^31-1")
        self._transport = transport
        self._receive_window = receive_window
        self._decoder = HeaderDecoder()
        self._streams: dict[int, Stream] = {}
        self._next_stream_id = 1
        self._send_window = DEFAULT_WINDOW
        self._peer_initial_window = DEFAULT_WINDOW
        self._peer_max_frame = DEFAULT_FRAME_SIZE
        self._unacknowledged = 0
        self._input = bytearray()
        self._partial: tuple[int, list[bytes], bool] | None = None  # a header block in pieces
        self._first_block = True
        self._unwritable = False
        self.established = False
        self.goaway: tuple[int, int, bytes] | None = None  # last stream id, error code, debug
        self.failure: LinkError | None = None
        settings = _SETTING.pack(ENABLE_PUSH, 0) + _SETTING.pack(INITIAL_WINDOW_SIZE,
                                                                   receive_window)
        self._output = bytearray(PREFACE)
        self._queue(SETTINGS, 0, 0, settings)
        if receive_window > DEFAULT_WINDOW:
            self._queue(WINDOW_UPDATE, 0, 0, _WORD.pack(receive_window - DEFAULT_WINDOW))

    @property
    def usable(self) -> bool:
        """Whether a new stream may be opened."""
        return (self.failure is None and self.goaway is None and not self._unwritable
                and self._next_stream_id <= MAX_STREAM_ID)

    def open_stream(self) -> Stream:
        """A new stream (its HEADERS not sent yet). Raises LinkError when not ``usable``."""
        if not self.usable:
            raise self.failure or LinkError("the connection accepts no new stream",
                                            established=self.established)
        stream = Stream(self._next_stream_id, self._peer_initial_window)
        self._next_stream_id += 2
        self._streams[stream.stream_id] = stream
        return stream

    def release(self, stream: Stream) -> None:
        """Forget ``stream``: frames that still come for it are read and dropped."""
        self._streams.pop(stream.stream_id, None)

    def send_headers(self, stream: Stream, headers: Iterable[Header], *,
                     end_stream: bool = False) -> None:
        """Queue a header block on ``stream``, in HEADERS and CONTINUATION frames as the peer's
        MAX_FRAME_SIZE requires."""
        block = encode_block(headers, table_size_update=0 if self._first_block else None)
        self._first_block = False
        size = self._peer_max_frame
        pieces = [block[start:start + size] for start in range(0, len(block), size)] or [b""]
        for number, piece in enumerate(pieces):
            flags = END_HEADERS if number == len(pieces) - 1 else 0
            if number == 0:
                self._queue(HEADERS, flags | (END_STREAM if end_stream else 0),
                            stream.stream_id, piece)
                stream.sent_end = end_stream
            else:
                self._queue(CONTINUATION, flags, stream.stream_id, piece)

    def send_data(self, stream: Stream, data: bytes, *, end_stream: bool,
                  deadline: float | None) -> bool:
        """Send ``data`` on ``stream`` within the peer's windows, reading frames while they are
        closed. False if the peer finished the stream first (the rest is not sent).

        Raises LinkError, TimeoutError (``deadline``, a time.monotonic() value, passed)."""
        view = memoryview(data)
        offset = 0
        while True:
            if stream.finished:
                return False
            remaining = len(view) - offset
            size = min(remaining, self._send_window, stream.send_window, self._peer_max_frame)
            if size <= 0 and remaining > 0:
                self.receive(deadline)
                continue
            last = offset + size == len(view)
            self._queue(DATA, END_STREAM if last and end_stream else 0, stream.stream_id,
                        view[offset:offset + size])
            self._send_window -= size
            stream.send_window -= size
            offset += size
            if last:
                stream.sent_end = end_stream
                self.flush(deadline)
                return True

    def reset(self, stream: Stream, error_code: int = CANCEL) -> None:
        """End ``stream`` from this side (RST_STREAM) unless it is closed both ways already, and
        forget it. Never raises: a broken connection has no stream left to reset anyway."""
        self.release(stream)
        closed = stream.reset_code is not None or (stream.ended and stream.sent_end)
        if closed or self.failure is not None:
            return
        stream.reset_code = error_code
        self._queue(RST_STREAM, 0, stream.stream_id, _WORD.pack(error_code))
        self._flush_quietly()

    def receive(self, deadline: float | None) -> None:
        """Send what is queued, then read and handle one frame.

        Raises LinkError, TimeoutError (``deadline`` passed; nothing is lost)."""
        self.flush(deadline)
        self._fill(9, deadline)
        length = int.from_bytes(self._input[:3], "big")
        if length > DEFAULT_FRAME_SIZE:
            self._protocol_error(FRAME_SIZE_ERROR, f"a frame of {length} octets")
        self._fill(9 + length, deadline)
        kind, flags = self._input[3], self._input[4]
        stream_id = int.from_bytes(self._input[5:9], "big") & MAX_STREAM_ID
        payload = bytes(self._input[9:9 + length])
        del self._input[:9 + length]
        if self._partial is not None and kind != CONTINUATION:
            self._protocol_error(PROTOCOL_ERROR, "a header block interrupted by another frame")
        handler = _HANDLERS.get(kind)
        if handler is not None:  # unknown frame types are ignored (RFC 7540 4.1)
            handler(self, flags, stream_id, payload)

    def flush(self, deadline: float | None) -> None:
        """Send the queued frames. Raises LinkError, TimeoutError (the connection is then
        broken: part of a frame may have left). A peer that closed its end is not an error
        here: the frames are dropped and the next read says what happened."""
        if self.failure is not None:
            raise self.failure
        if not self._output:
            return
        timeout = _remaining(deadline)  # a deadline passed already: nothing sent, nothing lost
        output, self._output = self._output, bytearray()
        if self._unwritable:
            return
        try:
            self._transport.settimeout(timeout)
            self._transport.sendall(output)
        except TimeoutError:
            self._fail(LinkError("timed out sending", established=self.established))
            raise
        except OSError:
            # The peer closed or reset: nothing more can be sent, but what it sent before
            # (a GOAWAY, a reply) is still to be read, and the read will end the connection.
            self._unwritable = True

    def close(self) -> None:
        """Say GOAWAY (best effort) and close the transport."""
        if self.failure is None:
            self._queue(GOAWAY, 0, 0, _WORD.pack(0) + _WORD.pack(NO_ERROR))
            self._flush_quietly()
            self._fail(LinkError("the connection was closed", established=self.established))
        self._transport.close()

    # -- reading ---------------------------------------------------------------------------

    def _fill(self, size: int, deadline: float | None) -> None:
        while len(self._input) < size:
            try:
                self._transport.settimeout(_remaining(deadline))
                chunk = self._transport.recv(max(size - len(self._input), 65_536))
            except TimeoutError:
                raise
            except OSError as error:
                raise self._fail(LinkError(describe(error), established=self.established)
                                 ) from None
            if not chunk:
                raise self._fail(LinkError("Socket closed", established=self.established))
            self._input += chunk

    def _on_data(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0:
            self._protocol_error(PROTOCOL_ERROR, "DATA on stream 0")
        data = _unpad(self, flags, payload)
        self._unacknowledged += len(payload)  # padding counts against the windows too
        stream = self._streams.get(stream_id)
        if stream is not None and not stream.finished:
            stream.data += data
            if flags & END_STREAM:
                stream.ended = True
            else:
                stream.unacknowledged += len(payload)
                if stream.unacknowledged >= self._receive_window // 2:
                    self._queue(WINDOW_UPDATE, 0, stream_id, _WORD.pack(stream.unacknowledged))
                    stream.unacknowledged = 0
        if self._unacknowledged >= self._receive_window // 2:
            self._queue(WINDOW_UPDATE, 0, 0, _WORD.pack(self._unacknowledged))
            self._unacknowledged = 0

    def _on_headers(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0:
            self._protocol_error(PROTOCOL_ERROR, "HEADERS on stream 0")
        fragment = _unpad(self, flags, payload)
        if flags & PRIORITY_FLAG:
            fragment = fragment[5:]
        end_stream = bool(flags & END_STREAM)
        if flags & END_HEADERS:
            self._on_header_block(stream_id, fragment, end_stream)
        else:
            self._partial = (stream_id, [fragment], end_stream)

    def _on_continuation(self, flags: int, stream_id: int, payload: bytes) -> None:
        if self._partial is None or self._partial[0] != stream_id:
            self._protocol_error(PROTOCOL_ERROR, "CONTINUATION without its HEADERS")
        self._partial[1].append(payload)
        if flags & END_HEADERS:
            _, fragments, end_stream = self._partial
            self._partial = None
            self._on_header_block(stream_id, b"".join(fragments), end_stream)

    def _on_header_block(self, stream_id: int, block: bytes, end_stream: bool) -> None:
        try:  # decoded even for a forgotten stream: the dynamic table must follow every block
            headers = self._decoder.decode(block)
        except HeaderBlockError as error:
            self._protocol_error(COMPRESSION_ERROR, f"undecodable header block: {error}")
        stream = self._streams.get(stream_id)
        if stream is not None and not stream.finished:
            stream.header_blocks.append(headers)
            if end_stream:
                stream.ended = True

    def _on_reset(self, _flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0 or len(payload) != 4:
            self._protocol_error(PROTOCOL_ERROR, "a malformed RST_STREAM")
        stream = self._streams.get(stream_id)
        if stream is not None and stream.reset_code is None:
            stream.reset_code = _WORD.unpack(payload)[0]

    def _on_settings(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id != 0 or len(payload) % 6 or (flags & ACK and payload):
            self._protocol_error(FRAME_SIZE_ERROR, "a malformed SETTINGS frame")
        if flags & ACK:
            return
        for start in range(0, len(payload), 6):
            setting, value = _SETTING.unpack_from(payload, start)
            if setting == INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    self._protocol_error(FLOW_CONTROL_ERROR, f"initial window {value}")
                for stream in self._streams.values():
                    stream.send_window += value - self._peer_initial_window
                    if stream.send_window > MAX_WINDOW:
                        self._protocol_error(FLOW_CONTROL_ERROR,
                                             f"stream {stream.stream_id} window overflow")
                self._peer_initial_window = value
            elif setting == MAX_FRAME_SIZE:
                if not DEFAULT_FRAME_SIZE <= value <= LARGEST_FRAME_SIZE:
                    self._protocol_error(PROTOCOL_ERROR, f"max frame size {value}")
                self._peer_max_frame = value
            # HEADER_TABLE_SIZE needs nothing: the encoder's table is empty (size update 0).
        self._queue(SETTINGS, ACK, 0, b"")
        self.established = True

    def _on_ping(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id != 0 or len(payload) != 8:
            self._protocol_error(FRAME_SIZE_ERROR, "a malformed PING")
        if not flags & ACK:
            self._queue(PING, ACK, 0, payload)

    def _on_goaway(self, _flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id != 0 or len(payload) < 8:
            self._protocol_error(PROTOCOL_ERROR, "a malformed GOAWAY")
        last_stream_id = _WORD.unpack_from(payload)[0] & MAX_STREAM_ID
        self.goaway = (last_stream_id, _WORD.unpack_from(payload, 4)[0], payload[8:])
        for stream in self._streams.values():
            if stream.stream_id > last_stream_id and stream.reset_code is None:
                stream.reset_code = REFUSED_STREAM

    def _on_window_update(self, _flags: int, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            self._protocol_error(FRAME_SIZE_ERROR, "a malformed WINDOW_UPDATE")
        increment = _WORD.unpack(payload)[0] & MAX_WINDOW
        if stream_id == 0:
            if increment == 0 or self._send_window + increment > MAX_WINDOW:
                self._protocol_error(FLOW_CONTROL_ERROR, f"connection window + {increment}")
            self._send_window += increment
        elif (stream := self._streams.get(stream_id)) is not None:
            # A stream error (RFC 7540 6.9): that stream is reset, the connection lives on.
            if increment == 0:
                self._stream_error(stream, PROTOCOL_ERROR, "a zero WINDOW_UPDATE")
            elif stream.send_window + increment > MAX_WINDOW:
                self._stream_error(stream, FLOW_CONTROL_ERROR, "a window past 2^31-1")
            else:
                stream.send_window += increment

    def _stream_error(self, stream: Stream, error_code: int, message: str) -> None:
        """The peer broke the rules on ``stream`` only: reset it now (unless it is closed
        both ways already); its caller sees ``peer_error``."""
        if stream.reset_code is not None or (stream.ended and stream.sent_end):
            return
        stream.reset_code = error_code
        stream.peer_error = message
        self._queue(RST_STREAM, 0, stream.stream_id, _WORD.pack(error_code))
        self._flush_quietly()

    def _on_push_promise(self, _flags: int, _stream_id: int, _payload: bytes) -> None:
        self._protocol_error(PROTOCOL_ERROR, "PUSH_PROMISE, which this side disabled")

    # -- writing and failing ---------------------------------------------------------------

    def _queue(self, kind: int, flags: int, stream_id: int, payload: bytes | memoryview) -> None:
        length = len(payload)
        self._output += _FRAME_HEADER.pack(length >> 8, length & 0xFF, kind, flags, stream_id)
        self._output += payload

    def _flush_quietly(self) -> None:
        # For what is said on the way out (RST_STREAM, GOAWAY): within a second, if at all.
        with contextlib.suppress(LinkError, TimeoutError):
            self.flush(time.monotonic() + QUIET_FLUSH_SECONDS)

    def _fail(self, failure: LinkError) -> LinkError:
        if self.failure is None:
            self.failure = failure
        return self.failure

    def _protocol_error(self, error_code: int, message: str) -> NoReturn:
        """End the connection: GOAWAY naming the error, then LinkError (always raised)."""
        if self.failure is None:
            self._queue(GOAWAY, 0, 0, _WORD.pack(0) + _WORD.pack(error_code)
                        + message.encode())
            self._flush_quietly()
            self._fail(LinkError(f"HTTP/2 protocol error: {message}",
                                 established=self.established, protocol=True))
            self._transport.close()
        assert self.failure is not None
        raise self.failure


def _unpad(connection: Connection, flags: int, payload: bytes) -> bytes:
    if not flags & PADDED:
        return payload
    if not payload or payload[0] >= len(payload):
        connection._protocol_error(PROTOCOL_ERROR, "padding longer than its frame")
    return payload[1:len(payload) - payload[0]]


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("deadline passed")
    return remaining


def describe(error: OSError) -> str:
    """An OSError in a few words: its strerror when it has one."""
    return error.strerror or str(error) or type(error).__name__


_HANDLERS = {
    DATA: Connection._on_data,
    HEADERS: Connection._on_headers,
    RST_STREAM: Connection._on_reset,
    SETTINGS: Connection._on_settings,
    PUSH_PROMISE: Connection._on_push_promise,
    PING: Connection._on_ping,
    GOAWAY: Connection._on_goaway,
    WINDOW_UPDATE: Connection._on_window_update,
    CONTINUATION: Connection._on_continuation,
}  # PRIORITY and unknown types: read and ignored
