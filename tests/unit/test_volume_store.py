"""The volume store on its own: names, and a create racing a removal."""

from __future__ import annotations

import pathlib
import threading

import pytest

from engine.errors import InvalidParameter, NotFound
from engine.store import Database
from engine.sweeper import Sweeper
from engine.volume import VolumeStore


@pytest.fixture
def volumes(tmp_path: pathlib.Path) -> VolumeStore:
    return VolumeStore(tmp_path / "root", Database(str(tmp_path / "berth.db")),
                       threading.Lock(), Sweeper(tmp_path / "root" / "trash"))


def test_a_name_longer_than_a_directorys_is_refused_or_not_found(volumes: VolumeStore) -> None:
    """It was an internal error with the OSError's text (ENAMETOOLONG), for each call."""
    name = "a" * 256
    with pytest.raises(InvalidParameter) as info:
        volumes.create(name)
    assert "volume name is too long" in str(info.value)
    with pytest.raises(NotFound):
        volumes.inspect(name)
    with pytest.raises(NotFound):
        volumes.remove(name)
    assert volumes.create("b" * 255).name == "b" * 255


def test_a_create_racing_a_removal_is_either_made_or_gone_never_an_error(
        volumes: VolumeStore) -> None:
    """The removal renamed the directory away between the create's mkdir and its look at
    the result: FileNotFoundError, FileExistsError or NotFound from the create."""
    errors: list[BaseException] = []
    done = threading.Event()

    def remove() -> None:
        while not done.is_set():
            volumes.remove("racy", force=True)

    remover = threading.Thread(target=remove)
    remover.start()
    try:
        for _ in range(3000):
            try:
                assert volumes.create("racy").name == "racy"
            except BaseException as exc:
                errors.append(exc)
    finally:
        done.set()
        remover.join(30)
    assert errors == []
