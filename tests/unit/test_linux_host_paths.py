"""Path and wording tests of the Linux host (no mount, no container)."""

from __future__ import annotations

import pathlib

import pytest

from engine.errors import System
from engine.linux_host import _within


@pytest.mark.parametrize(("path", "top", "inside"), [
    ("/var/lib/berth", "/var/lib/berth", True),
    ("/var/lib/berth/volumes/v/_data", "/var/lib/berth", True),
    ("/var/lib/berth/", "/var/lib/berth", True),
    ("/var/lib/berth-data", "/var/lib/berth", False),  # a prefix of the string only
    ("/var/lib/berthx/a", "/var/lib/berth", False),
    ("/var/lib", "/var/lib/berth", False),
    ("/anything", "/", True),
])
def test_within_compares_whole_components(path: str, top: str, inside: bool) -> None:
    """A bind of /var/lib/berth-data:/x:rshared skipped the shared-mount check as if it
    were the data root's own directory (helper-41)."""
    assert _within(path, top) is inside


def test_a_removal_that_fails_says_why_in_gos_words(tmp_path: pathlib.Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Never Python's "[Errno 1] ... 'a' -> 'b'" with the trash's path (helper-45)."""
    from engine.image import ImageStore
    from engine.linux_host import LinuxHost
    from engine.store import Database

    host = LinuxHost(tmp_path / "root", ImageStore(tmp_path / "root",
                                                  Database(str(tmp_path / "berth.db"))))
    host.container_dir("c1").mkdir()

    def refused(path: str) -> bool:
        raise PermissionError(1, "Operation not permitted", path, None, "/somewhere/trash/x")

    monkeypatch.setattr(host.sweeper, "discard", refused)
    with pytest.raises(System) as failed:
        host.remove("c1", volumes=False)
    assert failed.value.message == (
        f"remove {host.container_dir('c1')}: operation not permitted")
