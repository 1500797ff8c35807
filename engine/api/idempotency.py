"""Request ids: a mutating call retried with the same id gets the first call's outcome back.

The outcome (the serialized reply, or the status code and message of the error) is stored in
the ``api_requests`` table when the first call ends, so it survives a daemon restart. Calls
with the same id are serialized by a lock, so the work is never done twice. The id names one
request: with it is stored the SHA-256 of the request's parameters, and the id reused with
other parameters (or for another method) is refused, never answered with the first outcome.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from engine.api.errors import ReplayedFailure, status_of
from engine.errors import BerthError, InvalidParameter
from engine.saga import now_ms
from engine.store import Database

Reply = TypeVar("Reply", bound=Message)
MAX_REQUEST_ID = 128
LOCK_STRIPES = 64  # calls with one id are serialized; memory stays bounded


class RequestLedger:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._locks = [threading.Lock() for _ in range(LOCK_STRIPES)]

    def once(self, method: str, request: Message, reply_type: type[Reply],
             call: Callable[[], Reply]) -> Reply:
        """Run ``call`` unless ``request``'s ``request_id`` already ran; then answer what it
        answered.

        Raises InvalidParameter (an id too long, or reused for another method or with other
        parameters)."""
        # Every mutating request has the field; Message does not declare it.
        request_id: str = getattr(request, "request_id")  # noqa: B009
        if not request_id:
            return call()
        if len(request_id) > MAX_REQUEST_ID:
            raise InvalidParameter(f"request id longer than {MAX_REQUEST_ID} characters")
        digest = parameters_digest(request)
        with self._locks[hash(request_id) % LOCK_STRIPES]:
            with self._db.read(snapshot=False) as reader:
                stored = reader.request(request_id)
            if stored is not None:
                if stored.method != method:
                    raise InvalidParameter(
                        f"request id {request_id} was used for {stored.method}")
                # A row from before digests were kept (NULL) is answered as it was.
                if stored.request_digest is not None and stored.request_digest != digest:
                    raise InvalidParameter(
                        f"request id {request_id} was used with other parameters")
                if stored.code == grpc.StatusCode.OK.value[0]:
                    replayed: Reply = reply_type.FromString(stored.response or b"")
                    return replayed
                code = next(c for c in grpc.StatusCode if c.value[0] == stored.code)
                error_class, _, message = stored.message.partition(":")
                raise ReplayedFailure(code, message, error_class)
            try:
                reply = call()
            except BerthError as error:
                self._store(request_id, method, digest, status_of(error).value[0],
                            f"{error.error_class.value}:{error.message}", None)
                raise
            self._store(request_id, method, digest, grpc.StatusCode.OK.value[0], "",
                        reply.SerializeToString())
            return reply

    def _store(self, request_id: str, method: str, digest: str, code: int, message: str,
               response: bytes | None) -> None:
        with self._db.write() as writer:
            writer.put_request(request_id, method, digest, code, message, response, now_ms())


def parameters_digest(request: Message) -> str:
    """The SHA-256 of ``request`` without its request id, serialized deterministically (map
    fields in key order): equal for two requests with the same parameters."""
    parameters = type(request)()
    parameters.CopyFrom(request)
    parameters.ClearField("request_id")
    return hashlib.sha256(parameters.SerializeToString(deterministic=True)).hexdigest()
