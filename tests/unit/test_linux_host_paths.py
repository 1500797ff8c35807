"""Path tests of the Linux host that read no filesystem."""

from __future__ import annotations

import pytest

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
