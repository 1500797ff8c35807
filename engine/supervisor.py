"""The supervisor: one long-lived process per data root that outlives daemon restarts.

It is the child subreaper of every container init (it runs ``runc create``, so the init is
re-parented to it) and reaps every child re-parented to it (orphans included), copies each
container's stdout and stderr into its log file (one JSON object per line, like Docker's
json-file driver), and records each exit in ``<root>/exits/<container id>.json``
({"exit_code", "exited_at" in ms}) before telling anyone.
A daemon that was down when a container exited reads the exit there when it starts again.
This is what containerd-shim and conmon do, with one process for all containers, started once
(never a Python start per container).

An exit is recorded once the init is reaped *and* its output has ended, whichever comes last
(by the main loop or by the log pump, no thread per exit); output that has not ended
``LOG_DRAIN_SECONDS`` after the exit (a grandchild holding the pipe) no longer delays it. A
create is answered as soon as ``runc create`` returns; the container is adopted (its pipes
handed to the pump, its pid to the reaper) right after the reply, off the caller's latency:
its init can neither run nor exit before ``runc start``.

Protocol: a unix socket ``<root>/supervisor.sock``; each JSON request line gets one JSON reply
line, and a connection carries any number of them (clients keep one open per thread):
* ``{"op": "create", "id", "bundle", "binary", "runc_root", "log"}`` -> ``{"ok", "pid"|"error"}``
* ``{"op": "wait", "id", "timeout"}`` -> ``{"exited": true, "exit_code", "exited_at"}``,
  ``{"exited": false, "known": true}`` after ``timeout`` (or once the client hung up), or
  ``{"exited": false, "known": false}`` at once for a container this supervisor did not create
  and has no record of (an earlier supervisor's, which is gone: nobody saw its exit)
* ``{"op": "ping"}`` -> ``{"ok": true, "pid"}``
* ``{"op": "attach", "id"}`` -> ``{"ok": true}`` once attached, then on that connection the
  raw output of the container's current run (or, if none runs, of its next one) from then
  on, in frames as Docker's stdcopy writes them (a header of the stream, 1 or 2, three zero
  bytes and the length as 4 bytes big-endian, then the bytes), and an empty frame of stream 0
  at its end; the connection closes without it if the reader fell too far behind. Only this
  request goes on its connection. A supervisor from before answers ``{"ok": false}``.
Run: ``python -m engine.supervisor ROOT``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import pathlib
import select
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from engine import spawn
from engine.log_pump import Attachment, Fanout, LogPump

SOCKET = "supervisor.sock"
PID_FILE = "supervisor.pid"
LOCK_FILE = "supervisor.lock"  # held by the one supervisor serving the root
EXITS = "exits"
LOG_DRAIN_SECONDS = 10.0  # moby's loggerCloseTimeout
EXITS_KEPT = 4096  # exits answered from memory; older ones from their files
MAX_REQUEST_BYTES = 1 << 20  # a request line longer than this closes its connection
SAID_BYTES = 65536  # how much of what runc create printed on stderr is kept for its error
HEARTBEAT_SECONDS = 1.0  # an attachment with nothing to say says so this often
UNCLAIMED_SECONDS = 60.0  # how long the status of a reaped child nobody knew is kept
# wait(2)'s __WNOTHREAD: only the calling thread's children. The main loop reaps its own (every
# init and orphan is re-parented to the main thread), never a create's runc, which is the
# child of the handler thread that waits for it.
_WNOTHREAD = 0x20000000

log = logging.getLogger("berth.supervisor")


def exit_path(root: pathlib.Path, container_id: str) -> pathlib.Path:
    return root / EXITS / f"{container_id}.json"


def write_atomically(path: pathlib.Path, content: str) -> None:
    """Write ``content`` to ``path`` atomically (temporary file, rename).

    Not fsynced, like the journal's commits (synchronous=NORMAL): the record survives a crash
    of the daemon or of this process, which is what it is for; a power loss takes the
    containers with it, and recovery then finds their tasks gone (exit 255)."""
    temporary = path.with_name(f".tmp-{path.name}-{os.urandom(4).hex()}")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)  # a full disk leaves no half-written file behind
        raise


class _Container:
    def __init__(self, container_id: str, pid: int) -> None:
        self.container_id = container_id
        self.pid = pid
        self.drained = False  # both streams copied to their end
        self.exit: dict[str, int] | None = None  # reaped, not recorded yet
        self.drain_deadline = 0.0
        self.recorded = False


class Supervisor:
    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.children: dict[int, _Container] = {}
        # Reaped while their output was still coming (a grandchild may hold the pipe).
        self.undrained: dict[int, _Container] = {}
        # Created by this supervisor and not recorded yet: a wait for any other container that
        # has no record is answered "unknown" at once (its supervisor is gone, and its exit too).
        self.live: dict[str, _Container] = {}
        # Recorded this run (also on disk), newest last; bounded, older ones read from disk.
        self.exits: collections.OrderedDict[str, dict[str, int]] = collections.OrderedDict()
        # Reaped before anyone knew them, by pid: (wait status, when). An init that ended
        # before its create adopted it is claimed from here; the others are orphans.
        self.unclaimed: dict[int, tuple[int, float]] = {}
        self.lock = threading.Condition()
        self.logs = LogPump()
        # Each container's attachments: of its live run, or waiting for its next one.
        self.fanouts: dict[str, Fanout] = {}
        # Written to wake the main loop (SIGCHLD does too, through the signal wakeup fd).
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_write, False)
        (root / EXITS).mkdir(parents=True, exist_ok=True)

    # -- create --------------------------------------------------------------------------
    def create(self, request: dict[str, Any]) -> tuple[dict[str, Any], Callable[[], None] | None]:
        """Run ``runc create``; return the reply and what to do once it is sent (adopt the
        container: its init cannot run, let alone exit or write, before ``runc start``)."""
        # Every field is read before anything runs: nothing after the reply may fail on one.
        container_id = str(request["id"])
        bundle = pathlib.Path(str(request["bundle"]))
        binary, runc_root = str(request["binary"]), str(request["runc_root"])
        log_path = pathlib.Path(str(request["log"]))
        runc_log = bundle / "runc.log"
        pid_file = bundle / "init.pid"
        with contextlib.suppress(FileNotFoundError):
            runc_log.unlink()
        # This run takes the id's place before anything runs: the run it replaces (a stale
        # task the daemon force-deleted, perhaps reaped while this create runs) no longer
        # records its exit, which would answer this run's waits.
        pending = _Container(container_id, 0)
        with self.lock:
            self.live[container_id] = pending
            self.exits.pop(container_id, None)
        exit_path(self.root, container_id).unlink(missing_ok=True)
        try:
            return self._create(container_id, bundle, binary, runc_root, log_path, runc_log,
                                pid_file)
        finally:
            with self.lock:
                if self.live.get(container_id) is pending:  # failed: no run of it is live
                    del self.live[container_id]
                    self.lock.notify_all()  # its waiters learn it at once, not in a second
                    fanout = self.fanouts.get(container_id)
                    if fanout is not None and fanout.idle:  # its attached readers left
                        del self.fanouts[container_id]

    def _create(self, container_id: str, bundle: pathlib.Path, binary: str, runc_root: str,
                log_path: pathlib.Path, runc_log: pathlib.Path, pid_file: pathlib.Path
                ) -> tuple[dict[str, Any], Callable[[], None] | None]:
        began = time.monotonic()  # an init reaped before this is not this create's
        stdout_read, stdout_write = spawn.pipe()
        stderr_read, stderr_write = spawn.pipe()
        try:
            runc = spawn.spawn(
                [binary, "--root", runc_root, "--log",
                 str(runc_log), "--log-format", "json", "create", "--bundle", str(bundle),
                 "--pid-file", str(pid_file), container_id],
                stdout=stdout_write, stderr=stderr_write)
        except OSError as exc:
            for descriptor in (stdout_read, stdout_write, stderr_read, stderr_write):
                os.close(descriptor)
            return {"ok": False, "error": str(exc)}, None
        os.close(stdout_write)
        os.close(stderr_write)
        # runc also prints its error to stderr (the container's stderr pipe, until the init
        # holds it): read the pipes while it runs, or an error longer than a pipe holds (a
        # 100 kB command not found) blocks it, and this thread with it, for good.
        said = _drain_until_exit(runc, stdout_read, stderr_read).decode(errors="replace")
        returncode = os.waitstatus_to_exitcode(os.waitpid(runc, 0)[1])
        if returncode != 0:
            # runc logs its errors to --log; one that dies parsing its flags writes them only
            # to stderr.
            os.close(stdout_read)
            os.close(stderr_read)
            # It writes its JSON lines there too when it cannot open the log file.
            first = next((line for line in said.splitlines() if line.strip()), "")
            return {"ok": False, "error": _runc_error(runc_log) or _last_error(said) or first
                    or f"runc create exited {returncode}"}, None
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError) as exc:
            # Created, but not by a runtime this can supervise: the start's compensation
            # deletes the task (force).
            os.close(stdout_read)
            os.close(stderr_read)
            said = f"{binary} create: no init pid in {pid_file}: {exc}"
            return {"ok": False, "error": said}, None
        container = _Container(container_id, pid)
        with self.lock:
            self.live[container_id] = container  # this run, not one it replaced
            fanout = self._fanout(container_id)  # attached before it was made, or new

        def adopt() -> None:
            with self.lock:  # first: whatever happens next, it is reaped and its exit told
                self.children[pid] = container
                # Reaped already (killed before it was adopted): reaped after this create
                # began, so by this init, not by an earlier process of the same pid.
                claimed = self.unclaimed.pop(pid, None)
            if claimed is not None and claimed[1] >= began:
                self._exited(pid, container, claimed[0])
            self.logs.add(stdout_read, stderr_read, log_path,
                          lambda: self._drained(container), container_id[:12], fanout)

        return {"ok": True, "pid": pid}, adopt

    # -- exits ---------------------------------------------------------------------------
    def reap(self) -> None:
        """Collect every child of this thread that ended: the containers' inits, and the
        orphans re-parented to this subreaper (a hook's or a runtime wrapper's daemonized
        child; the init of a create that failed once runc made it), as containerd-shim and
        conmon reap every child. Called by the main loop only: two reapers of one pid would
        give it the wrong status."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG | _WNOTHREAD)
            except ChildProcessError:
                return  # no child left
            if pid == 0:
                return
            with self.lock:
                container = self.children.get(pid)
                if container is None:
                    self.unclaimed[pid] = (status, time.monotonic())
            if container is None:
                log.debug("reaped %d, unknown yet (status %d)", pid, status)
            else:
                self._exited(pid, container, status)

    def _exited(self, pid: int, container: _Container, status: int) -> None:
        """``container``'s init ended with wait ``status``: record it once drained."""
        code = os.waitstatus_to_exitcode(status)
        if code < 0:  # killed by a signal
            code = 128 - code
        with self.lock:
            if self.children.get(pid) is not container:
                return  # told already
            del self.children[pid]
            container.exit = {"exit_code": code, "exited_at": time.time_ns() // 1_000_000}
            if not container.drained:  # its output is still coming: recorded when drained
                container.drain_deadline = time.monotonic() + LOG_DRAIN_SECONDS
                self.undrained[pid] = container
                return
        self._record(container)

    def forget_unclaimed(self) -> None:
        """Drop the statuses nobody claimed in time: those of orphans (the main loop)."""
        horizon = time.monotonic() - UNCLAIMED_SECONDS
        with self.lock:
            for pid in [pid for pid, (_, at) in self.unclaimed.items() if at < horizon]:
                del self.unclaimed[pid]

    def attach(self, container_id: str) -> Attachment:
        """Attach to the container's live run, or else to its next one."""
        with self.lock:
            return self._fanout(container_id).attach()

    def _fanout(self, container_id: str) -> Fanout:
        """The container's attachments (under ``lock``): of its live run or its next one;
        a new one when the last run's output has ended."""
        fanout = self.fanouts.get(container_id)
        if fanout is None or fanout.ended:
            fanout = self.fanouts[container_id] = Fanout(str(self.root))
        return fanout

    def detach(self, container_id: str, attachment: Attachment) -> None:
        with self.lock:
            fanout = self.fanouts.get(container_id)
            # One waiting for a run that never came (its start failed) goes with its last
            # attachment; a live run's goes when its output has ended.
            if (fanout is not None and fanout.detach(attachment)
                    and container_id not in self.live):
                del self.fanouts[container_id]

    def _drained(self, container: _Container) -> None:
        """Both streams ended (called by the log pump; the run's attachments have ended)."""
        with self.lock:
            fanout = self.fanouts.get(container.container_id)
            if fanout is not None and fanout.ended:
                del self.fanouts[container.container_id]
            container.drained = True
            if container.exit is None:
                return
            if self.undrained.get(container.pid) is container:  # not a reused pid's
                del self.undrained[container.pid]
        self._record(container)

    def next_drain_deadline(self) -> float | None:
        with self.lock:
            return min((c.drain_deadline for c in self.undrained.values()), default=None)

    def expire_drains(self) -> None:
        """Record the exits whose output did not end in time (the main loop calls this)."""
        now = time.monotonic()
        with self.lock:
            late = [c for c in self.undrained.values() if c.drain_deadline <= now]
            for container in late:
                del self.undrained[container.pid]
        for container in late:
            log.warning("%s: Logger didn't exit in time: logs may be truncated",
                        container.container_id[:12])
            self._record(container)

    def _record(self, container: _Container) -> None:
        """The exit is durable before anyone is told; the log is complete before the exit
        (unless it did not end in time). Recorded once, by whoever comes last."""
        with self.lock:
            if container.recorded or container.exit is None:
                return
            container.recorded = True
            record = container.exit
            if self.live.get(container.container_id) is not container:
                # A run a later create of the same id replaced (a stale task force-deleted):
                # its exit would answer the new run's waits.
                log.debug("%s: exit of a replaced run dropped", container.container_id[:12])
                return
        path = exit_path(self.root, container.container_id)
        try:
            write_atomically(path, json.dumps(record))
        except Exception as exc:  # a full disk: the live daemon still hears of it
            log.error("%s: cannot record its exit durably: %s", container.container_id[:12], exc)
        with self.lock:
            if self.live.get(container.container_id) is not container:
                # A create of the same id came while the file was written: the file is this
                # replaced run's, never the new run's answer.
                path.unlink(missing_ok=True)
                return
            del self.live[container.container_id]
            self.exits[container.container_id] = record
            self.exits.move_to_end(container.container_id)
            while len(self.exits) > EXITS_KEPT:
                self.exits.popitem(last=False)
            self.lock.notify_all()

    def wait(self, request: dict[str, Any], gone: Callable[[], bool] | None = None
             ) -> dict[str, Any]:
        """Answer when the container's exit is recorded, or at the request's timeout; or,
        checked every second, once ``gone()`` says the asker hung up (a daemon that stopped
        waiting leaves no thread behind for the container's lifetime)."""
        container_id = str(request["id"])
        path = exit_path(self.root, container_id)
        deadline = time.monotonic() + float(request.get("timeout", 0))
        with self.lock:
            while True:
                recorded = self.exits.get(container_id)
                if recorded is not None:
                    return {"exited": True, **recorded}
                if path.exists():  # recorded by an earlier supervisor of this root
                    return {"exited": True, **json.loads(path.read_text())}
                if container_id not in self.live:
                    return {"exited": False, "known": False}
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (gone is not None and gone()):
                    return {"exited": False, "known": True}
                self.lock.wait(min(remaining, 1.0))


def _drain_until_exit(pid: int, stdout: int, stderr: int) -> bytes:
    """Read ``stdout`` and ``stderr`` until the child ``pid`` has exited (not to their end:
    the container's init holds them once created); return the first ``SAID_BYTES`` of stderr.
    The child is left to be reaped; the pipes are left blocking, as they came."""
    said = bytearray()
    try:
        exited = os.pidfd_open(pid)
    except OSError:  # out of descriptors: wait for it blindly, its output unread
        return b""
    pipes = (stdout, stderr)
    for descriptor in pipes:
        os.set_blocking(descriptor, False)
    try:
        poller = select.poll()
        for descriptor in (exited, *pipes):
            poller.register(descriptor, select.POLLIN)
        running = True
        while running:
            for descriptor, _events in poller.poll():
                if descriptor == exited:
                    running = False
                elif _keep(descriptor, descriptor == stderr, said) == b"":
                    poller.unregister(descriptor)  # its end (a runtime that closed it)
        for descriptor in pipes:  # what it wrote just before it exited
            while _keep(descriptor, descriptor == stderr, said):
                pass
    finally:
        os.close(exited)
        for descriptor in pipes:
            os.set_blocking(descriptor, True)
    return bytes(said)


def _keep(descriptor: int, kept: bool, said: bytearray) -> bytes | None:
    """Read what the non-blocking ``descriptor`` holds, into ``said`` if ``kept`` (up to
    ``SAID_BYTES``); return it: b"" at its end, None when it holds nothing now."""
    try:
        chunk = os.read(descriptor, 65536)
    except BlockingIOError:
        return None
    if kept and len(said) < SAID_BYTES:
        said += chunk[:SAID_BYTES - len(said)]
    return chunk


def _runc_error(log: pathlib.Path) -> str:
    """The last error runc logged (``--log-format json``)."""
    try:
        return _last_error(log.read_text(errors="replace"))
    except OSError:
        return ""


def _last_error(text: str) -> str:
    """The ``msg`` of the last error or fatal line among runc's JSON log lines."""
    message = ""
    for line in text.splitlines():
        with contextlib.suppress(ValueError, AttributeError):
            entry = json.loads(line)
            if entry.get("level") in ("error", "fatal"):
                message = str(entry.get("msg", ""))
    return message


def _operation(line: bytes) -> object:
    with contextlib.suppress(ValueError, AttributeError):
        return json.loads(line).get("op")
    return None


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        # A connection carries any number of requests, one line each, answered in turn:
        # clients keep theirs open (a connection and its thread cost ~0.25 ms a request).
        while line := self.rfile.readline(MAX_REQUEST_BYTES + 1):
            if len(line) > MAX_REQUEST_BYTES:  # no request is this long: not a client of ours
                log.warning("a request over %d bytes: connection closed", MAX_REQUEST_BYTES)
                return
            if b'"attach"' in line and _operation(line) == "attach":
                self._attach(line)  # the connection is the attachment's from here
                return
            reply, then = self._reply(line)
            try:
                self.wfile.write((json.dumps(reply) + "\n").encode())
            except (BrokenPipeError, ConnectionResetError):
                log.debug("a client left before its reply")  # a daemon stopped mid-wait
                return
            finally:
                if then is not None:  # after the reply: off the client's latency
                    then()

    def _attach(self, line: bytes) -> None:
        """Stream the container's output on this connection (see the protocol above)."""
        try:
            container_id = str(json.loads(line)["id"])
        except (ValueError, KeyError, TypeError) as exc:
            self.wfile.write((json.dumps({"ok": False, "error": str(exc)}) + "\n").encode())
            return
        supervisor = self.server.supervisor
        attachment = supervisor.attach(container_id)
        try:
            self.wfile.write(b'{"ok": true}\n')
            while True:
                item = attachment.take(timeout=1.0)
                if item is None:
                    if attachment.done:
                        if not attachment.cut_off:
                            self.wfile.write(struct.pack(">BxxxI", 0, 0))  # the end
                        return
                    if self._hung_up():
                        return
                    continue
                stream, chunk = item
                self.wfile.write(struct.pack(">BxxxI", stream, len(chunk)) + chunk)
        except (BrokenPipeError, ConnectionResetError):
            log.debug("an attached reader left")
        finally:
            supervisor.detach(container_id, attachment)
            attachment.close()  # what it did not take (a spool file) goes

    def _hung_up(self) -> bool:
        """Whether the client closed its end. A client sends nothing while it waits for a
        reply, so the connection is readable only at its end."""
        connection: socket.socket = self.connection
        try:  # never select(): a descriptor above 1023 is out of its range
            return connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False  # nothing to read: still there
        except OSError:
            return True

    def _reply(self, line: bytes) -> tuple[dict[str, Any], Callable[[], None] | None]:
        try:
            request = json.loads(line)
            operation = request.get("op")
            supervisor = self.server.supervisor
            if operation == "create":
                return supervisor.create(request)
            if operation == "wait":
                return supervisor.wait(request, self._hung_up), None
            if operation == "ping":
                return {"ok": True, "pid": os.getpid()}, None
            return {"ok": False, "error": f"unknown op {operation!r}"}, None
        except Exception as exc:  # a bad request never kills the supervisor
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}, None


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    # Connections a burst may queue before they are accepted (socketserver's default is 5:
    # 50 `run`s at once had some attach connections refused with EAGAIN).
    request_queue_size = 128

    def __init__(self, path: str, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        super().__init__(path, _Handler)


def serve(root: pathlib.Path) -> None:
    from engine.linux import hold_lock, set_child_subreaper

    # One supervisor a root: a second one (two daemon threads restarting a dead one at once)
    # leaves, instead of taking over the socket of the first and its containers' waits.
    root.mkdir(parents=True, exist_ok=True)
    if hold_lock(root / LOCK_FILE) is None:  # held (never closed) for this process's life
        log.info("another supervisor serves %s", root)
        return
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
    wake_read = supervisor.wake_read
    signal.set_wakeup_fd(supervisor.wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set() and (root / SOCKET).exists():
        # A root that was deleted (a test's, a benchmark's) has nobody to serve any more.
        deadline = supervisor.next_drain_deadline()
        timeout = 1.0 if deadline is None else min(1.0, max(0.0, deadline - time.monotonic()))
        ready, _, _ = select.select([wake_read], [], [], timeout)
        if ready:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_read, 4096)
        supervisor.reap()
        supervisor.expire_drains()
        supervisor.forget_unclaimed()
    server.shutdown()


class SupervisorClient:
    """The daemon's side: starts the supervisor if it is not running, and talks to it."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self._local = threading.local()  # one connection per calling thread, kept open
        self._restart = threading.Lock()  # one thread restarts a dead supervisor

    def _connection(self) -> socket.socket:
        connection: socket.socket | None = getattr(self._local, "connection", None)
        if connection is not None:
            # Between two replies nothing is due: a connection with something to read was
            # closed by a supervisor that went away (or is out of step); replace it.
            connection.setblocking(False)  # with a timeout, recv would first wait for data
            try:
                connection.recv(1, socket.MSG_PEEK)  # data or end of file: out of step
            except BlockingIOError:  # nothing to read: healthy
                return connection
            except OSError as exc:
                log.debug("supervisor connection reset: %s", exc)
            self._drop()
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.connect(str(self.root / SOCKET))
        except OSError:
            connection.close()
            raise
        self._local.connection = connection
        return connection

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()

    def _call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and read its reply. Raises OSError (the connection is then
        dropped: a reply that came late would answer the wrong request) or ValueError."""
        connection = self._connection()
        try:
            connection.settimeout(timeout)
            connection.sendall((json.dumps(request) + "\n").encode())
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = connection.recv(65536)
                if not chunk:
                    raise ConnectionResetError("the supervisor closed the connection")
                reply += chunk
        except BaseException:
            self._drop()
            raise
        result: dict[str, Any] = json.loads(reply)
        return result

    def ensure_running(self) -> int:
        """Return the supervisor's pid, starting it if needed."""
        with contextlib.suppress(OSError, ValueError):
            return int(self._call({"op": "ping"}, 2.0)["pid"])
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "supervisor.log", "ab")  # noqa: SIM115 - handed to the child
        started = subprocess.Popen([sys.executable, "-m", "engine.supervisor", str(self.root)],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   start_new_session=True, close_fds=True)
        log.close()
        # This process's child while it runs: reaped when it ends, so that one killed never
        # stays a zombie until the next one is started. It outlives this process as it is.
        threading.Thread(target=started.wait, name="supervisor-reaper", daemon=True).start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                return int(self._call({"op": "ping"}, 2.0)["pid"])
            time.sleep(0.02)
        raise OSError("the supervisor did not start (see supervisor.log)")

    def create(self, container_id: str, bundle: str, binary: str, runc_root: str,
               log_path: str) -> dict[str, Any]:
        request = {"op": "create", "id": container_id, "bundle": bundle, "binary": binary,
                   "runc_root": runc_root, "log": log_path}
        try:
            return self._call(request, 120.0)
        except (ConnectionRefusedError, FileNotFoundError):
            # Nobody listens (the supervisor died): nothing was created. Start another one.
            with self._restart:  # the others find it running when they get the lock
                log.warning("the supervisor of %s is gone: starting another one", self.root)
                self.ensure_running()
            return self._call(request, 120.0)

    def wait(self, container_id: str, timeout: float) -> dict[str, Any]:
        return self._call({"op": "wait", "id": container_id, "timeout": timeout},
                          timeout + 10.0)

    def attach(self, container_id: str) -> Attached | None:
        """Attach to the container's output (see the protocol); None if this supervisor
        cannot (one from before attach). A supervisor that is gone is started again, as a
        create would. Raises OSError if it cannot be reached."""
        try:
            return self._attach(container_id)
        except (ConnectionRefusedError, FileNotFoundError, ConnectionResetError):
            # Nobody listens, or the one that took the connection died before it answered.
            with self._restart:  # the others find it running when they get the lock
                log.warning("the supervisor of %s is gone: starting another one", self.root)
                self.ensure_running()
            return self._attach(container_id)

    def _attach(self, container_id: str) -> Attached | None:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # Blocking: with a timeout, a unix connect fails at once (EAGAIN) when the
            # supervisor's backlog is full, instead of waiting its turn.
            connection.connect(str(self.root / SOCKET))
            connection.settimeout(10.0)
            connection.sendall((json.dumps({"op": "attach", "id": container_id}) + "\n")
                               .encode())
            said = b""
            while not said.endswith(b"\n") and len(said) <= MAX_REQUEST_BYTES:
                chunk = connection.recv(1)  # the reply alone: the frames after it are raw
                if not chunk:
                    break
                said += chunk
            if not said:
                raise ConnectionResetError("the supervisor closed the connection")
            reply = json.loads(said)
        except BaseException:
            connection.close()
            raise
        if not reply.get("ok"):
            connection.close()
            return None
        return Attached(connection)


class Attached:
    """One attachment's connection: ``chunks()`` yields (stream, bytes) until the run's
    output ended, and None each ``HEARTBEAT_SECONDS`` nothing came (the caller may look
    around: a server shutting down, a client gone); ``close()`` (any thread) ends it early.
    ``complete`` says whether the end came (rather than a cut: the supervisor went away, or
    could not keep what the reader had not taken)."""

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection
        self.complete = False

    def chunks(self) -> Iterator[tuple[int, bytes] | None]:
        buffered = bytearray()
        try:
            self._connection.settimeout(HEARTBEAT_SECONDS)
            while True:
                start = 0  # the frames are cut out of what came, then it is dropped once
                while len(buffered) - start >= 8:
                    stream, size = struct.unpack_from(">BxxxI", buffered, start)
                    if stream == 0:
                        self.complete = True
                        return
                    if len(buffered) - start < 8 + size:
                        break
                    chunk = bytes(buffered[start + 8:start + 8 + size])
                    start += 8 + size
                    yield stream, chunk
                del buffered[:start]
                try:
                    received = self._connection.recv(1 << 20)
                except TimeoutError:
                    yield None
                    continue
                if not received:
                    return
                buffered += received
        except (OSError, ValueError):  # closed meanwhile
            return
        finally:
            self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._connection.shutdown(socket.SHUT_RDWR)
        self._connection.close()


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1:
        print("usage: python -m engine.supervisor ROOT", file=sys.stderr)
        return 2
    serve(pathlib.Path(arguments[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
