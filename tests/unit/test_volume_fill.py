"""A named volume that is new or empty is filled from the container's files, once, whoever
starts first (moby's copyExistingContents)."""

from __future__ import annotations

import os
import pathlib
import stat
import threading
from typing import Any

import pytest

from engine.image import ImageStore
from engine.linux_host import LinuxHost
from engine.store import Database

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown)")


@pytest.fixture
def host(tmp_path: pathlib.Path) -> LinuxHost:
    root = tmp_path / "root"
    return LinuxHost(root, ImageStore(root, Database(str(tmp_path / "berth.db"))))


def rootfs(tmp_path: pathlib.Path) -> dict[str, Any]:
    seed = tmp_path / "rootfs" / "seed"
    seed.mkdir(parents=True, mode=0o750)
    (seed / "file").write_text("image\n")
    os.chown(seed, 1000, 1000)
    return {"path": str(tmp_path / "rootfs")}


def mount(host: LinuxHost, name: str, *modes: str) -> dict[str, Any]:
    return {"source": str(host.root / "volumes" / name / "_data"), "destination": "/seed",
            "volume": name, "modes": list(modes)}


def test_a_new_volume_is_filled_with_the_directorys_owner_and_mode(
        host: LinuxHost, tmp_path: pathlib.Path) -> None:
    host._prepare_volume(mount(host, "new"), rootfs(tmp_path))
    data = host.root / "volumes" / "new" / "_data"
    assert (data / "file").read_text() == "image\n"
    info = data.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (1000, 0o750)
    assert os.listdir(host.sweeper.directory) == []  # the copy was moved, nothing left


def test_an_empty_volume_is_filled_in_place_and_a_used_one_is_left(
        host: LinuxHost, tmp_path: pathlib.Path) -> None:
    """``volume create`` then ``-v``: filled, as Docker's; in place, for a container that
    may have bound the directory already."""
    data = host.root / "volumes" / "made" / "_data"
    data.mkdir(parents=True)
    inode = data.stat().st_ino
    image = rootfs(tmp_path)
    host._prepare_volume(mount(host, "made"), image)
    assert (data / "file").read_text() == "image\n" and data.stat().st_ino == inode
    assert data.stat().st_uid == 1000
    (data / "file").write_text("user\n")
    host._prepare_volume(mount(host, "made"), image)
    assert (data / "file").read_text() == "user\n"


def test_a_fill_a_crash_cut_short_in_place_is_finished_by_the_next_start(
        host: LinuxHost, tmp_path: pathlib.Path) -> None:
    """Killed between two moves into an empty volume's _data, a fill left part of the
    image's files there; the next start found the volume not empty and never filled the
    rest (helper-41: 217 of 30000 files, for good)."""
    volume = host.root / "volumes" / "cut"
    data = volume / "_data"
    data.mkdir(parents=True)
    image = rootfs(tmp_path)
    # The state a crash after two of the moves leaves: the rest is still in the copy.
    copy = volume / ".filled"
    copy.mkdir(mode=0o750)
    os.chown(copy, 1000, 1000)
    for index in range(5):
        (data if index < 2 else copy).joinpath(f"f{index}").write_text(str(index))
    (copy / "file").write_text("image\n")
    os.chown(data, 0, 0)
    (volume / ".filling-0123456789ab").mkdir()  # and a copy cut short, of another start
    (volume / ".filling-0123456789ab" / "half").write_text("x")
    host._prepare_volume(mount(host, "cut"), image)
    assert sorted(os.listdir(data)) == ["f0", "f1", "f2", "f3", "f4", "file"]
    assert (data / "f3").read_text() == "3"
    info = data.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (1000, 0o750)
    assert os.listdir(volume) == ["_data"]


def test_nocopy_leaves_a_new_volume_empty(host: LinuxHost, tmp_path: pathlib.Path) -> None:
    host._prepare_volume(mount(host, "bare", "nocopy"), rootfs(tmp_path))
    assert os.listdir(host.root / "volumes" / "bare" / "_data") == []


def test_two_starts_sharing_a_new_volume_fill_it_once(host: LinuxHost,
                                                     tmp_path: pathlib.Path) -> None:
    """Both saw it missing and renamed their copies onto it: the second failed with
    ENOTEMPTY (5 of 5 tries with two real starts)."""
    image = rootfs(tmp_path)
    for index in range(200):
        (pathlib.Path(image["path"]) / "seed" / f"f{index}").write_text("x")
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        try:
            host._prepare_volume(mount(host, "shared"), image)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(os.listdir(host.root / "volumes" / "shared" / "_data")) == 201
    assert os.listdir(host.root / "volumes" / "shared") == ["_data"]
    assert os.listdir(host.sweeper.directory) == []
