"""Releases that detach: a mount is out of the mount table when the release returns, and its
filesystem is torn down when the sweeper closes the descriptor that still holds it."""

from __future__ import annotations

import os
import pathlib

import pytest

from engine import linux
from engine.sweeper import Sweeper
from tests.integration.conftest import REASON, available

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
        child = os.open("kept", os.O_RDONLY, dir_fd=os.open(f"/proc/self/fd/{descriptor}",
                                                             os.O_RDONLY | os.O_DIRECTORY))
        assert os.read(child, 100).startswith(b"still readable")
        os.close(child)
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
    sweeper.close_later(descriptor)
    assert sweeper.discard(str(container))
    assert sweeper.drain(timeout=30)
    assert linux.mounts_under(str(tmp_path)) == []
    assert os.listdir(tmp_path / "trash") == []
    assert not container.exists()
