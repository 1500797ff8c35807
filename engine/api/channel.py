"""gRPC calls without grpc: the CLI's transport to the daemon (gRPC's PROTOCOL-HTTP2).

A ``Channel`` dials ``unix:///PATH``, or ``tcp://HOST:PORT`` (TLS through ``ssl`` with ALPN
"h2" when given a CA or a client certificate: mutual TLS with both), at its first call and keeps
the connection for the next ones; a connection that broke, or that the server is closing
(GOAWAY), is replaced at the next call. A stream the server refused unprocessed (REFUSED_STREAM,
or above a GOAWAY's last stream) is sent once more on a new connection.

Calls are unary-unary (``unary_unary``) or unary-stream (``unary_stream``), serialized messages
in and out (``engine.api.stub`` adds protobuf). Each takes ``timeout`` seconds, sent as
``grpc-timeout`` and enforced here too, and ``metadata`` (``-bin`` keys take bytes). Every
status but OK raises CallError: UNAVAILABLE "failed to connect to ADDRESS: REASON" when the
server could not be reached, UNAVAILABLE when the connection broke, DEADLINE_EXCEEDED when the
timeout passed, RESOURCE_EXHAUSTED for a message above a limit, INTERNAL when the server broke
the protocol, else the server's own status, its details (percent-decoded) and its trailing
metadata. One thread at a time.
"""

from __future__ import annotations

import binascii
import errno
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from engine.api import MAX_REPLY_BYTES
from engine.api.connection import (
    REFUSED_STREAM,
    Connection,
    LinkError,
    Stream,
    Transport,
    describe,
)
from engine.api.header_codec import Header
from engine.api.status import (
    CallError,
    Metadata,
    StatusCode,
    Unreachable,
    http_status_code,
    percent_decode,
    reset_status_code,
)

if TYPE_CHECKING:
    import ssl

RECEIVE_WINDOW = 16 * 1024 * 1024
CONNECT_TIMEOUT = 20.0  # seconds, like grpc's minimum connect timeout
USER_AGENT = "berth-channel"
RequestMetadata = Sequence[tuple[str, str | bytes]]
# Set by the transport, never exposed as metadata (grpc does the same).
_RESERVED = frozenset({b"content-type", b"grpc-status", b"grpc-message", b"grpc-encoding",
                       b"grpc-accept-encoding", b"te", b"user-agent"})


class _Refused(Exception):
    """The server did not process the stream: it may be sent again."""


class Channel:
    """Calls to one gRPC server at ``address``. Raises ValueError for an address that is neither
    ``unix://PATH`` nor ``[tcp://]HOST:PORT``, OSError or ssl.SSLError for unreadable TLS files.

    ``receive_window`` is the flow-control window announced for each stream and for the
    connection; ``max_receive_bytes`` and ``max_send_bytes`` (None: no limit here) bound one
    message. ``dials`` counts the connections opened so far."""

    def __init__(self, address: str, *, tls_ca: str | None = None, tls_cert: str | None = None,
                 tls_key: str | None = None, connect_timeout: float = CONNECT_TIMEOUT,
                 receive_window: int = RECEIVE_WINDOW,
                 max_receive_bytes: int = MAX_REPLY_BYTES, max_send_bytes: int | None = None,
                 user_agent: str = USER_AGENT) -> None:
        self.address = address
        self._connect_timeout = connect_timeout
        self._receive_window = receive_window
        self._max_receive = max_receive_bytes
        self._max_send = max_send_bytes
        self._user_agent = user_agent.encode()
        self._connection: Connection | None = None
        self.dials = 0
        self._tls: ssl.SSLContext | None = None
        self._unix_path: str | None = None
        if address.startswith("unix://"):
            self._unix_path = address.removeprefix("unix://")
            self._host, self._port = "localhost", 0
            self._authority = b"localhost"
        else:
            target = address.removeprefix("tcp://")
            host, colon, port = target.rpartition(":")
            if not colon or not host or not port.isdigit():
                raise ValueError(f"invalid address {address!r}: unix://PATH or tcp://HOST:PORT")
            self._host, self._port = host.removeprefix("[").removesuffix("]"), int(port)
            self._authority = target.encode()
            if tls_ca or tls_cert:
                self._tls = _tls_context(tls_ca, tls_cert, tls_key)
        self._scheme = b"https" if self._tls is not None else b"http"

    def unary_unary(self, path: str, request: bytes, *, timeout: float | None = None,
                    metadata: RequestMetadata = ()) -> bytes:
        """The one reply of the method at ``path`` (``/package.Service/Method``).

        Raises CallError, ValueError (malformed metadata)."""
        replies = list(self._call(path, request, timeout, metadata))
        if len(replies) != 1:
            raise CallError(StatusCode.INTERNAL,
                            f"a unary call answered with {len(replies)} messages")
        return replies[0]

    def unary_stream(self, path: str, request: bytes, *, timeout: float | None = None,
                     metadata: RequestMetadata = ()) -> Iterator[bytes]:
        """The replies of the method at ``path``, as they come. The call starts at the first
        ``next()``; closing the iterator early cancels it.

        Raises (while iterating) CallError, ValueError (malformed metadata)."""
        return self._call(path, request, timeout, metadata)

    def close(self) -> None:
        """Close the connection, if any; a later call opens a new one."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *_exception: object) -> None:
        self.close()

    # -- one call ----------------------------------------------------------------------------

    def _call(self, path: str, request: bytes, timeout: float | None,
              metadata: RequestMetadata) -> Iterator[bytes]:
        deadline = None if timeout is None else time.monotonic() + timeout
        extra = _metadata_headers(metadata)
        if self._max_send is not None and len(request) > self._max_send:
            raise CallError(StatusCode.RESOURCE_EXHAUSTED,
                            f"Sent message larger than max ({len(request)} vs. {self._max_send})")
        message = b"\x00" + len(request).to_bytes(4, "big") + request
        for attempt in (1, 2):
            if deadline is not None and deadline <= time.monotonic():
                # Before a stream is opened: one reset without its HEADERS is a protocol error.
                raise CallError(StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
            connection = self._open()
            stream = connection.open_stream()
            replies = 0
            try:
                for reply in self._exchange(connection, stream, path, message, extra, deadline):
                    replies += 1
                    yield reply
                return
            except _Refused:
                if attempt == 2 or replies:
                    raise CallError(StatusCode.UNAVAILABLE,
                                    "the server refused the call unprocessed") from None
            finally:
                connection.reset(stream)  # a no-op once the stream is finished

    def _exchange(self, connection: Connection, stream: Stream, path: str, message: bytes,
                  extra: list[Header], deadline: float | None) -> Iterator[bytes]:
        headers = [(b":method", b"POST"), (b":scheme", self._scheme), (b":path", path.encode()),
                   (b":authority", self._authority), (b"te", b"trailers"),
                   (b"content-type", b"application/grpc"), (b"user-agent", self._user_agent)]
        if deadline is not None:
            # At least 1 ms: the deadline was checked before the stream was opened, and a
            # stream with no HEADERS must not be reset.
            headers.append((b"grpc-timeout",
                            _timeout_value(max(deadline - time.monotonic(), 0.001))))
        try:
            connection.send_headers(stream, [*headers, *extra])
            connection.send_data(stream, message, end_stream=True, deadline=deadline)
            initial = self._initial_headers(connection, stream, deadline)
            if stream.ended and _has_status(initial):  # trailers-only
                self._finish(stream, initial, ())
                return
            encoding = _first(initial, b"grpc-encoding")
            while True:
                reply = self._next_message(connection, stream, deadline, initial)
                if reply is None:
                    break
                compressed, data = reply
                yield _decompress(data, encoding, self._max_receive) if compressed else data
        except TimeoutError:
            raise CallError(StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
        except LinkError as error:  # the next call opens a new connection
            raise self._link_failure(error) from None
        trailers = stream.header_blocks[1] if len(stream.header_blocks) > 1 else []
        self._finish(stream, trailers, _metadata(initial))

    def _initial_headers(self, connection: Connection, stream: Stream,
                         deadline: float | None) -> list[Header]:
        while not stream.header_blocks:
            if stream.reset_code == REFUSED_STREAM:
                raise _Refused
            if stream.finished:
                self._finish(stream, [], ())
            connection.receive(deadline)
        initial = stream.header_blocks[0]
        status = _first(initial, b":status")
        if status != b"200" and not _has_status(initial):
            code = http_status_code(int(status)) if status.isdigit() else StatusCode.UNKNOWN
            raise CallError(code, f"HTTP status {status.decode(errors='replace')}",
                            initial_metadata=_metadata(initial))
        content_type = _first(initial, b"content-type")
        if not content_type.startswith(b"application/grpc") and not _has_status(initial):
            raise CallError(StatusCode.UNKNOWN, "not a gRPC reply (content-type "
                            f"{content_type.decode(errors='replace')!r})")
        return initial

    def _next_message(self, connection: Connection, stream: Stream, deadline: float | None,
                      initial: list[Header]) -> tuple[bool, bytes] | None:
        """The next length-prefixed message (compressed flag, octets), None at the end."""
        data = stream.data
        while True:
            if len(data) >= 5:
                length = int.from_bytes(data[1:5], "big")
                if length > self._max_receive:
                    connection.reset(stream)
                    raise CallError(
                        StatusCode.RESOURCE_EXHAUSTED,
                        f"Received message larger than max ({length} vs. {self._max_receive})",
                        initial_metadata=_metadata(initial))
                if len(data) >= 5 + length:
                    compressed = data[0] == 1
                    message = bytes(data[5:5 + length])
                    del data[:5 + length]
                    return compressed, message
            if stream.finished:
                if data:
                    self._finish(stream, [], _metadata(initial), "the stream ended inside a "
                                 "message")
                return None
            connection.receive(deadline)

    def _finish(self, stream: Stream, trailers: list[Header], initial: Metadata,
                missing: str = "the server ended the stream without a status") -> None:
        """Raise CallError unless ``trailers`` say OK; raise _Refused for a stream the server
        refused unprocessed. A status in the trailers wins over a reset that followed it."""
        status = _first(trailers, b"grpc-status")
        if status.isdigit():
            code = StatusCode.of(int(status))
            if code is not StatusCode.OK:
                raise CallError(code, percent_decode(_first(trailers, b"grpc-message")),
                                initial_metadata=initial, trailing_metadata=_metadata(trailers))
            return
        if stream.reset_code == REFUSED_STREAM:
            raise _Refused
        if stream.peer_error is not None:
            raise CallError(StatusCode.INTERNAL,
                            f"HTTP/2 protocol error on the stream: {stream.peer_error}",
                            initial_metadata=initial)
        if stream.reset_code is not None:
            raise CallError(reset_status_code(stream.reset_code),
                            f"the server reset the stream (HTTP/2 error {stream.reset_code})",
                            initial_metadata=initial)
        raise CallError(StatusCode.INTERNAL, missing, initial_metadata=initial)

    # -- connecting --------------------------------------------------------------------------

    def _open(self) -> Connection:
        if self._connection is not None and self._connection.usable:
            return self._connection
        if self._connection is not None:
            self._connection.close()
        self._connection = Connection(self._dial(), receive_window=self._receive_window)
        self.dials += 1
        return self._connection

    def _dial(self) -> Transport:
        try:
            if self._unix_path is not None:
                return _dial_unix(self._unix_path, self._connect_timeout)
            return _dial_tcp(self._host, self._port, self._connect_timeout, self._tls)
        except OSError as error:
            raise self._unreachable(describe(error), _why_unreachable(error)) from None

    def _unreachable(self, reason: str, why: Unreachable = Unreachable.OTHER) -> CallError:
        return CallError(StatusCode.UNAVAILABLE, f"failed to connect to {self.address}: {reason}",
                         unreachable=why)

    def _link_failure(self, error: LinkError) -> CallError:
        if not error.established:  # no HTTP/2 server answered: TLS refused us, or not HTTP/2
            return self._unreachable(error.reason)
        if error.protocol:
            return CallError(StatusCode.INTERNAL, error.reason)
        return CallError(StatusCode.UNAVAILABLE, error.reason, unreachable=Unreachable.LOST)


def _dial_unix(path: str, timeout: float) -> Transport:
    # _socket is the C module that socket wraps: a unix socket needs nothing more, and
    # importing socket (its enums, selectors) would add ~3 ms to every CLI start.
    import _socket

    raw = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        raw.settimeout(timeout)
        raw.connect(path)
    except OSError:
        raw.close()
        raise
    return raw


def _dial_tcp(host: str, port: int, timeout: float, tls: ssl.SSLContext | None) -> Transport:
    import socket

    raw = socket.create_connection((host, port), timeout)
    try:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # frames are small
        if tls is None:
            return raw
        secure = tls.wrap_socket(raw, server_hostname=host)
    except OSError:
        raw.close()
        raise
    if secure.selected_alpn_protocol() != "h2":
        secure.close()
        raise OSError("the server did not agree to HTTP/2 (ALPN h2)")
    return secure


def _tls_context(ca: str | None, cert: str | None, key: str | None) -> ssl.SSLContext:
    import ssl

    try:
        context = ssl.create_default_context(cafile=ca)
    except OSError as error:  # "[Errno 2] No such file or directory", without the file
        raise OSError(f"TLS CA {ca}: {error.strerror or error}") from error
    if cert:
        try:
            context.load_cert_chain(cert, key)
        except OSError as error:
            raise OSError(f"TLS certificate {cert} or key {key or cert}: "
                          f"{error.strerror or error}") from error
    context.set_alpn_protocols(["h2"])
    return context


def _timeout_value(seconds: float) -> bytes:
    """``grpc-timeout``: at most 8 digits, in the finest unit that fits, rounded up."""
    if seconds <= 0:
        raise TimeoutError("deadline passed")
    for unit, per_second in ((b"m", 1000), (b"S", 1), (b"M", 1 / 60), (b"H", 1 / 3600)):
        value = -int(-seconds * per_second // 1)
        if value <= 99_999_999:
            return str(value).encode() + unit
    return b"99999999H"


def _metadata_headers(metadata: RequestMetadata) -> list[Header]:
    headers: list[Header] = []
    for key, value in metadata:
        name = key.encode("ascii")
        if (not name or name != name.lower() or name.startswith((b":", b"grpc-"))
                or name in _RESERVED):
            raise ValueError(f"metadata key {key!r} is not a lowercase, unreserved name")
        if name.endswith(b"-bin"):
            octets = value if isinstance(value, bytes) else value.encode()
            encoded = binascii.b2a_base64(octets, newline=False).rstrip(b"=")
        elif isinstance(value, str) and value.isascii() and value.isprintable():
            encoded = value.encode("ascii")
        else:
            raise ValueError(f"metadata {key!r} needs printable ASCII (or a -bin key)")
        headers.append((name, encoded))
    return headers


def _metadata(headers: list[Header]) -> Metadata:
    entries: list[tuple[str, str | bytes]] = []
    for name, value in headers:
        if name.startswith(b":") or name in _RESERVED:
            continue
        key = name.decode("latin-1")
        if key.endswith("-bin"):
            try:
                entries.append((key, binascii.a2b_base64(value + b"=" * (-len(value) % 4))))
            except binascii.Error:
                entries.append((key, value))
        else:
            entries.append((key, value.decode("latin-1")))
    return tuple(entries)


def _first(headers: list[Header], name: bytes) -> bytes:
    for field, value in headers:
        if field == name:
            return value
    return b""


def _has_status(headers: list[Header]) -> bool:
    return any(field == b"grpc-status" for field, _ in headers)


def _decompress(data: bytes, encoding: bytes, limit: int) -> bytes:
    """A compressed message, inflated to at most ``limit`` bytes. Raises CallError (INTERNAL
    for bad data or an unknown encoding, RESOURCE_EXHAUSTED beyond the limit)."""
    import zlib

    if encoding not in (b"gzip", b"deflate"):
        raise CallError(StatusCode.INTERNAL, f"a compressed message in encoding {encoding!r}")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == b"gzip" else zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(data, limit + 1)
    except zlib.error as error:
        raise CallError(StatusCode.INTERNAL, f"a corrupt {encoding.decode()} message: {error}"
                        ) from None
    if len(inflated) > limit or inflater.unconsumed_tail:
        raise CallError(StatusCode.RESOURCE_EXHAUSTED,
                        f"Received message larger than max (more than {limit} inflated)")
    return inflated


def _why_unreachable(error: OSError) -> Unreachable:
    if error.errno in (errno.ENOENT, errno.ECONNREFUSED) or isinstance(error, TimeoutError):
        return Unreachable.ABSENT
    if error.errno in (errno.EACCES, errno.EPERM):
        return Unreachable.DENIED
    return Unreachable.OTHER
