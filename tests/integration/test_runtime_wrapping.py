"""Docker's TestRuntimeWrapping story with real runc: reload a wrapped runtime's arguments, drop
them, delete the runtime; the running container keeps its wrapper byte-identical and stays
manageable, and every new start uses the newest definition."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest

from engine.container_config import ContainerConfig
from engine.errors import InvalidParameter
from engine.reload import ConfigKeeper
from engine.service import Engine
from engine.state import ContainerState
from tests.integration.conftest import REASON, RealEngines, available

pytestmark = pytest.mark.skipif(not available, reason=REASON)
RUNC = shutil.which("runc") or "runc"


def configure(path: pathlib.Path, runtimes: dict[str, object]) -> None:
    path.write_text(json.dumps({"runtimes": runtimes}))


def start_on_wrapped(engine: Engine, name: str) -> str:
    engine.create(ContainerConfig(image="busybox", command=("sleep", "1000"), name=name,
                                  runtime="wrapped"))
    engine.start(name)
    binary = engine.inspect(name).runtime_binary
    assert binary is not None
    return binary


def test_runtime_wrapping(engines: RealEngines, tmp_path: pathlib.Path) -> None:
    engine = engines.open()
    config_file = tmp_path / "daemon.json"
    configure(config_file, {"wrapped": {"path": RUNC, "runtimeArgs": ["--debug"]}})
    keeper = ConfigKeeper(path=str(config_file), root=engines.root, store=engine.config,
                          db=engine.saga.db, events=engine.saga.events)
    keeper.start()
    first = start_on_wrapped(engine, "long")
    assert first.startswith(str(engines.root / "runtimes" / "wrapped."))
    original = pathlib.Path(first).read_bytes()
    assert b"--debug" in original

    def still_manageable() -> None:
        assert pathlib.Path(first).read_bytes() == original
        engine.pause("long")
        assert engine.inspect("long").state is ContainerState.PAUSED
        engine.unpause("long")
        assert engine.inspect("long").state is ContainerState.RUNNING

    configure(config_file, {"wrapped": {"path": RUNC, "runtimeArgs": ["--debug",
                                                                       "--rootless=false"]}})
    keeper.reload()
    still_manageable()
    second = start_on_wrapped(engine, "after-change")
    assert second != first and b"--rootless=false" in pathlib.Path(second).read_bytes()

    configure(config_file, {"wrapped": {"path": RUNC}})
    keeper.reload()
    still_manageable()
    assert start_on_wrapped(engine, "after-drop") == RUNC

    engine.create(ContainerConfig(image="busybox", command=("true",), name="after-delete",
                                  runtime="wrapped"))
    configure(config_file, {})
    keeper.reload()
    still_manageable()
    with pytest.raises(InvalidParameter, match=r"^unknown or invalid runtime name: wrapped$"):
        engine.start("after-delete")
    stopped = engine.stop("long", timeout=1)
    assert stopped.state is ContainerState.EXITED
    assert pathlib.Path(first).read_bytes() == original
    for name in ("after-change", "after-drop"):
        engine.stop(name, timeout=0)


def test_the_containerd_type_name_of_runc_runs_runc(engines: RealEngines) -> None:
    """Docker's built-in io.containerd.runc.v2 is runc: a container started with that name runs
    on runc and is locked to it."""
    engine = engines.open()
    engine.create(ContainerConfig(image="busybox", command=("sh", "-c", "exit 4"), name="typed",
                                  runtime="io.containerd.runc.v2"))
    engine.start("typed")
    assert engine.wait("typed", timeout=30).exit_code == 4
    record = engine.inspect("typed")
    assert (record.runtime, record.runtime_binary) == ("io.containerd.runc.v2", "runc")
