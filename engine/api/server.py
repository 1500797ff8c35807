"""The gRPC server: services, interceptor, health and reflection, and where it listens.

Listening: ``unix://PATH`` (mode 0660 once bound), or ``tcp://HOST:PORT`` with TLS (a server
certificate; with a CA, mutual TLS: clients without a certificate signed by it are refused).
Plain TCP only when explicitly forced (``insecure=True``). Requests are limited to
``MAX_MESSAGE_BYTES``, replies to ``MAX_REPLY_BYTES``.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from engine.api import MAX_MESSAGE_BYTES, MAX_REPLY_BYTES
from engine.api.containers import ContainersService
from engine.api.errors import ErrorInterceptor
from engine.api.idempotency import RequestLedger
from engine.api.system import SystemService
from engine.api.v1 import containers_pb2, containers_pb2_grpc, system_pb2, system_pb2_grpc
from engine.config import ConfigSnapshot
from engine.errors import InvalidParameter
from engine.service import Engine

SOCKET_MODE = 0o660
SERVICE_NAMES = (
    containers_pb2.DESCRIPTOR.services_by_name["Containers"].full_name,
    system_pb2.DESCRIPTOR.services_by_name["System"].full_name,
)


@dataclasses.dataclass(frozen=True)
class Tls:
    cert: str
    key: str
    ca: str | None = None  # set: mutual TLS

    def credentials(self) -> grpc.ServerCredentials:
        def read(path: str) -> bytes:
            with open(path, "rb") as handle:
                return handle.read()

        return grpc.ssl_server_credentials(
            [(read(self.key), read(self.cert))],
            root_certificates=read(self.ca) if self.ca else None,
            require_client_auth=self.ca is not None,
        )


def build_server(engine: Engine, *, data_root: str, backend: str,
                 reload: Callable[[], ConfigSnapshot], max_workers: int = 64,
                 shutdown: threading.Event | None = None) -> grpc.Server:
    """The daemon's server. ``shutdown``, once set, ends the long calls (waits, followed
    logs, events) with UNAVAILABLE: set it before stopping the server."""
    server = grpc.server(
        ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="berth-api"),
        interceptors=[ErrorInterceptor()],
        options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                 ("grpc.max_send_message_length", MAX_REPLY_BYTES)],
    )
    ledger = RequestLedger(engine.saga.db)
    containers_pb2_grpc.add_ContainersServicer_to_server(
        ContainersService(engine, ledger, shutdown), server)
    system_pb2_grpc.add_SystemServicer_to_server(
        SystemService(engine, data_root=data_root, backend=backend, reload=reload,
                      ledger=ledger, shutdown=shutdown), server)
    checker = health.HealthServicer()
    for name in ("", *SERVICE_NAMES):
        checker.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME), server)
    return server


def listen(server: grpc.Server, address: str, *, tls: Tls | None = None,
           insecure: bool = False) -> str:
    """Bind ``address``; return what was bound (a TCP port 0 becomes the real port).

    Raises InvalidParameter (bad address, plain TCP not forced)."""
    if address.startswith("unix://"):
        path = address.removeprefix("unix://")
        if os.path.exists(path):
            os.unlink(path)  # a stale socket of a daemon that died
        server.add_insecure_port(f"unix:{path}")
        return address
    if address.startswith("tcp://"):
        target = address.removeprefix("tcp://")
        if tls is not None:
            port = server.add_secure_port(target, tls.credentials())
        elif insecure:
            port = server.add_insecure_port(target)
        else:
            raise InvalidParameter(
                f"refusing to listen on {address} without TLS: give --tls-cert and --tls-key "
                "(and --tls-ca for mutual TLS), or force plain TCP with --insecure-tcp")
        host = target.rsplit(":", 1)[0]
        return f"tcp://{host}:{port}"
    raise InvalidParameter(f"invalid listen address {address!r}: unix://PATH or tcp://HOST:PORT")


def start(server: grpc.Server, addresses: list[str]) -> None:
    """Start serving; the unix sockets are created with mode 0660 (the umask is narrowed while
    gRPC creates them, so there is no moment when they are more open)."""
    previous = os.umask(0o117)
    try:
        server.start()
    finally:
        os.umask(previous)
    secure_sockets(addresses)


def secure_sockets(addresses: list[str]) -> None:
    """Give the unix sockets their mode once the server has created them."""
    for address in addresses:
        if address.startswith("unix://"):
            os.chmod(address.removeprefix("unix://"), SOCKET_MODE)
