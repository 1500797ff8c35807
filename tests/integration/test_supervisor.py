"""The supervisor's protocol and log pump, against a real supervisor process and real runc."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import threading
import time

import pytest

from engine.container_config import ContainerConfig
from engine.oci_spec import build_spec
from engine.service import Engine
from engine.state import ContainerState
from engine.supervisor import PID_FILE, SupervisorClient
from tests.integration.conftest import REASON, RealEngines, available

pytestmark = pytest.mark.skipif(not available, reason=REASON)
RUNC = shutil.which("runc") or "runc"


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


def _bundle(tmp_path: pathlib.Path, rootfs: pathlib.Path) -> pathlib.Path:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    spec = build_spec("orphans", {"cmd": ["sleep", "1000"], "network_mode": "none"},
                      {"rootfs": {"path": str(rootfs)}})
    spec["linux"]["namespaces"] = [
        ns for ns in spec["linux"]["namespaces"] if ns["type"] != "network"
    ] + [{"type": "network"}]
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


def _wrapper(tmp_path: pathlib.Path, body: str) -> str:
    wrapper = tmp_path / "runc-wrapper"
    wrapper.write_text(f"#!/bin/sh\n{body}\n")
    wrapper.chmod(0o755)
    return str(wrapper)


def _reaped(pid: int, seconds: float = 10) -> bool:
    """Whether ``pid`` is gone altogether (not left a zombie) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while os.path.exists(f"/proc/{pid}"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _runc(engines: RealEngines, *arguments: str) -> str:
    return subprocess.run([RUNC, "--root", str(engines.root / "runc"), *arguments],
                          capture_output=True, text=True, check=False).stdout


def test_an_orphan_re_parented_to_the_supervisor_is_reaped(
        engine: Engine, engines: RealEngines, busybox_rootfs: pathlib.Path,
        tmp_path: pathlib.Path) -> None:
    """A runtime wrapper that daemonizes a child (as a hook may): its parent gone, the child
    is re-parented to the supervisor, the subreaper, which must reap it when it ends."""
    orphan_file = tmp_path / "orphan.pid"
    wrapper = _wrapper(tmp_path, f'( sleep 0.3 & echo $! > {orphan_file} )\nexec {RUNC} "$@"')
    client = SupervisorClient(engines.root)
    reply = client.create("orphans", str(_bundle(tmp_path, busybox_rootfs)), wrapper,
                          str(engines.root / "runc"), str(tmp_path / "log.json"))
    try:
        assert reply["ok"], reply
        assert _reaped(int(orphan_file.read_text()))
    finally:
        _runc(engines, "delete", "--force", "orphans")
        client.wait("orphans", 10)  # the init's exit, recorded once it was killed
        (engines.root / "exits" / "orphans.json").unlink(missing_ok=True)


def test_the_init_of_a_create_without_a_pid_file_is_reaped(
        engine: Engine, engines: RealEngines, busybox_rootfs: pathlib.Path,
        tmp_path: pathlib.Path) -> None:
    """runc made the init, but the runtime left no pid file: the create fails, the delete
    that undoes it kills the init, and the supervisor, its parent, reaps it."""
    wrapper = _wrapper(tmp_path, f'{RUNC} "$@"; status=$?\nrm -f {tmp_path}/bundle/init.pid\n'
                                 'exit $status')
    client = SupervisorClient(engines.root)
    reply = client.create("no-pid", str(_bundle(tmp_path, busybox_rootfs)), wrapper,
                          str(engines.root / "runc"), str(tmp_path / "log.json"))
    assert not reply["ok"] and "no init pid" in reply["error"]
    init = int(json.loads(_runc(engines, "state", "no-pid"))["pid"])
    _runc(engines, "delete", "--force", "no-pid")
    assert _reaped(init)


def test_an_init_killed_before_it_was_adopted_reports_its_exit(
        engine: Engine, engines: RealEngines, busybox_rootfs: pathlib.Path,
        tmp_path: pathlib.Path) -> None:
    """The init is reaped by the main loop before its create knows the pid (the runtime's
    create killed it before returning): the create claims that status, it is not lost."""
    bundle = _bundle(tmp_path, busybox_rootfs)
    wrapper = _wrapper(tmp_path, f'{RUNC} "$@" || exit $?\nkill -9 "$(cat {bundle}/init.pid)"\n'
                                 "sleep 0.2")
    client = SupervisorClient(engines.root)
    reply = client.create("killed", str(bundle), wrapper, str(engines.root / "runc"),
                          str(tmp_path / "log.json"))
    assert reply["ok"], reply
    try:
        waited = client.wait("killed", 10)
        assert (waited["exited"], waited["exit_code"]) == (True, 137)
    finally:
        _runc(engines, "delete", "--force", "killed")
        (engines.root / "exits" / "killed.json").unlink(missing_ok=True)


def test_orphans_are_reaped_while_another_create_runs(
        engine: Engine, engines: RealEngines, busybox_rootfs: pathlib.Path,
        tmp_path: pathlib.Path) -> None:
    """A slow create (a hook that takes its time) does not hold back the reaping of other
    children."""
    slow_dir, quick_dir = tmp_path / "slow", tmp_path / "quick"
    slow_dir.mkdir()
    quick_dir.mkdir()
    slow = _wrapper(slow_dir, f'sleep 5\nexec {RUNC} "$@"')
    orphan_file = quick_dir / "orphan.pid"
    quick = _wrapper(quick_dir, f'( sleep 0.2 & echo $! > {orphan_file} )\nexec {RUNC} "$@"')
    replies: dict[str, dict[str, object]] = {}

    def create(name: str, directory: pathlib.Path, binary: str) -> None:
        replies[name] = SupervisorClient(engines.root).create(
            name, str(_bundle(directory, busybox_rootfs)), binary,
            str(engines.root / "runc"), str(directory / "log.json"))

    slow_create = threading.Thread(target=create, args=("slow", slow_dir, slow))
    slow_create.start()
    try:
        create("quick", quick_dir, quick)
        assert _reaped(int(orphan_file.read_text()), seconds=3)
        assert slow_create.is_alive()  # reaped while the slow create was still running
    finally:
        slow_create.join(30)
        for name in ("slow", "quick"):
            _runc(engines, "delete", "--force", name)
            SupervisorClient(engines.root).wait(name, 10)
            (engines.root / "exits" / f"{name}.json").unlink(missing_ok=True)
    assert replies["slow"]["ok"] and replies["quick"]["ok"]


def test_attachments_get_a_runs_raw_output_from_before_its_create(engine: Engine,
                                                                   engines: RealEngines) -> None:
    """docker run's attach: attached to a created container, each attachment gets its run's
    output as written (bytes as they are, in order per stream), then the end; one that hangs
    up early is dropped, and the supervisor goes on serving."""
    script = r"printf 'a\377'; printf 'E1' >&2; sleep 0.2; echo b; printf 'E2' >&2"
    record = engine.create(ContainerConfig(image="busybox", command=("sh", "-c", script)))
    client = SupervisorClient(engines.root)
    first, second, quitter = (client.attach(record.id) for _ in range(3))
    assert first is not None and second is not None and quitter is not None
    quitter.close()
    engine.start(record.id)
    outputs = []
    for attached in (first, second):
        streams: dict[int, bytes] = {1: b"", 2: b""}
        for item in attached.chunks():
            if item is not None:  # None: a heartbeat
                streams[item[0]] += item[1]
        outputs.append((streams, attached.complete))
    assert outputs == [({1: b"a\xffb\n", 2: b"E1E2"}, True)] * 2
    assert engine.wait(record.id, timeout=30).exit_code == 0
    assert client._call({"op": "ping"}, 2.0)["ok"] is True
    engine.remove(record.id)


def test_an_attachment_to_a_live_run_starts_from_then(engine: Engine,
                                                      engines: RealEngines) -> None:
    record = engine.create(ContainerConfig(image="busybox", command=(
        "sh", "-c", "echo before; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo after")))
    engine.start(record.id)
    log = pathlib.Path(engine.saga.host.log_path(record.id))
    deadline = time.monotonic() + 10
    while b"before" not in (log.read_bytes() if log.exists() else b""):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    attached = SupervisorClient(engines.root).attach(record.id)
    assert attached is not None
    upper = pathlib.Path(engines.root, "containers", record.id, "rootfs", "tmp")
    (upper / "go").touch()
    assert [item[1] for item in attached.chunks() if item] == [b"after\n"]
    assert attached.complete
    engine.wait(record.id, timeout=30)
    engine.remove(record.id)


def test_a_supervisor_that_dies_is_reaped_by_its_daemon(engines: RealEngines) -> None:
    """The daemon's child while both run: killed, it is reaped at once, never a zombie
    until the next supervisor starts (helper-44)."""
    client = SupervisorClient(engines.root)
    pid = client.ensure_running()
    if not os.path.exists(f"/proc/{pid}"):
        pytest.fail("the supervisor is not running")
    os.kill(pid, signal.SIGTERM)
    os.kill(pid, signal.SIGKILL)  # whichever comes first
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not os.path.exists(f"/proc/{pid}")  # gone, not a zombie


def test_attachments_in_a_burst_all_connect_and_a_dead_supervisor_is_started_again(
        engine: Engine, engines: RealEngines) -> None:
    """50 at once were refused in part with EAGAIN (a connect with a timeout does not wait
    for a full backlog); after the supervisor died, no run could attach until a create
    started another one (helper-47)."""
    client = SupervisorClient(engines.root)
    barrier = threading.Barrier(50)
    outcomes: list[object] = []

    def attach(index: int) -> None:
        barrier.wait()
        try:
            attached = client.attach(f"burst-{index}")
            outcomes.append(attached is not None)
            if attached is not None:
                attached.close()
        except OSError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=attach, args=(index,)) for index in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert outcomes == [True] * 50
    old_pid = client.ensure_running()
    os.kill(old_pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while alive(old_pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    again = client.attach("after-death")
    assert again is not None
    again.close()
    assert client.ensure_running() != old_pid
