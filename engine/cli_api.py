"""The CLI's side of the daemon: a channel, its stubs, and Docker's words for failed calls."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Iterator
from typing import Any

from engine.cli_version import VERSION

EXIT_REFUSED = 125  # Docker's status when the daemon (or the CLI itself) refused


def valid_text(text: str) -> str:
    """``text`` that is no UTF-8 (Python keeps such bytes of an argument or a variable as
    surrogates) with U+FFFD in their place, as Go's JSON encoding in the Docker CLI sends it."""
    try:
        text.encode()
        return text
    except UnicodeEncodeError:
        return text.encode(errors="surrogateescape").decode(errors="replace")


class CliError(Exception):
    def __init__(self, message: str, status: int = 1, *, not_found: bool = False,
                 unimplemented: bool = False, data_loss: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.not_found = not_found  # the daemon's answer was NotFound
        self.unimplemented = unimplemented  # ... or that it cannot do this (NotImplemented)
        self.data_loss = data_loss  # ... or that what it streamed was cut short (DataLoss)


class Api:
    def __init__(self, args: argparse.Namespace) -> None:
        from engine.client import default_address, open_channel

        self.address = args.host or default_address()
        self.channel = open_channel(self.address, tls_ca=args.tls_ca, tls_cert=args.tls_cert,
                                    tls_key=args.tls_key, user_agent=f"berth/{VERSION}")

    @functools.cached_property
    def containers(self) -> Any:
        from engine.api.stub import Stub
        from engine.api.v1 import containers_pb2

        return Stub(self.channel, containers_pb2.DESCRIPTOR.services_by_name["Containers"])

    @functools.cached_property
    def system(self) -> Any:
        from engine.api.stub import Stub
        from engine.api.v1 import system_pb2

        return Stub(self.channel, system_pb2.DESCRIPTOR.services_by_name["System"])

    def call(self, method: Callable[..., Any], request: Any, **options: Any) -> Any:
        """``method(request)``; a streaming method's replies, as they come. Raises CliError,
        for a stream while iterating."""
        from engine.api.status import CallError

        try:
            result = method(request, **options)
        except CallError as error:
            raise self.translate(error) from None
        if getattr(method, "server_streaming", False):
            return self._translated(result)
        return result

    def _translated(self, replies: Iterator[Any]) -> Iterator[Any]:
        from engine.api.status import CallError

        try:
            yield from replies
        except CallError as error:
            raise self.translate(error) from None

    def translate(self, error: Any) -> CliError:
        """Docker's words for a failed call: why the daemon could not be reached, else what
        it answered."""
        from engine.api.status import Unreachable

        why = getattr(error, "unreachable", None)
        if why is Unreachable.ABSENT:
            return CliError(f"Cannot connect to the berth daemon at {self.address}. "
                            "Is the daemon running?")
        if why is Unreachable.DENIED:
            return CliError("permission denied while trying to connect to the berth daemon "
                            f"socket at {self.address}: {error.details()}")
        if why is Unreachable.LOST:
            return CliError(f"error during connect: lost the connection to the berth daemon at "
                            f"{self.address}: {error.details()}")
        if why is not None:
            return CliError(f"error during connect: {error.details()}")
        from engine.api.status import StatusCode

        return CliError(f"Error response from daemon: {error.details()}",
                        not_found=error.code() == StatusCode.NOT_FOUND,
                        unimplemented=error.code() == StatusCode.UNIMPLEMENTED,
                        data_loss=error.code() == StatusCode.DATA_LOSS)


def messages() -> Any:
    from engine.api.v1 import containers_pb2

    return containers_pb2
