"""Error classes mirroring Docker's errdefs.

Contract: every error that crosses a module boundary is an instance of exactly one class below
(``ErrorClass`` names it). Concrete errors are named ``<Noun><Class>`` and subclass exactly one
class. The API edge maps the class to a gRPC status once; nothing below it knows about gRPC.
"""

from __future__ import annotations

import enum


class ErrorClass(enum.StrEnum):
    """The errdefs classes, in the order Docker's HTTP layer checks them."""

    NOT_FOUND = "NotFound"
    INVALID_PARAMETER = "InvalidParameter"
    CONFLICT = "Conflict"
    UNAUTHORIZED = "Unauthorized"
    UNAVAILABLE = "Unavailable"
    FORBIDDEN = "Forbidden"
    NOT_MODIFIED = "NotModified"
    NOT_IMPLEMENTED = "NotImplemented"
    SYSTEM = "System"
    UNKNOWN = "Unknown"
    CANCELLED = "Cancelled"
    DEADLINE = "Deadline"
    DATA_LOSS = "DataLoss"


class BerthError(Exception):
    """Base of every classified error. Never raised itself: raise one of the classes below."""

    error_class: ErrorClass = ErrorClass.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(BerthError):
    error_class = ErrorClass.NOT_FOUND


class InvalidParameter(BerthError):
    error_class = ErrorClass.INVALID_PARAMETER


class Conflict(BerthError):
    error_class = ErrorClass.CONFLICT


class Unauthorized(BerthError):
    error_class = ErrorClass.UNAUTHORIZED


class Unavailable(BerthError):
    error_class = ErrorClass.UNAVAILABLE


class Forbidden(BerthError):
    error_class = ErrorClass.FORBIDDEN


class NotModified(BerthError):
    """The request was valid and changed nothing (HTTP 304); not an error for the CLI."""

    error_class = ErrorClass.NOT_MODIFIED


class NotImplemented_(BerthError):
    error_class = ErrorClass.NOT_IMPLEMENTED


class System(BerthError):
    error_class = ErrorClass.SYSTEM


class Unknown(BerthError):
    error_class = ErrorClass.UNKNOWN


class Cancelled(BerthError):
    error_class = ErrorClass.CANCELLED


class Deadline(BerthError):
    error_class = ErrorClass.DEADLINE


class DataLoss(BerthError):
    error_class = ErrorClass.DATA_LOSS


# Concrete errors that carry structured fields.


class ContainerNotFound(NotFound):
    def __init__(self, reference: str) -> None:
        super().__init__(f"No such container: {reference}")
        self.reference = reference


class NameInUseConflict(Conflict):
    """A container name is taken (gRPC ALREADY_EXISTS at the edge)."""

    def __init__(self, name: str, *, owner_id: str) -> None:
        super().__init__(
            f'Conflict. The container name "/{name}" is already in use by container '
            f'"{owner_id}". You have to remove (or rename) that container to be able to '
            "reuse that name."
        )
        self.name = name
        self.owner_id = owner_id


class RemovalInProgressConflict(Conflict):
    """A second removal raced the first (gRPC ABORTED at the edge)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"removal of container {name} is already in progress")
        self.name = name


class ConcurrentUpdateConflict(Conflict):
    """A compare-and-set update found the row changed by another writer."""

    def __init__(self, container_id: str) -> None:
        super().__init__(f"container {container_id} was modified concurrently, retry")
        self.container_id = container_id


class FailpointSystem(System):
    """An error injected by a failpoint."""

    def __init__(self, name: str) -> None:
        super().__init__(f"failpoint {name}: injected error")
        self.name = name


def classify(error: BaseException) -> ErrorClass:
    """Return the class of ``error``; an unclassified exception is ``Unknown``."""
    if isinstance(error, BerthError):
        return error.error_class
    return ErrorClass.UNKNOWN


def as_berth_error(error: BaseException) -> BerthError:
    """Return ``error`` itself if classified, else wrap its text as ``Unknown``."""
    if isinstance(error, BerthError):
        return error
    return Unknown(str(error) or type(error).__name__)


_BASES: dict[ErrorClass, type[BerthError]] = {
    base.error_class: base for base in (
        NotFound, InvalidParameter, Conflict, Unauthorized, Unavailable, Forbidden, NotModified,
        NotImplemented_, System, Unknown, Cancelled, Deadline, DataLoss)
}


def wrapped(error: BaseException, context: str) -> BerthError:
    """``context: <error>``, of the error's own class (pkg/errors' Wrap keeps the class)."""
    cause = as_berth_error(error)
    return _BASES[cause.error_class](f"{context}: {cause.message}")
