"""Error classes become gRPC status codes here, once, at the edge.

``ErrorInterceptor`` wraps every handler: a BerthError aborts the call with the code of its
class (and its class name in the ``berth-error-class`` trailing metadata, for the CLI); any
other exception is a bug and becomes INTERNAL, never UNKNOWN by accident. Only the Unknown
class maps to UNKNOWN. NotModified is not an error on the wire: servicers answer
``changed: false``; should one escape, it is FAILED_PRECONDITION.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from engine.errors import (
    BerthError,
    ErrorClass,
    InvalidParameter,
    NameInUseConflict,
    RemovalInProgressConflict,
)

log = logging.getLogger("berth.api")

ERROR_CLASS_KEY = "berth-error-class"

CODES: dict[ErrorClass, grpc.StatusCode] = {
    ErrorClass.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorClass.INVALID_PARAMETER: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorClass.CONFLICT: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorClass.UNAUTHORIZED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorClass.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorClass.FORBIDDEN: grpc.StatusCode.PERMISSION_DENIED,
    ErrorClass.NOT_MODIFIED: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorClass.NOT_IMPLEMENTED: grpc.StatusCode.UNIMPLEMENTED,
    ErrorClass.SYSTEM: grpc.StatusCode.INTERNAL,
    ErrorClass.UNKNOWN: grpc.StatusCode.UNKNOWN,
    ErrorClass.CANCELLED: grpc.StatusCode.CANCELLED,
    ErrorClass.DEADLINE: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorClass.DATA_LOSS: grpc.StatusCode.DATA_LOSS,
}


class ReplayedFailure(Exception):
    """The stored failure of a request id, answered again to a retry."""

    def __init__(self, code: grpc.StatusCode, message: str, error_class: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.error_class = error_class


def status_of(error: BerthError) -> grpc.StatusCode:
    if isinstance(error, NameInUseConflict):
        return grpc.StatusCode.ALREADY_EXISTS
    if isinstance(error, RemovalInProgressConflict):
        return grpc.StatusCode.ABORTED
    return CODES[error.error_class]


def _abort(context: grpc.ServicerContext, error: BaseException) -> None:
    if isinstance(error, ReplayedFailure):
        code, message, error_class = error.code, error.message, error.error_class
    elif isinstance(error, BerthError):
        code, message, error_class = status_of(error), error.message, error.error_class.value
    else:
        log.exception("internal error", exc_info=error)
        code, message = grpc.StatusCode.INTERNAL, f"internal error: {error}"
        error_class = ErrorClass.SYSTEM.value
    context.set_trailing_metadata(((ERROR_CLASS_KEY, error_class),))
    context.abort(code, bounded(message))


MESSAGE_BYTES = 4096  # the status travels as a header: grpc clients refuse more than 8-16 KiB


def bounded(message: str) -> str:
    """``message`` cut so that its header (grpc-message, percent-encoded: 3 bytes for each
    byte that is not printable ASCII, and for ``%``) stays within MESSAGE_BYTES: a 1 MiB name
    echoed in an error made a stock client see RESOURCE_EXHAUSTED instead of the error."""
    raw = message.encode()
    costs = [1 if 0x20 <= byte <= 0x7E and byte != 0x25 else 3 for byte in raw]
    if sum(costs) <= MESSAGE_BYTES:
        return message
    cost = 0
    for index, byte_cost in enumerate(costs):
        cost += byte_cost
        if cost > MESSAGE_BYTES - 3:  # room for "..."
            return raw[:index].decode(errors="ignore") + "..."
    return message


class _Undecodable:
    """A request whose bytes did not parse: the handler answers INVALID_ARGUMENT (grpc's own
    deserializer failure is INTERNAL, with a traceback in the daemon's log)."""

    def __init__(self, why: str) -> None:
        self.why = why


def _decoding(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as error:  # DecodeError, or a string that is no UTF-8
            return _Undecodable(str(error) or type(error).__name__)

    return decode


def _decoded(request: Any) -> Any:
    if isinstance(request, _Undecodable):
        raise InvalidParameter(f"invalid request: {request.why}")
    return request


def _unary(behavior: Callable[[Any, grpc.ServicerContext], Any]
           ) -> Callable[[Any, grpc.ServicerContext], Any]:
    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return behavior(_decoded(request), context)
        except Exception as error:
            _abort(context, error)
            raise  # unreachable: abort raises

    return handle


def _stream(behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]]
            ) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
    def handle(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from behavior(_decoded(request), context)
        except Exception as error:
            _abort(context, error)

    return handle


class ErrorInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def intercept_service(self, continuation: Callable[[Any], Any],
                          details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _unary(handler.unary_unary), _decoding(handler.request_deserializer),
                handler.response_serializer)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _stream(handler.unary_stream), _decoding(handler.request_deserializer),
                handler.response_serializer)
        return handler
