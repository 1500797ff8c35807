"""The client side of the API: where the daemon is and how to reach it.

``open_channel`` is the CLI's way in: ``engine.api.channel``, which speaks gRPC over HTTP/2
itself and never imports grpc, so that a CLI command starts fast. ``connect`` gives a grpc
channel instead (imported on call), for the tests, the load generator and other Python clients.
Both take the same addresses and TLS files, and both limit requests to MAX_MESSAGE_BYTES and
replies to MAX_REPLY_BYTES.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from engine.api import MAX_MESSAGE_BYTES, MAX_REPLY_BYTES

if TYPE_CHECKING:
    import grpc

    from engine.api.channel import Channel

DEFAULT_ROOT = "/var/lib/berth"


def default_address() -> str:
    """``$BERTH_HOST``, else the socket in ``$BERTH_ROOT`` (default /var/lib/berth)."""
    host = os.environ.get("BERTH_HOST")
    if host:
        return host
    return f"unix://{os.environ.get('BERTH_ROOT', DEFAULT_ROOT)}/berth.sock"


def open_channel(address: str, *, tls_ca: str | None = None, tls_cert: str | None = None,
                 tls_key: str | None = None, user_agent: str = "berth") -> Channel:
    """A grpc-free channel to ``address`` (``unix://PATH`` or ``[tcp://]HOST:PORT``; TLS when a
    CA or a client certificate is given). It connects at its first call.

    Raises ValueError (malformed address), OSError or ssl.SSLError (unreadable TLS files)."""
    from engine.api.channel import Channel

    return Channel(address, tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key,
                   max_receive_bytes=MAX_REPLY_BYTES, max_send_bytes=MAX_MESSAGE_BYTES,
                   user_agent=user_agent)


def connect(address: str, *, tls_ca: str | None = None, tls_cert: str | None = None,
            tls_key: str | None = None) -> grpc.Channel:
    """A grpc channel to ``address``, the same addresses and TLS files as ``open_channel``.

    Raises OSError (unreadable TLS files)."""
    import grpc

    options = [("grpc.max_receive_message_length", MAX_REPLY_BYTES),
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
