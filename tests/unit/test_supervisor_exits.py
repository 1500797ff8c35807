"""The supervisor records an exit once the container is both reaped and drained, whichever
comes last, without a thread per exit; and a log that never ends delays it only so long."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from engine import spawn, supervisor
from engine.supervisor import Supervisor, _Container, exit_path


def adopt(sup: Supervisor, tmp_path: pathlib.Path, script: str) -> _Container:
    """Run ``script`` as a container init would be: its streams into the log pump, its pid
    known to the supervisor (this test process is its parent, so the supervisor reaps it)."""
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    pid = spawn.spawn(["sh", "-c", script], stdout=out_write, stderr=err_write)
    os.close(out_write)
    os.close(err_write)
    container = _Container(f"c{pid}", pid)
    sup.logs.add(out_read, err_read, tmp_path / f"{container.container_id}.log",
                 lambda: sup._drained(container), container.container_id)
    with sup.lock:
        sup.live[container.container_id] = container  # what a create does for what it made
        sup.children[pid] = container
    return container


@contextlib.contextmanager
def serving(sup: Supervisor, path: pathlib.Path) -> Iterator[None]:
    """``sup`` answering on the unix socket ``path`` while the block runs."""
    server = supervisor._Server(str(path), sup)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def reap_until(sup: Supervisor, done: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not done():
        sup.reap()
        sup.expire_drains()
        time.sleep(0.01)


def test_an_exit_reaped_before_its_output_ended_is_recorded_after_it(
        tmp_path: pathlib.Path) -> None:
    sup = Supervisor(tmp_path)
    # The init exits at once; a grandchild keeps its stdout open and writes later.
    container = adopt(sup, tmp_path, "(sleep 0.3; echo late) & exit 3")
    reap_until(sup, lambda: container.exit is not None)
    assert container.exit is not None and container.exit["exit_code"] == 3
    assert not container.recorded  # reaped, but its log is not complete yet
    assert not exit_path(tmp_path, container.container_id).exists()
    reply = sup.wait({"id": container.container_id, "timeout": 10})
    assert (reply["exited"], reply["exit_code"]) == (True, 3)
    log = tmp_path / f"{container.container_id}.log"
    assert [json.loads(line)["log"] for line in log.read_text().splitlines()] == ["late\n"]
    assert json.loads(exit_path(tmp_path, container.container_id).read_text())[
        "exit_code"] == 3
    assert sup.undrained == {}


def test_output_that_never_ends_delays_the_exit_only_until_the_drain_deadline(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(supervisor, "LOG_DRAIN_SECONDS", 0.2)
    sup = Supervisor(tmp_path)
    container = adopt(sup, tmp_path, "sleep 3 & exit 5")  # the sleep holds the pipes
    reap_until(sup, lambda: container.recorded)
    assert container.recorded and not container.drained
    assert sup.wait({"id": container.container_id, "timeout": 0})["exit_code"] == 5
    assert "Logger didn't exit in time" in caplog.text


def test_an_exit_that_cannot_be_written_still_reaches_the_waiters(
        tmp_path: pathlib.Path) -> None:
    sup = Supervisor(tmp_path)
    (tmp_path / supervisor.EXITS).rmdir()
    (tmp_path / supervisor.EXITS).write_text("not a directory: every exit file fails")
    container = adopt(sup, tmp_path, "exit 9")
    reap_until(sup, lambda: container.recorded)
    assert container.exit is not None
    assert sup.wait({"id": container.container_id, "timeout": 5}) == {
        "exited": True, "exit_code": 9, "exited_at": container.exit["exited_at"]}


def test_a_create_missing_a_field_fails_before_anything_runs(tmp_path: pathlib.Path) -> None:
    """Nothing after the reply may fail: a request without its log path is refused up front,
    not adopted half-way after an "ok"."""
    sup = Supervisor(tmp_path)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    with pytest.raises(KeyError):
        sup.create({"id": "c1", "bundle": str(bundle), "binary": "runc",
                    "runc_root": str(tmp_path / "runc")})
    assert sup.children == {}
    assert list(bundle.iterdir()) == []  # runc never ran (no log, no pid file)


def test_a_runtime_that_cannot_open_its_log_is_quoted_by_its_message(
        tmp_path: pathlib.Path) -> None:
    """runc writes its JSON log lines to stderr when ``--log`` cannot be opened: the error is
    the line's message, not the raw JSON."""
    runtime = tmp_path / "runtime"
    runtime.write_text("#!/bin/sh\necho '{\"level\":\"error\",\"msg\":\"open /gone/runc.log: no "
                       "such file or directory\",\"time\":\"2026-12-01T00:00:00Z\"}' >&2\nexit 1\n")
    runtime.chmod(0o755)
    sup = Supervisor(tmp_path / "root")
    reply, then = sup.create({"id": "c1", "bundle": str(tmp_path / "gone"),
                              "binary": str(runtime), "runc_root": str(tmp_path / "runc"),
                              "log": str(tmp_path / "c1.log")})
    assert reply == {"ok": False, "error": "open /gone/runc.log: no such file or directory"}
    assert then is None


def test_a_wait_for_a_container_it_never_created_is_answered_at_once(
        tmp_path: pathlib.Path) -> None:
    """An earlier supervisor's container (that supervisor is gone, so is its exit): the caller
    is told at once, not after its timeout, and asks the runtime instead."""
    sup = Supervisor(tmp_path)
    assert sup.wait({"id": "orphan", "timeout": 300}) == {"exited": False, "known": False}


def test_the_exit_of_a_replaced_run_answers_no_wait(tmp_path: pathlib.Path) -> None:
    """A stale task of the same id, force-deleted by the next start's ReplaceContainer, may be
    reaped after the new run was created: its exit is not the new run's."""
    sup = Supervisor(tmp_path)
    stale, current = _Container("c1", 101), _Container("c1", 102)
    sup.live["c1"] = current
    stale.drained = True
    stale.exit = {"exit_code": 137, "exited_at": 1}
    sup._record(stale)
    assert not exit_path(tmp_path, "c1").exists()
    assert "c1" not in sup.exits and sup.live["c1"] is current


def test_a_run_reaped_while_its_replacement_is_created_answers_no_wait(
        tmp_path: pathlib.Path) -> None:
    """The stale run exits (its force-delete killed it) while ``runc create`` of the new run
    of the id is still running: the new run's waits never see the old exit."""
    sup = Supervisor(tmp_path / "root")
    stale = adopt(sup, tmp_path, "exec sleep 1000")
    sup.live.pop(stale.container_id)
    sup.live["c1"] = stale
    stale.container_id = "c1"
    release = tmp_path / "release"
    runtime = tmp_path / "runtime"
    runtime.write_text("#!/bin/sh\n"
                       f"while [ ! -e {release} ]; do sleep 0.01; done\n"
                       "while [ \"$1\" != --pid-file ]; do shift; done\n"
                       "echo $$ > \"$2\"\n")
    runtime.chmod(0o755)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    replies: list[dict[str, object]] = []
    creating = threading.Thread(target=lambda: replies.append(sup.create(
        {"id": "c1", "bundle": str(bundle), "binary": str(runtime),
         "runc_root": str(tmp_path / "runc"), "log": str(tmp_path / "c1.log")})[0]))
    creating.start()
    try:
        deadline = time.monotonic() + 30
        while sup.live.get("c1") is stale and time.monotonic() < deadline:
            time.sleep(0.01)  # until the create has begun
        os.kill(stale.pid, signal.SIGKILL)  # what the force-delete did to the stale task
        reap_until(sup, lambda: stale.recorded)
        assert stale.recorded
    finally:
        release.touch()
        creating.join(30)
    assert replies and replies[0]["ok"] is True
    assert sup.wait({"id": "c1", "timeout": 0}) == {"exited": False, "known": True}
    assert not exit_path(tmp_path / "root", "c1").exists()


def test_a_failed_create_leaves_no_run_of_its_id_live(tmp_path: pathlib.Path) -> None:
    sup = Supervisor(tmp_path / "root")
    runtime = tmp_path / "runtime"
    runtime.write_text("#!/bin/sh\nexit 0\n")  # "created", yet it wrote no pid file
    runtime.chmod(0o755)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    reply, then = sup.create({"id": "c1", "bundle": str(bundle), "binary": str(runtime),
                              "runc_root": str(tmp_path / "runc"),
                              "log": str(tmp_path / "c1.log")})
    assert reply["ok"] is False and "no init pid" in str(reply["error"]) and then is None
    assert "c1" not in sup.live
    assert sup.wait({"id": "c1", "timeout": 0}) == {"exited": False, "known": False}


def test_a_second_supervisor_of_a_root_leaves(tmp_path: pathlib.Path) -> None:
    import fcntl

    holder = os.open(tmp_path / supervisor.LOCK_FILE, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the first supervisor's
        supervisor.serve(tmp_path)  # returns at once instead of serving
        assert not (tmp_path / supervisor.SOCKET).exists()
        assert not (tmp_path / supervisor.PID_FILE).exists()
    finally:
        os.close(holder)


def test_a_client_that_leaves_before_its_reply_is_no_error(
        tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A daemon stopped while its wait was pending: the reply has nobody to go to."""
    import socket

    sup = Supervisor(tmp_path)
    sup.live["c1"] = _Container("c1", 1)  # known, never exits: the wait runs to its timeout
    with serving(sup, tmp_path / "s.sock"):
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(str(tmp_path / "s.sock"))
        client.sendall(b'{"op": "wait", "id": "c1", "timeout": 0.2}\n')
        client.close()
        time.sleep(0.5)  # the reply is written (and refused) after 0.2 s
        again = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        again.connect(str(tmp_path / "s.sock"))
        again.sendall(b'{"op": "ping"}\n')
        assert json.loads(again.makefile().readline())["ok"] is True
        again.close()
    assert "Traceback" not in capsys.readouterr().err


def test_a_wait_whose_client_left_ends_instead_of_waiting_out_its_timeout(
        tmp_path: pathlib.Path) -> None:
    """A daemon restarted while it waited on running containers (its waits asked for 1e9 s):
    each abandoned wait's thread ends, instead of living as long as the container."""
    import socket

    sup = Supervisor(tmp_path)
    sup.live["c1"] = _Container("c1", 1)  # known, never exits
    with serving(sup, tmp_path / "s.sock"):
        before = threading.active_count()
        for _ in range(10):
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.connect(str(tmp_path / "s.sock"))
            client.sendall(b'{"op": "wait", "id": "c1", "timeout": 1e9}\n')
            client.close()
        deadline = time.monotonic() + 30
        while threading.active_count() > before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert threading.active_count() == before
        waiting = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # a client that stays
        waiting.connect(str(tmp_path / "s.sock"))
        waiting.sendall(b'{"op": "wait", "id": "c1", "timeout": 2.5}\n')
        assert json.loads(waiting.makefile().readline()) == {"exited": False, "known": True}
        waiting.close()


def test_an_exit_file_that_cannot_be_written_leaves_no_temporary_behind(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(supervisor.os, "replace", full)
    with pytest.raises(OSError):
        supervisor.write_atomically(tmp_path / "c1.json", "{}")
    assert list(tmp_path.iterdir()) == []


def test_a_request_line_without_end_closes_its_connection(tmp_path: pathlib.Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    import socket

    monkeypatch.setattr(supervisor, "MAX_REQUEST_BYTES", 1024)
    sup = Supervisor(tmp_path)
    with serving(sup, tmp_path / "s.sock"):
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(str(tmp_path / "s.sock"))
        client.sendall(b"x" * 4096)  # and never a newline
        client.settimeout(30)
        assert client.recv(1) == b""  # closed by the supervisor, nothing answered
        client.close()
        again = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        again.connect(str(tmp_path / "s.sock"))
        again.sendall(b'{"op": "ping"}\n')
        assert json.loads(again.makefile().readline())["ok"] is True
        again.close()


def test_a_runtime_error_longer_than_a_pipe_holds_is_answered(tmp_path: pathlib.Path) -> None:
    """runc prints its error to stderr too: a 200 kB one (a command of that length, not
    found) used to block runc on the full pipe and the create with it, for good."""
    runtime = tmp_path / "runtime"
    runtime.write_text("#!/bin/sh\nhead -c 200000 /dev/zero | tr '\\0' a >&2\n"
                       "echo ' not found' >&2\nexit 1\n")
    runtime.chmod(0o755)
    sup = Supervisor(tmp_path / "root")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    replies: list[dict[str, object]] = []
    creating = threading.Thread(target=lambda: replies.append(sup.create(
        {"id": "c1", "bundle": str(bundle), "binary": str(runtime),
         "runc_root": str(tmp_path / "runc"), "log": str(tmp_path / "c1.log")})[0]),
        daemon=True)
    creating.start()
    creating.join(60)
    assert not creating.is_alive(), "the create is blocked on the runtime's stderr"
    assert replies[0]["ok"] is False
    error = str(replies[0]["error"])
    assert error.startswith("aaaa") and len(error) <= supervisor.SAID_BYTES


def test_a_wait_on_a_connection_above_descriptor_1023_still_waits(
        tmp_path: pathlib.Path) -> None:
    """select() refuses a descriptor above 1023: a supervisor holding that many (a few hundred
    containers, a raised limit) answered every wait at once with its ValueError, and each stop
    became an immediate SIGKILL."""
    import resource
    import socket

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2048:
        pytest.skip(f"the hard descriptor limit {hard} is below 2048")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    sup = Supervisor(tmp_path)
    sup.live["c1"] = _Container("c1", 1)  # known, never exits
    try:
        with serving(sup, tmp_path / "s.sock"):
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.connect(str(tmp_path / "s.sock"))
            client.sendall(b'{"op": "wait", "id": "c1", "timeout": 1.5}\n')
            assert json.loads(client.makefile().readline()) == {"exited": False, "known": True}
            client.close()
    finally:
        for descriptor in filler:
            os.close(descriptor)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_supervisor_from_before_attach_is_told_apart(tmp_path: pathlib.Path) -> None:
    """It outlives daemons, upgrades too: one that answers attach as an unknown op gives
    None (the daemon answers NotImplemented, and run reads the log instead)."""
    import socket

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / supervisor.SOCKET))
    listener.listen(1)
    asked: list[bytes] = []

    def old_supervisor() -> None:
        connection, _ = listener.accept()
        with connection, connection.makefile("rb") as reader:
            asked.append(reader.readline())
            connection.sendall(b'{"ok": false, "error": "unknown op \'attach\'"}\n')

    server = threading.Thread(target=old_supervisor)
    server.start()
    try:
        assert supervisor.SupervisorClient(tmp_path).attach("c1") is None
    finally:
        server.join(timeout=10)
        listener.close()
    assert json.loads(asked[0]) == {"op": "attach", "id": "c1"}


def test_an_attachment_waiting_for_a_run_that_never_comes_goes_with_its_reader(
        tmp_path: pathlib.Path) -> None:
    """A run whose start failed (its command is missing) never comes: its attachment, gone,
    leaves nothing in the supervisor; one of a run being created stays for that run."""
    sup = Supervisor(tmp_path)
    waiting = sup.attach("never")
    sup.detach("never", waiting)
    assert "never" not in sup.fanouts
    sup.live["coming"] = _Container("coming", 0)  # what a create records before runc runs
    early = sup.attach("coming")
    sup.detach("coming", early)
    assert "coming" in sup.fanouts
