"""A client stub built from a generated module's service descriptor, over ``Channel``.

``Stub(channel, containers_pb2.DESCRIPTOR.services_by_name["Containers"])`` offers each method
of the service as an attribute, called like grpc's stubs: ``stub.Start(request, timeout=...,
metadata=...)`` returns the reply message, and a server-streaming method returns an iterator of
replies. Only the descriptors are needed, not the ``*_pb2_grpc`` modules (which import grpc).
Errors: CallError (the call's status, INTERNAL for a reply that does not parse), TypeError (a
request of another type). Client-streaming methods are not offered (berth has none).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

from engine.api.channel import Channel, RequestMetadata
from engine.api.status import CallError, StatusCode


class Method:
    """One method of a service: call it with its request message."""

    def __init__(self, channel: Channel, service: ServiceDescriptor,
                 method: MethodDescriptor) -> None:
        self.path = f"/{service.full_name}/{method.name}"
        self.server_streaming: bool = method.server_streaming
        self.request_type: type[Message] = GetMessageClass(method.input_type)
        self.reply_type: type[Message] = GetMessageClass(method.output_type)
        self._channel = channel

    def __call__(self, request: Message, *, timeout: float | None = None,
                 metadata: RequestMetadata = ()) -> Any:
        if not isinstance(request, self.request_type):
            raise TypeError(f"{self.path} takes {self.request_type.__name__}, "
                            f"not {type(request).__name__}")
        data = request.SerializeToString()
        if self.server_streaming:
            return self._replies(self._channel.unary_stream(self.path, data, timeout=timeout,
                                                            metadata=metadata))
        return self._parse(self._channel.unary_unary(self.path, data, timeout=timeout,
                                                     metadata=metadata))

    def _replies(self, replies: Iterator[bytes]) -> Iterator[Message]:
        try:
            for reply in replies:
                yield self._parse(reply)
        finally:
            close = getattr(replies, "close", None)
            if close is not None:
                close()  # cancels the call if it is not over

    def _parse(self, data: bytes) -> Message:
        try:
            return self.reply_type.FromString(data)
        except DecodeError as error:
            raise CallError(StatusCode.INTERNAL,
                            f"a {self.reply_type.__name__} reply that does not parse: {error}"
                            ) from None


class Stub:
    """The methods of ``service`` on ``channel``, as attributes named like the methods."""

    def __init__(self, channel: Channel, service: ServiceDescriptor) -> None:
        self.service = service.full_name
        self._methods = {method.name: Method(channel, service, method)
                         for method in service.methods if not method.client_streaming}

    def __getattr__(self, name: str) -> Method:
        if name.startswith("_"):  # never a method; and _methods itself before it is set
            raise AttributeError(name)
        try:
            return self._methods[name]
        except KeyError:
            raise AttributeError(f"{self.service} has no method {name}") from None
