"""The supervisor's protocol and log pump, against a real supervisor process and real runc."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import time

import pytest

from engine.container_config import ContainerConfig
from engine.service import Engine
from engine.state import ContainerState
from engine.supervisor import PID_FILE, SupervisorClient
from tests.integration.conftest import REASON, RealEngines, available

pytestmark = pytest.mark.skipif(not available, reason=REASON)


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie (the supervisor may be this process's child)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_one_connection_carries_many_requests(engine: Engine, engines: RealEngines) -> None:
    client = SupervisorClient(engines.root)
    first = client._call({"op": "ping"}, 2.0)
    connection = client._local.connection
    for _ in range(20):
        assert client._call({"op": "ping"}, 2.0) == first
    assert client._local.connection is connection  # kept open, not one per request
    assert client._call({"op": "nonsense"}, 2.0)["ok"] is False  # answered, not dropped
    assert client._call({"op": "ping"}, 2.0) == first


def test_a_client_outlives_its_supervisor(engine: Engine, engines: RealEngines) -> None:
    """The kept connection of a supervisor that went away is replaced before it is used."""
    client = SupervisorClient(engines.root)
    old_pid = client.ensure_running()
    os.kill(old_pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and alive(old_pid):
        time.sleep(0.02)
    assert not alive(old_pid)
    new_pid = client.ensure_running()  # starts another one; the stale connection is dropped
    assert new_pid != old_pid
    assert int((engines.root / PID_FILE).read_text()) == new_pid
    record = engine.create(ContainerConfig(image="busybox", command=("sh", "-c", "exit 4")))
    engine.start(record.id)
    assert engine.wait(record.id, timeout=30).exit_code == 4


def test_interleaved_output_of_many_containers_lands_in_each_log(engine: Engine) -> None:
    """One pump thread copies every container's streams; no line goes to the wrong log, and
    each log is complete when the exit is recorded."""
    script = "i=0; while [ $i -lt 200 ]; do echo out-$i; echo err-$i >&2; i=$((i+1)); done"
    records = [engine.create(ContainerConfig(image="busybox", command=("sh", "-c", script)))
               for _ in range(4)]
    for record in records:
        engine.start(record.id)
    for record in records:
        done = engine.wait(record.id, timeout=60)
        assert (done.state, done.exit_code) == (ContainerState.EXITED, 0)
        path = pathlib.Path(engine.saga.host.log_path(record.id))
        entries = [json.loads(line) for line in path.read_text().splitlines()]
        stdout = [entry["log"] for entry in entries if entry["stream"] == "stdout"]
        stderr = [entry["log"] for entry in entries if entry["stream"] == "stderr"]
        assert stdout == [f"out-{index}\n" for index in range(200)]
        assert stderr == [f"err-{index}\n" for index in range(200)]


def test_a_kept_connection_works_above_descriptor_1024(engine: Engine,
                                                       engines: RealEngines) -> None:
    """select() cannot watch such a descriptor; the staleness check must not need it."""
    spare = [os.open("/dev/null", os.O_RDONLY) for _ in range(1100)]
    try:
        client = SupervisorClient(engines.root)
        first = client._call({"op": "ping"}, 2.0)
        assert client._local.connection.fileno() >= 1024
        assert client._call({"op": "ping"}, 2.0) == first
    finally:
        for descriptor in spare:
            os.close(descriptor)
