"""A tiny server with only ``ErrorInterceptor`` and a servicer that raises what it is asked:
every ``ErrorClass`` member, and a few concrete errors, on a unary and a streaming method."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc

from engine import errors
from engine.api.errors import ErrorInterceptor
from engine.errors import BerthError, ErrorClass

# One raisable class per ErrorClass member: the direct subclasses of BerthError.
CLASSES: dict[ErrorClass, type[BerthError]] = {
    cls.error_class: cls for cls in BerthError.__subclasses__()
}

CONCRETE: dict[str, Callable[[], BaseException]] = {
    "NameInUse": lambda: errors.NameInUseConflict("web", owner_id="abc"),
    "RemovalInProgress": lambda: errors.RemovalInProgressConflict("web"),
    "ContainerNotFound": lambda: errors.ContainerNotFound("web"),
    "Failpoint": lambda: errors.FailpointSystem("start.persist"),
    "RuntimeError": lambda: RuntimeError("a bug"),
    "KeyError": lambda: KeyError("missing"),
}


def error_for(key: str) -> BaseException:
    if key in CONCRETE:
        return CONCRETE[key]()
    error_class = ErrorClass(key)
    return CLASSES[error_class](f"raised {error_class.value}")


@contextlib.contextmanager
def serve_raiser() -> Iterator[str]:
    """The server on a free port of 127.0.0.1; yields ``host:port``."""

    def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
        raise error_for(request.decode())

    def stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        yield b"first"
        raise error_for(request.decode())

    handler = grpc.method_handlers_generic_handler("test.Raiser", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.unary_stream_rpc_method_handler(stream),
    })
    server = grpc.server(ThreadPoolExecutor(max_workers=4), interceptors=[ErrorInterceptor()])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None).wait()
