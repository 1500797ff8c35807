"""Network namespaces of ``none`` mode: made by runc, bound under the data root once created."""

from __future__ import annotations

import os
import pathlib

import pytest

from engine import linux
from engine.container_config import ContainerConfig
from engine.service import Engine
from engine.state import ContainerState
from tests.integration.conftest import REASON, RealEngines, available

pytestmark = pytest.mark.skipif(not available, reason=REASON)


def sleeper(engine: Engine, name: str, **fields: object) -> str:
    record = engine.create(ContainerConfig(image="busybox", command=("sleep", "1000"),
                                           name=name, **fields))  # type: ignore[arg-type]
    engine.start(name)
    return record.id


def netns_path(engine_root: pathlib.Path, container_id: str) -> pathlib.Path:
    return engine_root / "netns" / container_id


@pytest.fixture
def data_root(engines: RealEngines) -> pathlib.Path:
    return engines.root


def test_the_bound_namespace_is_the_containers_own(engine: Engine, data_root: pathlib.Path
                                                   ) -> None:
    container_id = sleeper(engine, "pinned")
    pid = engine.inspect("pinned").pid
    path = netns_path(data_root, container_id)
    assert linux.mounts_under(str(path)) == [str(path)]
    ours = os.stat(path).st_ino
    assert ours == os.stat(f"/proc/{pid}/ns/net").st_ino
    assert ours != os.stat("/proc/self/ns/net").st_ino
    engine.stop("pinned", timeout=0)
    assert engine.inspect("pinned").state is ContainerState.EXITED
    assert not path.exists()  # released with the exit (Cleanup's release_network)


def test_each_start_gets_a_new_namespace(engine: Engine, data_root: pathlib.Path) -> None:
    container_id = sleeper(engine, "again")
    # Held open: a freed namespace's inode number can be given to the next one.
    first = os.open(netns_path(data_root, container_id), os.O_RDONLY)
    try:
        engine.stop("again", timeout=0)
        engine.start("again")
        second = os.stat(netns_path(data_root, container_id)).st_ino
        assert second != os.fstat(first).st_ino
        assert second == os.stat(f"/proc/{engine.inspect('again').pid}/ns/net").st_ino
    finally:
        os.close(first)
    engine.remove("again", force=True)


def test_a_namespace_a_failed_cleanup_left_bound_is_replaced(engine: Engine,
                                                              data_root: pathlib.Path) -> None:
    record = engine.create(ContainerConfig(image="busybox", command=("sleep", "1000"),
                                           name="stale"))
    path = netns_path(data_root, record.id)
    path.touch()
    linux.mount("/proc/self/ns/net", str(path), "none", linux.MS_BIND)  # the daemon's own
    engine.start("stale")
    assert linux.mounts_under(str(path)) == [str(path)]
    assert os.stat(path).st_ino == os.stat(f"/proc/{engine.inspect('stale').pid}/ns/net").st_ino
    engine.remove("stale", force=True)
    assert not path.exists()


def test_host_mode_binds_nothing(engine: Engine, data_root: pathlib.Path) -> None:
    container_id = sleeper(engine, "hostnet", network_mode="host")
    pid = engine.inspect("hostnet").pid
    assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino
    assert not netns_path(data_root, container_id).exists()
    engine.remove("hostnet", force=True)
