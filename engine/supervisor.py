"""The supervisor: one long-lived process per data root that outlives daemon restarts.

It is the child subreaper of every container init (it runs ``runc create``, so the init is
re-parented to it), copies each container's stdout and stderr into its log file (one JSON
object per line, like Docker's json-file driver), and records each exit in
``<root>/exits/<container id>.json`` ({"exit_code", "exited_at" in ms}) before telling anyone.
A daemon that was down when a container exited reads the exit there when it starts again.
This is what containerd-shim and conmon do, with one process for all containers, started once
(never a Python start per container).

Protocol: a unix socket ``<root>/supervisor.sock``; one JSON request line, one JSON reply line:
* ``{"op": "create", "id", "bundle", "binary", "runc_root", "log"}`` -> ``{"ok", "pid"|"error"}``
* ``{"op": "wait", "id", "timeout"}`` -> ``{"exited": bool, "exit_code", "exited_at"}``
* ``{"op": "ping"}`` -> ``{"ok": true, "pid"}``
Run: ``python -m engine.supervisor ROOT``.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import pathlib
import select
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from typing import Any

SOCKET = "supervisor.sock"
PID_FILE = "supervisor.pid"
EXITS = "exits"
LOG_DRAIN_SECONDS = 2.0


def exit_path(root: pathlib.Path, container_id: str) -> pathlib.Path:
    return root / EXITS / f"{container_id}.json"


def write_atomically(path: pathlib.Path, content: str) -> None:
    """Write ``content`` to ``path`` atomically (temporary file, rename).

    Not fsynced, like the journal's commits (synchronous=NORMAL): the record survives a crash
    of the daemon or of this process, which is what it is for; a power loss takes the
    containers with it, and recovery then finds their tasks gone (exit 255)."""
    temporary = path.with_name(f".tmp-{path.name}")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(content)
    os.replace(temporary, path)


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Container:
    def __init__(self, container_id: str, pid: int) -> None:
        self.container_id = container_id
        self.pid = pid
        self.copiers: list[threading.Thread] = []


class Supervisor:
    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.children: dict[int, _Container] = {}
        self.lock = threading.Condition()
        (root / EXITS).mkdir(parents=True, exist_ok=True)

    # -- create --------------------------------------------------------------------------
    def create(self, request: dict[str, Any]) -> dict[str, Any]:
        container_id = str(request["id"])
        bundle = pathlib.Path(str(request["bundle"]))
        runc_log = bundle / "runc.log"
        pid_file = bundle / "init.pid"
        with contextlib.suppress(FileNotFoundError):
            runc_log.unlink()
        exit_path(self.root, container_id).unlink(missing_ok=True)
        stdout_read, stdout_write = os.pipe()
        stderr_read, stderr_write = os.pipe()
        try:
            process = subprocess.run(
                [str(request["binary"]), "--root", str(request["runc_root"]), "--log",
                 str(runc_log), "--log-format", "json", "create", "--bundle", str(bundle),
                 "--pid-file", str(pid_file), container_id],
                stdin=subprocess.DEVNULL, stdout=stdout_write, stderr=stderr_write,
                check=False,
            )
        except OSError as exc:
            for descriptor in (stdout_read, stdout_write, stderr_read, stderr_write):
                os.close(descriptor)
            return {"ok": False, "error": str(exc)}
        os.close(stdout_write)
        os.close(stderr_write)
        if process.returncode != 0:
            # runc logs its errors to --log; one that dies parsing its flags writes to stderr,
            # which here is the container's stderr pipe: read what it said.
            os.set_blocking(stderr_read, False)
            try:
                said = os.read(stderr_read, 65536).decode(errors="replace")
            except BlockingIOError:
                said = ""
            os.close(stdout_read)
            os.close(stderr_read)
            first = next((line for line in said.splitlines() if line.strip()), "")
            return {"ok": False, "error": _runc_error(runc_log) or first or
                    f"runc create exited {process.returncode}"}
        pid = int(pid_file.read_text().strip())
        container = _Container(container_id, pid)
        log_path = pathlib.Path(str(request["log"]))
        log_path.parent.mkdir(parents=True, exist_ok=True)
        for descriptor, stream in ((stdout_read, "stdout"), (stderr_read, "stderr")):
            copier = threading.Thread(target=_copy_log, args=(descriptor, stream, log_path),
                                      daemon=True, name=f"log-{container_id[:12]}-{stream}")
            copier.start()
            container.copiers.append(copier)
        with self.lock:
            self.children[pid] = container
        self.reap()  # in case it died already
        return {"ok": True, "pid": pid}

    # -- exits ---------------------------------------------------------------------------
    def reap(self) -> None:
        with self.lock:
            candidates = list(self.children.items())
        for pid, container in candidates:
            try:
                reaped, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                reaped, status = pid, -1
            if reaped == 0:
                continue
            if status == -1:
                code = 255
            elif os.WIFSIGNALED(status):
                code = 128 + os.WTERMSIG(status)
            else:
                code = os.WEXITSTATUS(status)
            exited_at = time.time_ns() // 1_000_000
            for copier in container.copiers:
                copier.join(LOG_DRAIN_SECONDS)
            write_atomically(exit_path(self.root, container.container_id),
                          json.dumps({"exit_code": code, "exited_at": exited_at}))
            with self.lock:
                self.children.pop(pid, None)
                self.lock.notify_all()

    def wait(self, request: dict[str, Any]) -> dict[str, Any]:
        path = exit_path(self.root, str(request["id"]))
        deadline = time.monotonic() + float(request.get("timeout", 0))
        with self.lock:
            while True:
                if path.exists():
                    return {"exited": True, **json.loads(path.read_text())}
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return {"exited": False}
                self.lock.wait(min(remaining, 1.0))


def _runc_error(log: pathlib.Path) -> str:
    """The last error runc logged (``--log-format json``)."""
    message = ""
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("level") in ("error", "fatal"):
                    message = str(entry.get("msg", ""))
    return message


def _copy_log(descriptor: int, stream: str, path: pathlib.Path) -> None:
    """Copy one stream into ``path`` as json-file lines until end of file."""
    with os.fdopen(descriptor, "rb", buffering=0) as source, open(path, "ab") as log:
        pending = b""
        while chunk := source.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                log.write(_entry(line + b"\n", stream))
            log.flush()
        if pending:
            log.write(_entry(pending, stream))


def _entry(line: bytes, stream: str) -> bytes:
    text = line.decode("utf-8", errors="replace")
    return (json.dumps({"log": text, "stream": stream, "time": _now_iso()}) + "\n").encode()


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        line = self.rfile.readline()
        try:
            request = json.loads(line)
            operation = request.get("op")
            supervisor = self.server.supervisor
            if operation == "create":
                reply = supervisor.create(request)
            elif operation == "wait":
                reply = supervisor.wait(request)
            elif operation == "ping":
                reply = {"ok": True, "pid": os.getpid()}
            else:
                reply = {"ok": False, "error": f"unknown op {operation!r}"}
        except Exception as exc:  # a bad request never kills the supervisor
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        self.wfile.write((json.dumps(reply) + "\n").encode())


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        super().__init__(path, _Handler)


def serve(root: pathlib.Path) -> None:
    from engine.linux import set_child_subreaper

    set_child_subreaper()
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    supervisor = Supervisor(root)
    path = root / SOCKET
    path.unlink(missing_ok=True)
    server = _Server(str(path), supervisor)
    os.chmod(path, 0o600)
    write_atomically(root / PID_FILE, str(os.getpid()))
    threading.Thread(target=server.serve_forever, daemon=True, name="accept").start()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set() and (root / SOCKET).exists():
        # A root that was deleted (a test's, a benchmark's) has nobody to serve any more.
        ready, _, _ = select.select([wake_read], [], [], 1.0)
        if ready:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_read, 4096)
        supervisor.reap()
    server.shutdown()


class SupervisorClient:
    """The daemon's side: starts the supervisor if it is not running, and talks to it."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root

    def _call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(timeout)
            connection.connect(str(self.root / SOCKET))
            connection.sendall((json.dumps(request) + "\n").encode())
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = connection.recv(65536)
                if not chunk:
                    break
                reply += chunk
        result: dict[str, Any] = json.loads(reply)
        return result

    def ensure_running(self) -> int:
        """Return the supervisor's pid, starting it if needed."""
        with contextlib.suppress(OSError, ValueError):
            return int(self._call({"op": "ping"}, 2.0)["pid"])
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "supervisor.log", "ab")  # noqa: SIM115 - handed to the child
        subprocess.Popen([sys.executable, "-m", "engine.supervisor", str(self.root)],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                         start_new_session=True, close_fds=True)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                return int(self._call({"op": "ping"}, 2.0)["pid"])
            time.sleep(0.02)
        raise OSError("the supervisor did not start (see supervisor.log)")

    def create(self, container_id: str, bundle: str, binary: str, runc_root: str,
               log: str) -> dict[str, Any]:
        return self._call({"op": "create", "id": container_id, "bundle": bundle,
                           "binary": binary, "runc_root": runc_root, "log": log}, 120.0)

    def wait(self, container_id: str, timeout: float) -> dict[str, Any]:
        return self._call({"op": "wait", "id": container_id, "timeout": timeout},
                          timeout + 10.0)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1:
        print("usage: python -m engine.supervisor ROOT", file=sys.stderr)
        return 2
    serve(pathlib.Path(arguments[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
