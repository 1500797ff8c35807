"""The client side of the API: where the daemon is and how to reach it.

Imports only grpc and the generated stubs, so that CLI commands start fast.
"""

from __future__ import annotations

import os

import grpc

DEFAULT_ROOT = "/var/lib/berth"
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def default_address() -> str:
    """``$BERTH_HOST``, else the socket in ``$BERTH_ROOT`` (default /var/lib/berth)."""
    host = os.environ.get("BERTH_HOST")
    if host:
        return host
    return f"unix://{os.environ.get('BERTH_ROOT', DEFAULT_ROOT)}/berth.sock"


def connect(address: str, *, tls_ca: str | None = None, tls_cert: str | None = None,
            tls_key: str | None = None) -> grpc.Channel:
    options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
               ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
    if address.startswith("unix://"):
        return grpc.insecure_channel(f"unix:{address.removeprefix('unix://')}", options=options)
    target = address.removeprefix("tcp://")
    if tls_ca or tls_cert:
        def read(path: str | None) -> bytes | None:
            if not path:
                return None
            with open(path, "rb") as handle:
                return handle.read()

        credentials = grpc.ssl_channel_credentials(read(tls_ca), read(tls_key), read(tls_cert))
        return grpc.secure_channel(target, credentials, options=options)
    return grpc.insecure_channel(target, options=options)
