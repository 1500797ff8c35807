"""moby's T8: an auto-remove (``--rm``) container is removed once its exit is recorded; a
restart's own stop does not remove it; recovery removes one whose auto-remove a crash cut."""

from __future__ import annotations

import pathlib

import pytest

from engine.composition import open_engine
from engine.container_config import ContainerConfig
from engine.errors import ContainerNotFound
from engine.failpoint import Failpoints
from engine.service import Engine
from engine.state import ContainerState
from engine.testing import FakeHost, FakeRuntime
from tests.conftest import make_config


def started(engine: Engine, name: str = "tmp") -> str:
    record = engine.create(make_config(name, auto_remove=True))
    engine.start(name)
    return record.id


def assert_removed(engine: Engine, container_id: str, exit_code: int) -> None:
    with pytest.raises(ContainerNotFound):
        engine.inspect(container_id)
    with engine.saga.db.read() as reader:
        stored = reader.container(container_id)
    assert stored is not None and stored.state is ContainerState.REMOVED
    assert stored.exit_code == exit_code  # the journal keeps how it ended


def test_an_exit_on_its_own_removes_it(engine: Engine, fake_runtime: FakeRuntime) -> None:
    container_id = started(engine)
    fake_runtime.exit(container_id, 3)
    assert engine.wait(container_id, timeout=5).exit_code == 3
    assert_removed(engine, container_id, 3)
    assert container_id not in fake_runtime.tasks()


@pytest.mark.parametrize(("operation", "code"), [("stop", 143), ("kill", 137)])
def test_stop_and_kill_remove_it(engine: Engine, operation: str, code: int) -> None:
    container_id = started(engine)
    if operation == "stop":
        engine.stop("tmp", timeout=1)
    else:
        engine.kill("tmp")
    assert_removed(engine, container_id, code)


def test_the_monitors_reap_removes_it(engine: Engine, fake_runtime: FakeRuntime) -> None:
    container_id = started(engine)
    fake_runtime.exit(container_id, 0)
    assert engine.reap() == 1
    assert_removed(engine, container_id, 0)


def test_a_restart_keeps_it(engine: Engine) -> None:
    started(engine)
    engine.restart("tmp", timeout=0)
    assert engine.inspect("tmp").state is ContainerState.RUNNING


def test_recovery_removes_one_a_crash_left_exited(tmp_path: pathlib.Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    runtime, host = FakeRuntime(), FakeHost(str(tmp_path))
    engine, _ = open_engine(tmp_path, runtime=runtime, host=host, failpoints=Failpoints())
    container_id = started(engine)
    # The daemon dies right after the exit's commit, before its auto-remove began.
    monkeypatch.setattr(engine, "_remove_if_auto", lambda record, context: None)
    runtime.exit(container_id, 5)
    assert engine.wait(container_id, timeout=5).state is ContainerState.EXITED
    engine.saga.db.close()
    reopened, report = open_engine(tmp_path, runtime=runtime, host=host,
                                   failpoints=Failpoints())
    assert container_id in report.removals
    assert_removed(reopened, container_id, 5)


def test_a_removed_containers_row_keeps_its_secrets_names_not_their_values(
        engine: Engine) -> None:
    record = engine.create(ContainerConfig(image="busybox", command=("true",), name="keeper",
                                           secrets=("token=s3cr3t", "other=x=y")))
    engine.remove(record.id)
    with engine.saga.db.read(snapshot=False) as reader:
        stored = reader.container(record.id)
    assert stored is not None and stored.state is ContainerState.REMOVED
    assert stored.config["secrets"] == ["token", "other"]
