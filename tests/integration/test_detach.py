"""Releases that detach: a mount is out of the mount table when the release returns, and its
filesystem is torn down when the sweeper closes the descriptor that still holds it."""

from __future__ import annotations

import os
import pathlib

import pytest

from engine import linux
from engine.container_config import ContainerConfig
from engine.service import Engine
from engine.sweeper import Sweeper
from tests.integration.conftest import REASON, available
from tests.unit.test_sweeper import blocked

pytestmark = pytest.mark.skipif(not available, reason=REASON)


def test_detach_takes_the_mount_out_of_the_table_and_keeps_the_filesystem(
        tmp_path: pathlib.Path) -> None:
    target = tmp_path / "shm"
    target.mkdir()
    linux.mount("tmpfs", str(target), "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "size=1024k")
    (target / "kept").write_text("still readable through the descriptor")
    descriptor = linux.detach(str(target))
    assert descriptor is not None
    try:
        assert linux.mounts_under(str(tmp_path)) == []
        assert not os.path.ismount(target)
        assert not (target / "kept").exists()  # the directory underneath is empty again
        # The detached filesystem is still alive behind the descriptor.
        directory = os.open(f"/proc/self/fd/{descriptor}", os.O_RDONLY | os.O_DIRECTORY)
        child = os.open("kept", os.O_RDONLY, dir_fd=directory)
        assert os.read(child, 100).startswith(b"still readable")
        os.close(child)
        os.close(directory)
    finally:
        os.close(descriptor)


def test_detach_of_what_is_not_mounted_returns_none(tmp_path: pathlib.Path) -> None:
    (tmp_path / "plain").mkdir()
    assert linux.detach(str(tmp_path / "plain")) is None
    assert linux.detach(str(tmp_path / "missing")) is None


def test_an_overlay_released_through_the_sweeper_leaves_nothing(tmp_path: pathlib.Path,
                                                                busybox_rootfs: pathlib.Path
                                                                ) -> None:
    sweeper = Sweeper(tmp_path / "trash")
    container = tmp_path / "containers" / "c1"
    for name in ("upper", "work", "rootfs"):
        (container / name).mkdir(parents=True)
    linux.mount("overlay", str(container / "rootfs"), "overlay", 0,
                f"lowerdir={busybox_rootfs},upperdir={container}/upper,"
                f"workdir={container}/work")
    (container / "rootfs" / "changed").write_text("a change in the upper layer")
    descriptor = linux.detach(str(container / "rootfs"))
    assert descriptor is not None
    sweeper.close_later(descriptor, str(container / "rootfs"))
    assert sweeper.discard(str(container))
    assert sweeper.drain(timeout=30)
    assert linux.mounts_under(str(tmp_path)) == []
    assert [path for path in (tmp_path / "trash").rglob("*") if path.is_file()] == []
    assert not container.exists()


def test_a_tree_on_another_filesystem_than_the_trash_is_freed_at_once(
        tmp_path: pathlib.Path) -> None:
    """A data root whose containers directory is a mount of its own: no rename across."""
    elsewhere = tmp_path / "containers"
    elsewhere.mkdir()
    linux.mount("tmpfs", str(elsewhere), "tmpfs", 0, "size=1024k")
    try:
        (elsewhere / "c1" / "upper").mkdir(parents=True)
        (elsewhere / "c1" / "upper" / "file").write_text("x")
        sweeper = Sweeper(tmp_path / "trash")
        assert sweeper.discard(str(elsewhere / "c1")) is True
        assert not (elsewhere / "c1").exists()  # freed synchronously, not moved
    finally:
        linux.unmount(str(elsewhere))


def test_a_start_settles_the_overlay_its_last_exit_detached(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop then start at once: the old overlay on the same upper directory is torn down
    before the new one is mounted, even while the sweeper is busy with something else."""
    host = engine.saga.host
    record = engine.create(ContainerConfig(image="busybox", command=("sleep", "60")))
    engine.start(record.id)
    release = blocked(host.sweeper, monkeypatch)  # the sweeper's thread is now held
    try:
        engine.stop(record.id, timeout=0)
        rootfs = str(host.container_dir(record.id) / "rootfs")
        assert rootfs in host.sweeper._descriptors  # detached, its teardown still queued
        engine.start(record.id)
        assert rootfs not in host.sweeper._descriptors  # settled before the new mount
        assert linux.mounts_under(rootfs) == [rootfs]
    finally:
        release.set()
    engine.stop(record.id, timeout=0)
