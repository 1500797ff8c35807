"""Shared fixtures: an engine on a temporary data root, with the in-process fakes."""

from __future__ import annotations

import pathlib
import subprocess
from collections.abc import Iterator

import pytest

from engine.composition import open_engine
from engine.config import ConfigSnapshot
from engine.container_config import ContainerConfig
from engine.failpoint import Failpoints
from engine.service import Engine
from engine.testing import FakeHost, FakeRuntime


def _shared() -> pathlib.Path:
    """``../shared`` beside the checkout (as on CI); for a clone of a local checkout in a
    temporary directory (a rehearsal of CI), the one beside the checkout it was cloned from."""
    checkout = pathlib.Path(__file__).resolve().parents[1]
    beside = checkout.parent / "shared"
    if beside.is_dir():
        return beside
    origin = subprocess.run(["git", "-C", str(checkout), "config", "--get", "remote.origin.url"],
                            capture_output=True, text=True, check=False).stdout.strip()
    if origin and pathlib.Path(origin).is_dir():
        return pathlib.Path(origin).resolve().parent / "shared"
    return beside


SHARED = _shared()


@pytest.fixture
def fake_runtime() -> FakeRuntime:
    return FakeRuntime()


@pytest.fixture
def fake_host(tmp_path: pathlib.Path) -> FakeHost:
    return FakeHost(str(tmp_path))


@pytest.fixture
def engine(tmp_path: pathlib.Path, fake_runtime: FakeRuntime, fake_host: FakeHost
           ) -> Iterator[Engine]:
    built, _ = open_engine(tmp_path, runtime=fake_runtime, host=fake_host,
                           failpoints=Failpoints(), config=ConfigSnapshot(), backend="fake")
    yield built
    built.saga.db.close()


def make_config(name: str = "", **overrides: object) -> ContainerConfig:
    """A valid container configuration; keyword arguments override fields."""
    fields: dict[str, object] = {"image": "busybox", "command": ("sh", "-c", "sleep 1000")}
    if name:
        fields["name"] = name
    fields.update(overrides)
    return ContainerConfig(**fields)  # type: ignore[arg-type]
