"""Real containers: runc, overlayfs, namespaces, the supervisor. We are root on these machines.

Every test gets its own data root with the busybox image imported, and after every test the
leak check runs: no mount under the data root, no runc container, no network namespace, no
leftover bundle, and the supervisor of that root is stopped.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
from collections.abc import Iterator

import pytest

from engine import linux
from engine.composition import open_engine
from engine.failpoint import Failpoints
from engine.service import Engine
from engine.supervisor import PID_FILE
from engine.testing.rootfs import build_busybox_rootfs

REASON = "needs root and runc (.ci/setup installs runc and busybox-static)"
available = os.geteuid() == 0 and shutil.which("runc") is not None and os.path.exists(
    "/bin/busybox")



@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return build_busybox_rootfs(tmp_path_factory.mktemp("image") / "rootfs")


def leaks(root: pathlib.Path) -> dict[str, object]:
    """Everything a container could leave behind under ``root``; empty when clean."""
    found: dict[str, object] = {}
    mounts = linux.mounts_under(str(root))
    if mounts:
        found["mounts"] = mounts
    listing = subprocess.run(["runc", "--root", str(root / "runc"), "list", "--format",
                              "json"], capture_output=True, text=True, check=False).stdout
    if listing.strip() not in ("", "null", "[]"):
        found["runc"] = listing
    netns = [p.name for p in (root / "netns").glob("*")] if (root / "netns").exists() else []
    if netns:
        found["netns"] = netns
    bundles = [str(p) for p in (root / "containers").glob("*/bundle")]
    if bundles:
        found["bundles"] = bundles
    # What releases moved out of sight must be freed once the engines drained: only the
    # sweepers' own (empty) directories may stay.
    trash = sorted(str(path) for path in (root / "trash").rglob("*")
                   if not (path.is_dir() and not any(path.iterdir())))
    if trash:
        found["trash"] = trash
    return found


def stop_supervisor(root: pathlib.Path) -> None:
    try:
        pid = int((root / PID_FILE).read_text())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        pass


class RealEngines:
    """Opens engines on one data root (a restart is opening another one on the same root)."""

    def __init__(self, root: pathlib.Path, rootfs: pathlib.Path) -> None:
        self.root = root
        self.rootfs = rootfs
        self.opened: list[Engine] = []

    def open(self, failpoints: Failpoints | None = None) -> Engine:
        engine, _ = open_engine(self.root, backend="runc",
                                failpoints=failpoints or Failpoints())
        self.opened.append(engine)
        assert engine.images is not None
        if not engine.images.list_images():
            engine.images.import_image(str(self.rootfs), "busybox")
        return engine

    def close(self) -> None:
        for engine in self.opened:
            engine.close()


@pytest.fixture
def engines(tmp_path: pathlib.Path, busybox_rootfs: pathlib.Path) -> Iterator[RealEngines]:
    root = tmp_path / "root"
    opened = RealEngines(root, busybox_rootfs)
    try:
        yield opened
        cleaner, _ = open_engine(root, backend="runc", failpoints=Failpoints())
        for record in cleaner.list_containers(all=True):
            cleaner.remove(record.id, force=True)
        cleaner.close()
        opened.close()
        assert leaks(root) == {}
    finally:
        stop_supervisor(root)


@pytest.fixture
def engine(engines: RealEngines) -> Engine:
    return engines.open()
