"""``berth daemon``: the composition of engine, API server, exit monitor and signals.

SIGTERM (or SIGINT) stops gracefully: no new calls, calls in flight finish (or, if cut short,
stay journaled for recovery at the next start). SIGHUP reloads the configuration file; a
configuration that fails validation is refused and the running one stays.
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import signal
import threading
import time

from engine.api.server import Tls, build_server, listen, start
from engine.composition import database_path, default_root, open_engine
from engine.config import ConfigSnapshot, parse_config
from engine.errors import BerthError, InvalidParameter, NotFound, System
from engine.event import ContainerEvent
from engine.linux import hold_lock
from engine.recovery import Recovery
from engine.reload import ConfigKeeper
from engine.service import Engine
from engine.state import ContainerState
from engine.store import MEMORY

log = logging.getLogger("berth.daemon")
GRACE_SECONDS = 10.0
SIGNAL_POLL_SECONDS = 0.1  # how often the main loop looks at the signals that came
LOCK_FILE = "daemon.lock"  # held by the one daemon serving a data root
RETRY_SECONDS = 0.1  # an exit monitor's first retry; doubled up to RETRY_MAX_SECONDS
RETRY_MAX_SECONDS = 5.0


class ExitMonitor:
    """Waits on every running container and records its exit when it comes (actor monitor)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._watching: set[str] = set()
        self._again: set[str] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        self._engine.saga.events.subscribe(self._on_event)
        for record in self._engine.list_containers():
            if record.state in (ContainerState.RUNNING, ContainerState.PAUSED):
                self.watch(record.id)

    def _on_event(self, event: ContainerEvent) -> None:
        if event.action == "start":
            self.watch(event.container_id)

    def watch(self, container_id: str) -> None:
        with self._lock:
            if container_id in self._watching:
                # A new run started while the last one is still watched (a restart): the
                # watcher may be on its way out, so it watches once more when it ends.
                self._again.add(container_id)
                return
            self._watching.add(container_id)
        threading.Thread(target=self._wait, args=(container_id,), daemon=True,
                         name=f"exit-{container_id[:12]}").start()

    def _wait(self, container_id: str) -> None:
        """Until the exit is recorded: a failed wait (the database or the runtime refusing
        for a moment) is tried again, so that no container stays running for good."""
        delay = RETRY_SECONDS
        failures = 0
        try:
            while True:
                try:
                    self._engine.wait(container_id)
                    return
                except NotFound:
                    return
                except InvalidParameter:  # its runtime is no longer configured: for good
                    log.exception("exit monitor of %s: cannot watch its exit",
                                  container_id[:12])
                    return
                except Exception as exc:
                    if self._engine.closing.is_set():
                        return  # the daemon stops: the next one watches it again
                    failures += 1
                    if failures == 1:
                        log.exception("exit monitor of %s: trying again", container_id[:12])
                    else:
                        log.warning("exit monitor of %s: failed %d times, next try in %.1f s: "
                                    "%s", container_id[:12], failures, delay, exc)
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
        finally:
            with self._lock:
                self._watching.discard(container_id)
                again = container_id in self._again
                self._again.discard(container_id)
            if again:
                self.watch(container_id)


class Daemon:
    def __init__(self, args: argparse.Namespace, early: list[int] | None = None) -> None:
        # First: a SIGHUP (a reload, a log rotation) or a SIGTERM that comes during recovery
        # must not take the default action and kill the daemon half-way. The handlers only
        # note what came (no lock, no database: the main thread they interrupt may hold
        # them); the main loop of ``serve`` acts on it.
        self.keeper: ConfigKeeper | None = None
        self._signals: list[int] = early if early is not None else []
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(number, lambda received, _frame: self._signals.append(received))
        self.root = pathlib.Path(args.root) if args.root else default_root()
        if args.config and not args.root and "BERTH_ROOT" not in os.environ:
            with open(args.config, encoding="utf-8") as handle:
                data_root = parse_config(handle.read()).get("data-root")
            if data_root:  # daemon.json's data-root, unless a flag or BERTH_ROOT says otherwise
                self.root = pathlib.Path(str(data_root))
        self._lock = _hold_root(self.root)  # before recovery: it rewrites the journal
        database = args.db or database_path(self.root)
        # The journal may live outside the root (--db, BERTH_DB): one daemon per journal too.
        self._database_lock = _hold_database(database)
        self.engine, report = open_engine(self.root, db_path=database,
                                          backend=args.backend, recover=False)
        self.keeper = ConfigKeeper(path=args.config, root=self.root, store=self.engine.config,
                                   db=self.engine.saga.db, events=self.engine.saga.events)
        self.keeper.start()  # before recovery: it may start nothing, but it reads the config
        report = Recovery(self.engine).run()
        if report.rolled_forward or report.compensated or report.exits or report.removals \
                or report.reconciled or report.failures:
            log.info("recovery: %s", report)
        self.backend = args.backend or os.environ.get("BERTH_BACKEND", "runc")
        self.addresses = args.host or [os.environ.get("BERTH_HOST") or
                                       f"unix://{self.root / 'berth.sock'}"]
        self.tls = Tls(args.tls_cert, args.tls_key, args.tls_ca) if args.tls_cert else None
        self.insecure = args.insecure_tcp

    def reload(self) -> ConfigSnapshot:
        """Raises InvalidParameter (the running configuration stays)."""
        assert self.keeper is not None
        try:
            return self.keeper.reload()
        except OSError as error:
            raise InvalidParameter(f"cannot read the configuration file: {error}") from error

    def _stop_requested(self) -> bool:
        return any(number != signal.SIGHUP for number in self._signals)

    def serve(self) -> int:
        if self._stop_requested():  # told to stop during recovery: never serve
            self.engine.close()
            return 0
        shutdown = threading.Event()
        server = build_server(self.engine, data_root=str(self.root), backend=self.backend,
                              reload=self.reload, shutdown=shutdown)
        bound = [listen(server, address, tls=self.tls, insecure=self.insecure)
                 for address in self.addresses]
        start(server, bound)
        ExitMonitor(self.engine).start()
        print(f"berth daemon listening on {', '.join(bound)} "
              f"(database {self.engine.saga.db.path})", flush=True)
        handled = 0
        while True:
            arrived = self._signals[handled:]
            handled += len(arrived)
            if any(number != signal.SIGHUP for number in arrived):
                break
            if arrived:  # SIGHUPs, during recovery or since the last look: one reload
                self._reload_on_signal()
            time.sleep(SIGNAL_POLL_SECONDS)
        self.engine.closing.set()  # the engine's lock-free waits (a stop's) end too
        shutdown.set()  # the long calls end now; the others get the grace period
        server.stop(GRACE_SECONDS).wait()
        self.engine.close()
        return 0

    def _reload_on_signal(self) -> None:
        try:
            self.reload()
        except BerthError as error:
            log.error("Error reconfiguring the daemon: %s", error)


def _hold_root(root: pathlib.Path) -> int:
    """Take ``<root>/daemon.lock`` for this daemon's life. Raises System if another daemon
    holds it: a second one would run recovery on the first one's journal and take over its
    socket."""
    root.mkdir(parents=True, exist_ok=True)
    descriptor = hold_lock(root / LOCK_FILE)
    if descriptor is None:
        raise System(f"another berth daemon is running on {root} (it holds {root / LOCK_FILE})")
    return descriptor


def _hold_database(path: str) -> int | None:
    """Take ``<database>.lock`` for this daemon's life (None for an in-memory one). Raises
    System if another daemon holds it: that one's root may differ, and recovery here would
    judge its live containers by this root's runtime."""
    if path == MEMORY:
        return None
    lock = f"{path}.lock"
    try:
        descriptor = hold_lock(lock)
    except OSError as exc:  # its directory is missing, unwritable...
        raise System(f"cannot open database {path}: {exc}") from exc
    if descriptor is None:
        raise System(f"another berth daemon is using the database {path} (it holds {lock})")
    return descriptor


def run_daemon(args: argparse.Namespace, early: list[int] | None = None) -> int:
    """Run the daemon until SIGTERM or SIGINT; ``early`` holds the signals that came before
    it could handle them (acted on once it can)."""
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("transitions", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return Daemon(args, early).serve()
