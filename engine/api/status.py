"""gRPC status codes and the error of a call that ended with one, for the grpc-free client.

``CallError`` answers what ``grpc.RpcError`` answers (``code()``, ``details()``,
``initial_metadata()``, ``trailing_metadata()``), so code that handled grpc's errors handles
these the same way. The HTTP/2 mappings follow gRPC's PROTOCOL-HTTP2 and http-grpc-status-mapping
documents: an HTTP status other than 200 without a grpc-status, and an RST_STREAM error code,
each become the status a grpc client would report.
"""

from __future__ import annotations

import enum

Metadata = tuple[tuple[str, str | bytes], ...]


class StatusCode(enum.IntEnum):
    """The canonical status codes, valued as on the wire (``grpc-status``)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16

    def __str__(self) -> str:
        return f"StatusCode.{self.name}"  # as grpc's codes print, not as the bare number

    @classmethod
    def of(cls, value: int) -> StatusCode:
        """The code ``value`` stands for; UNKNOWN for a value outside the canonical ones."""
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN


HTTP_STATUS_CODES = {
    400: StatusCode.INTERNAL,
    401: StatusCode.UNAUTHENTICATED,
    403: StatusCode.PERMISSION_DENIED,
    404: StatusCode.UNIMPLEMENTED,
    429: StatusCode.UNAVAILABLE,
    502: StatusCode.UNAVAILABLE,
    503: StatusCode.UNAVAILABLE,
    504: StatusCode.UNAVAILABLE,
}  # any other HTTP status: UNKNOWN

RESET_CODES = {  # RFC 7540 error codes of an RST_STREAM that ends a call
    0x0: StatusCode.INTERNAL,  # NO_ERROR before the trailers: the call did not end properly
    0x1: StatusCode.INTERNAL,  # PROTOCOL_ERROR
    0x2: StatusCode.INTERNAL,  # INTERNAL_ERROR
    0x3: StatusCode.INTERNAL,  # FLOW_CONTROL_ERROR
    0x4: StatusCode.INTERNAL,  # SETTINGS_TIMEOUT
    0x6: StatusCode.INTERNAL,  # FRAME_SIZE_ERROR
    0x7: StatusCode.UNAVAILABLE,  # REFUSED_STREAM: not processed, safe to retry
    0x8: StatusCode.CANCELLED,  # CANCEL
    0x9: StatusCode.INTERNAL,  # COMPRESSION_ERROR
    0xA: StatusCode.INTERNAL,  # CONNECT_ERROR
    0xB: StatusCode.RESOURCE_EXHAUSTED,  # ENHANCE_YOUR_CALM
    0xC: StatusCode.PERMISSION_DENIED,  # INADEQUATE_SECURITY
}


def http_status_code(status: int) -> StatusCode:
    """The gRPC status of an HTTP response status that came without a grpc-status."""
    return HTTP_STATUS_CODES.get(status, StatusCode.UNKNOWN)


def reset_status_code(error_code: int) -> StatusCode:
    """The gRPC status of a call its server reset with ``error_code``."""
    return RESET_CODES.get(error_code, StatusCode.INTERNAL)


_HEX = frozenset(b"0123456789abcdefABCDEF")


def percent_decode(text: bytes) -> str:
    """A ``grpc-message`` value decoded: %XX escapes of UTF-8 octets; a malformed escape is
    kept as it is, invalid UTF-8 becomes U+FFFD."""
    if b"%" not in text:
        return text.decode("utf-8", "replace")
    decoded = bytearray()
    position = 0
    while position < len(text):
        pair = text[position + 1:position + 3]
        if text[position] == 0x25 and len(pair) == 2 and all(c in _HEX for c in pair):
            decoded.append(int(pair, 16))
            position += 3
        else:
            decoded.append(text[position])
            position += 1
    return decoded.decode("utf-8", "replace")


class Unreachable(enum.Enum):
    """Why no answer came from a server (a call error's ``unreachable``)."""

    ABSENT = "absent"  # no socket there, nobody listening, or no answer in time
    DENIED = "denied"  # the socket's permissions refuse this user
    LOST = "lost"  # the connection ended before the answer (the server died or went away)
    OTHER = "other"  # anything else: TLS refused, not an HTTP/2 server, ...


class CallError(Exception):
    """A call that ended with a status other than OK, or that never reached the server
    (UNAVAILABLE), or whose deadline passed (DEADLINE_EXCEEDED)."""

    def __init__(self, code: StatusCode, details: str, *, initial_metadata: Metadata = (),
                 trailing_metadata: Metadata = (), unreachable: Unreachable | None = None
                 ) -> None:
        super().__init__(f"{code.name}: {details}")
        self.unreachable = unreachable  # set when the server never answered
        self._code = code
        self._details = details
        self._initial_metadata = initial_metadata
        self._trailing_metadata = trailing_metadata

    def code(self) -> StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def initial_metadata(self) -> Metadata:
        return self._initial_metadata

    def trailing_metadata(self) -> Metadata:
        return self._trailing_metadata
