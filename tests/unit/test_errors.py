"""Error classes: each error is of exactly one errdefs class; classify() and as_berth_error()."""

from __future__ import annotations

import inspect

import pytest

from engine import errors
from engine.errors import (
    BerthError,
    ConcurrentUpdateConflict,
    Conflict,
    ContainerNotFound,
    ErrorClass,
    FailpointSystem,
    NameInUseConflict,
    NotFound,
    RemovalInProgressConflict,
    System,
    Unknown,
    as_berth_error,
    classify,
)

ALL_CLASSES = [
    cls for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, BerthError) and cls is not BerthError
]
ERRDEFS = [cls for cls in ALL_CLASSES if cls.__bases__ == (BerthError,)]
CONCRETE = [cls for cls in ALL_CLASSES if cls not in ERRDEFS]


def test_one_errdefs_class_per_error_class() -> None:
    assert sorted(cls.error_class for cls in ERRDEFS) == sorted(ErrorClass)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_has_exactly_one_errdefs_class(cls: type[BerthError]) -> None:
    ancestors = [base for base in cls.__mro__ if base in ERRDEFS]
    assert len(ancestors) == 1
    assert cls.error_class is ancestors[0].error_class


def test_concrete_errors_are_named_noun_class() -> None:
    for cls in CONCRETE:
        (errdefs_class,) = (base for base in cls.__mro__ if base in ERRDEFS)
        assert cls.__name__.endswith(errdefs_class.__name__), cls.__name__


@pytest.mark.parametrize(("error", "errdefs_class", "message"), [
    (ContainerNotFound("x"), NotFound, "No such container: x"),
    (NameInUseConflict("web", owner_id="abc123"), Conflict,
     'Conflict. The container name "/web" is already in use by container "abc123". You have '
     "to remove (or rename) that container to be able to reuse that name."),
    (RemovalInProgressConflict("web"), Conflict,
     "removal of container web is already in progress"),
    (ConcurrentUpdateConflict("abc123"), Conflict,
     "container abc123 was modified concurrently, retry"),
    (FailpointSystem("start.mount_rootfs"), System,
     "failpoint start.mount_rootfs: injected error"),
], ids=["ContainerNotFound", "NameInUseConflict", "RemovalInProgressConflict",
        "ConcurrentUpdateConflict", "FailpointSystem"])
def test_concrete_errors(error: BerthError, errdefs_class: type[BerthError], message: str
                         ) -> None:
    assert isinstance(error, errdefs_class)
    assert error.error_class is errdefs_class.error_class
    assert str(error) == message
    assert error.message == message


def test_concrete_errors_keep_their_fields() -> None:
    assert ContainerNotFound("x").reference == "x"
    conflict = NameInUseConflict("web", owner_id="abc123")
    assert (conflict.name, conflict.owner_id) == ("web", "abc123")
    assert RemovalInProgressConflict("web").name == "web"
    assert ConcurrentUpdateConflict("abc123").container_id == "abc123"
    assert FailpointSystem("start.persist").name == "start.persist"


@pytest.mark.parametrize("cls", ERRDEFS, ids=lambda cls: cls.__name__)
def test_classify_a_classified_error(cls: type[BerthError]) -> None:
    assert classify(cls("boom")) is cls.error_class


def test_classify_an_unclassified_error_is_unknown() -> None:
    assert classify(ValueError("boom")) is ErrorClass.UNKNOWN
    assert classify(KeyboardInterrupt()) is ErrorClass.UNKNOWN


def test_as_berth_error() -> None:
    conflict = Conflict("taken")
    assert as_berth_error(conflict) is conflict
    wrapped = as_berth_error(OSError("disk on fire"))
    assert type(wrapped) is Unknown
    assert str(wrapped) == "disk on fire"
    assert str(as_berth_error(RuntimeError())) == "RuntimeError"
