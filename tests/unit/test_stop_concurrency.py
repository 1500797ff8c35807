"""A stop waits for the exit without holding the container's lock (moby's containerStop): a
kill or an ``rm -f`` during a long stop goes through, and the stop still ends journaled."""

from __future__ import annotations

import pathlib
import signal
import threading
import time
from collections.abc import Callable

import pytest

from engine.composition import open_engine
from engine.errors import Conflict, ContainerNotFound, InvalidParameter, System, Unknown
from engine.failpoint import Failpoints
from engine.service import API, Engine
from engine.state import Actor, ContainerState
from engine.store import JournalContext
from engine.testing import FakeHost, FakeRuntime
from tests.conftest import make_config


def _stopping(engine: Engine, timeout: int) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def stop() -> None:
        try:
            outcome.append(engine.stop("web", timeout=timeout))
        except Exception as exc:  # reported to the test
            outcome.append(exc)

    stopper = threading.Thread(target=stop)
    stopper.start()
    deadline = time.monotonic() + 30
    while not any(row.event == "kill" for row in engine.history("web")):
        assert time.monotonic() < deadline and stopper.is_alive()
        time.sleep(0.01)
    return stopper, outcome


def test_a_kill_during_a_stop_that_waits_forever_goes_through(
        engine: Engine, fake_runtime: FakeRuntime) -> None:
    record = engine.create(make_config("web"))
    fake_runtime.ignore_sigterm.add(record.id)
    engine.start("web")
    stopper, outcome = _stopping(engine, timeout=-1)  # never falls back to SIGKILL itself
    killed = engine.kill("web")
    stopper.join(30)
    assert not stopper.is_alive()
    assert killed.state is ContainerState.EXITED and killed.exit_code == 137
    stopped = outcome[0]
    assert not isinstance(stopped, Exception), stopped
    after = engine.inspect("web")
    assert after.state is ContainerState.EXITED and after.exit_code == 137
    events = [row.event for row in engine.history("web") if "." not in row.event]
    # moby: the stop's kill (15), the kill's (9), the exit, then the stop once its wait is over.
    assert events[-4:] == ["kill", "kill", "die", "stop"], events
    assert after.has_been_manually_stopped


def test_an_rm_force_during_a_long_stop_goes_through(engine: Engine,
                                                      fake_runtime: FakeRuntime) -> None:
    record = engine.create(make_config("web"))
    fake_runtime.ignore_sigterm.add(record.id)
    engine.start("web")
    stopper, outcome = _stopping(engine, timeout=-1)
    engine.remove("web", force=True)
    stopper.join(30)
    assert not stopper.is_alive()
    assert not isinstance(outcome[0], Exception), outcome[0]
    assert engine.list_containers(all=True) == []


def test_a_stop_whose_exit_another_recorded_is_still_a_stop(
        engine: Engine, fake_runtime: FakeRuntime) -> None:
    """The exit monitor (a wait) records the exit first: the stop journals only its ``stop``."""
    record = engine.create(make_config("web"))
    fake_runtime.ignore_sigterm.add(record.id)
    engine.start("web")
    stopper, outcome = _stopping(engine, timeout=-1)
    fake_runtime.exit(record.id, 3)  # it exits on its own, after all
    engine.wait("web", timeout=30)  # the monitor's wait records it
    stopper.join(30)
    assert not stopper.is_alive()
    assert not isinstance(outcome[0], Exception), outcome[0]
    after = engine.inspect("web")
    assert (after.state, after.exit_code) == (ContainerState.EXITED, 3)
    events = [row.event for row in engine.history("web") if "." not in row.event]
    assert events[-2:] == ["die", "stop"] and events.count("die") == 1, events


def test_kill_words_a_stopped_container_as_moby_does(engine: Engine) -> None:
    record = engine.create(make_config("web"))
    with pytest.raises(Conflict, match=f"^Container {record.id} is not running$"):
        engine.kill("web")
    with pytest.raises(Conflict, match=f"^container {record.id} is not running$"):
        engine.kill("web", signal=15)


def test_a_runtime_that_fails_to_signal_is_cannot_kill_with_its_class(
        engine: Engine, fake_runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    record = engine.create(make_config("web"))
    engine.start("web")

    def refuse(*_: object, **__: object) -> None:
        raise System("runc kill: permission denied")

    monkeypatch.setattr(fake_runtime, "kill", refuse)
    with pytest.raises(System, match=f"^Cannot kill container {record.id}: runc kill: "
                                     "permission denied$"):
        engine.kill("web", signal=15)
    with pytest.raises(System, match=f"^cannot stop container: web: Cannot kill container "
                                     f"{record.id}: runc kill: permission denied$"):
        engine.stop("web")


@pytest.mark.parametrize("signal", [0, -9, 65, 999])
def test_a_stop_with_no_such_signal_is_refused_before_anything_is_journaled(
        engine: Engine, signal: int) -> None:
    engine.create(make_config("web"))
    engine.start("web")
    before = len(engine.history("web"))
    with pytest.raises(InvalidParameter, match=f"does not support signal {signal}$"):
        engine.stop("web", signal=signal)
    assert len(engine.history("web")) == before
    after = engine.inspect("web")
    assert after.state is ContainerState.RUNNING and not after.has_been_manually_stopped


def test_a_restart_logs_dockers_events_and_ends_with_restart(engine: Engine) -> None:
    """T25: kill, die, stop, start, restart; there was no ``restart`` (helper-40). A failed
    restart logs none."""
    engine.create(make_config("web"))
    engine.start("web")
    engine.restart("web", timeout=1)  # the fake task ends on SIGTERM
    events = [row.event for row in engine.history("web") if "." not in row.event]
    assert events == ["create", "start", "kill", "die", "stop", "start", "restart"]
    engine.stop("web", timeout=1)
    engine.restart("web")  # exited: started, then restart
    events = [row.event for row in engine.history("web") if "." not in row.event]
    assert events[-2:] == ["start", "restart"]


def test_a_failed_restart_is_wrapped_and_unclassified_as_moby(
        engine: Engine, fake_runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    engine.create(make_config("web"))

    def missing(*_: object, **__: object) -> None:
        raise InvalidParameter('exec: "nope": executable file not found in $PATH')

    monkeypatch.setattr(fake_runtime, "start", missing)
    with pytest.raises(Unknown, match=r'^Cannot restart container web: exec: "nope": '
                                      r'executable file not found in \$PATH$'):
        engine.restart("web")
    with pytest.raises(ContainerNotFound):  # looked up first: not wrapped
        engine.restart("ghost")


def test_the_lock_table_keeps_only_the_locks_in_use(engine: Engine) -> None:
    """Auto-removed containers (``--rm``) used to leave their lock behind, one per container."""
    for index in range(20):
        engine.create(make_config(f"gone{index}", auto_remove=True))
        engine.start(f"gone{index}")
        engine.kill(f"gone{index}")  # its exit removes it
    engine.create(make_config("kept"))
    engine.remove("kept")
    assert engine.list_containers(all=True) == []
    assert engine._locks == {}


def test_an_exit_whose_handling_failed_half_way_is_finished_by_the_next_wait(
        engine: Engine, fake_runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    """The exit was journaled (``exiting``), then its handling failed (a commit refused): it
    used to stay ``exiting`` until the daemon restarted, every wait answering at once."""
    from engine import termination

    engine.create(make_config("web"))
    engine.start("web")
    original = termination.run_cleanup
    calls: list[int] = []

    def fails_once(*arguments: object, **options: object) -> None:
        if not calls:
            calls.append(1)
            raise System("database: commit failed: disk I/O error")
        original(*arguments, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(termination, "run_cleanup", fails_once)
    with pytest.raises(System):
        engine.kill("web")
    assert engine.inspect("web").state is ContainerState.EXITING
    waited = engine.wait("web", timeout=30)
    assert (waited.state, waited.exit_code) == (ContainerState.EXITED, 137)
    with engine.saga.db.read() as reader:
        assert reader.unfinished_operations() == []


def _monitor_first(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Make every wait of another thread (the stop's) return only once the returned event is
    set: the test's own wait, the exit monitor's, records the exit first."""
    original = engine._wait
    main = threading.current_thread()
    recorded = threading.Event()

    def later(target: object, timeout: float | None, **options: bool) -> object:
        status = original(target, timeout, **options)  # type: ignore[arg-type]
        if threading.current_thread() is not main:
            recorded.wait(30)
        return status

    monkeypatch.setattr(engine, "_wait", later)
    return recorded


def _events(engine: Engine, reference: str) -> list[str]:
    return [row.event for row in engine.history(reference) if "." not in row.event]


def test_a_restart_of_an_auto_remove_container_keeps_it_whoever_records_the_exit(
        engine: Engine, fake_runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    """The exit monitor records the exit while the restart's stop waits: it used to
    auto-remove the container, and the restart then failed on a container gone."""
    record = engine.create(make_config("web", auto_remove=True))
    fake_runtime.ignore_sigterm.add(record.id)
    engine.start("web")
    recorded = _monitor_first(engine, monkeypatch)
    outcome: list[object] = []

    def restart() -> None:
        try:
            outcome.append(engine.restart("web", timeout=-1))
        except Exception as exc:  # reported to the test
            outcome.append(exc)

    restarter = threading.Thread(target=restart)
    restarter.start()
    deadline = time.monotonic() + 30
    while "kill" not in _events(engine, "web"):
        assert time.monotonic() < deadline and restarter.is_alive()
        time.sleep(0.01)
    fake_runtime.exit(record.id, 0)  # it ends after all
    engine.wait("web", timeout=30)  # the monitor's wait records it first
    recorded.set()
    restarter.join(30)
    assert not restarter.is_alive()
    assert not isinstance(outcome[0], Exception), outcome[0]
    assert engine.inspect("web").state is ContainerState.RUNNING
    events = _events(engine, "web")
    assert events[-5:] == ["kill", "die", "stop", "start", "restart"], events
    assert "destroy" not in events


def test_a_stop_of_an_auto_remove_container_is_journaled_before_its_removal(
        engine: Engine, fake_runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    record = engine.create(make_config("web", auto_remove=True))
    fake_runtime.ignore_sigterm.add(record.id)
    engine.start("web")
    recorded = _monitor_first(engine, monkeypatch)
    stopper, outcome = _stopping(engine, timeout=-1)
    fake_runtime.exit(record.id, 0)
    engine.wait("web", timeout=30)  # the monitor records the exit, then auto-removes
    recorded.set()
    stopper.join(30)
    assert not stopper.is_alive()
    assert not isinstance(outcome[0], Exception), outcome[0]
    assert engine.list_containers(all=True) == []
    with engine.saga.db.read() as reader:
        events = [row.event for row in reader.history(since=0)
                  if row.container_id == record.id and "." not in row.event]
    # The stop's event used to be lost: the monitor's exit removed the container first.
    assert events[-4:] == ["kill", "die", "stop", "destroy"], events


def test_a_stop_whose_run_ended_meanwhile_does_not_wait_for_the_next_one(
        engine: Engine, fake_runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    """``stop -t 1`` times out; before it forces, the run is killed and started again: the
    stop must not SIGKILL the new run, nor wait 10 s on it."""
    record = engine.create(make_config("web"))
    fake_runtime.ignore_sigterm.add(record.id)
    engine.start("web")
    original = engine._wait
    calls: list[float | None] = []

    def first_times_out_then_a_new_run(target: object, timeout: float | None,
                                       **options: bool) -> object:
        calls.append(timeout)
        if len(calls) == 1:
            engine.kill("web")
            engine.start("web")  # a new run, before the stop looks again
            return None
        return original(target, timeout, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "_wait", first_times_out_then_a_new_run)
    engine.stop("web", timeout=1)
    monkeypatch.setattr(engine, "_wait", original)
    assert engine.inspect("web").state is ContainerState.RUNNING  # the new run, untouched
    assert len(calls) == 2  # the stop's own wait and the kill's, never a forced one more


def _gate_thread(engine: Engine, monkeypatch: pytest.MonkeyPatch, name: str
                 ) -> threading.Event:
    """Waits made by the thread called ``name`` return only once the event is set."""
    original = engine._wait
    gate = threading.Event()

    def gated(target: object, timeout: float | None, **options: bool) -> object:
        status = original(target, timeout, **options)  # type: ignore[arg-type]
        if threading.current_thread().name == name:
            gate.wait(30)
        return status

    monkeypatch.setattr(engine, "_wait", gated)
    return gate


def _in_thread(name: str, call: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:  # reported to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread, outcome


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def _race(engine: Engine, runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch,
          container_id: str, *, gated: Callable[[], object], free: Callable[[], object],
          gated_first: bool, exit_code: int) -> None:
    """Run ``gated`` and ``free`` (each sends a signal, then waits), the one named first
    first; the task exits; ``free`` finishes, then ``gated`` (its waits held back until
    then). Both must succeed."""
    gate = _gate_thread(engine, monkeypatch, "gated")
    order = [("gated", gated), ("free", free)] if gated_first else [("free", free),
                                                                     ("gated", gated)]
    threads = {}
    for count, (name, call) in enumerate(order, start=1):
        threads[name] = _in_thread(name, call)
        _until(lambda count=count: _events(engine, "web").count("kill") == count)
    runtime.exit(container_id, exit_code)
    threads["free"][0].join(30)
    gate.set()
    threads["gated"][0].join(30)
    for name, (thread, outcome) in threads.items():
        assert not thread.is_alive(), name
        assert not isinstance(outcome[0], Exception), (name, outcome[0])


def test_a_stop_racing_a_restart_of_an_auto_remove_container_leaves_it_running(
        engine: Engine, fake_runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plain stop used to auto-remove the container after its own wait, between the
    restart's stop and its start: the restart then failed on a container gone."""
    record = engine.create(make_config("web", auto_remove=True))
    fake_runtime.ignore_sigterm.add(record.id)
    engine.start("web")
    _race(engine, fake_runtime, monkeypatch, record.id, exit_code=0,
          gated=lambda: engine.restart("web", timeout=-1),
          free=lambda: engine.stop("web", timeout=-1), gated_first=True)
    assert engine.inspect("web").state is ContainerState.RUNNING
    assert "destroy" not in _events(engine, "web")


def test_two_restarts_at_once_both_succeed(engine: Engine, fake_runtime: FakeRuntime,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The later restart finds the container running again (the other's start): moby's
    containerStart has nothing to do. It used to fail "Container is already started"."""
    record = engine.create(make_config("web"))
    engine.start("web")
    gate = _gate_thread(engine, monkeypatch, "first")
    first, first_outcome = _in_thread("first", lambda: engine.restart("web", timeout=5))
    _until(lambda: _events(engine, "web").count("kill") == 1)
    engine.restart("web", timeout=5)  # the second one, all the way
    gate.set()
    first.join(30)
    assert not isinstance(first_outcome[0], Exception), first_outcome[0]
    assert engine.inspect("web").state is ContainerState.RUNNING
    assert record.id in fake_runtime.tasks()


def test_each_stop_of_a_run_journals_its_stop(engine: Engine, fake_runtime: FakeRuntime,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    record = engine.create(make_config("web"))
    fake_runtime.ignore_sigterm.add(record.id)
    engine.start("web")
    _race(engine, fake_runtime, monkeypatch, record.id, exit_code=143,
          gated=lambda: engine.stop("web", timeout=-1),
          free=lambda: engine.stop("web", timeout=-1), gated_first=False)
    events = _events(engine, "web")
    assert events[-5:] == ["kill", "kill", "die", "stop", "stop"], events


def test_a_closing_engine_ends_a_stop_that_would_wait_forever(
        engine: Engine, fake_runtime: FakeRuntime) -> None:
    """A daemon told to stop: the stop's lock-free wait ends, and the daemon with it."""
    record = engine.create(make_config("web"))
    fake_runtime.ignore_sigterm.add(record.id)
    engine.start("web")
    stopper, outcome = _in_thread("stopper", lambda: engine.stop("web", timeout=-1))
    _until(lambda: "kill" in _events(engine, "web"))
    engine.closing.set()
    stopper.join(30)
    assert not stopper.is_alive()
    assert isinstance(outcome[0], System)
    assert str(outcome[0]) == "cannot stop container: web: the berth daemon is shutting down"


def test_a_start_that_finds_the_container_running_or_paused_under_the_lock_does_nothing(
        engine: Engine) -> None:
    """moby's containerStart once it holds the lock: a concurrent start won (paused counts
    as running), whatever else the request asked (a checkpoint directory is refused only
    for a start that would run)."""
    engine.create(make_config("web"))
    engine.start("web")
    snapshot = engine.config.current()
    record = engine.inspect("web")
    assert engine._start_locked(record.id, snapshot, engine_context()) is False
    assert engine._start_locked(record.id, snapshot, engine_context(),
                                checkpoint_dir="/cp") is False
    engine.pause("web")
    assert engine._start_locked(record.id, snapshot, engine_context()) is False
    assert engine.inspect("web").state is ContainerState.PAUSED


def engine_context() -> JournalContext:
    return JournalContext(Actor.API)


@pytest.mark.parametrize("verb", ["stop", "restart"])
def test_a_stop_the_daemon_died_in_is_resumed_after_recovery(tmp_path: pathlib.Path,
                                                             verb: str) -> None:
    """The stop's SIGKILL lived in the dead daemon only (the container, ignoring SIGTERM,
    ran on for good, marked manually stopped). Its kill row carries its timeout: recovery
    stops it again with what was left of it (a restart's is a restart again)."""
    runtime, host = FakeRuntime(), FakeHost(str(tmp_path))
    engine, _ = open_engine(tmp_path, runtime=runtime, host=host, failpoints=Failpoints())
    record = engine.create(make_config("stubborn"))
    runtime.ignore_sigterm.add(record.id)
    engine.start(record.id)
    started = engine.inspect(record.id).resources_operation_id
    # What the stop did before the daemon died: the kill journaled and sent, then nothing.
    engine._signal(engine.inspect(record.id), signal.SIGTERM, API, manual_stop=True,
                   stop_timeout=0.5, restarting=verb == "restart")
    assert engine.inspect(record.id).state is ContainerState.RUNNING
    engine.saga.db.close()
    reopened, report = open_engine(tmp_path, runtime=runtime, host=host,
                                   failpoints=Failpoints())
    assert report is not None and report.stops == [record.id]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        after = reopened.inspect(record.id)
        if verb == "stop" and after.state is ContainerState.EXITED:
            break
        if verb == "restart" and after.resources_operation_id != started \
                and after.state is ContainerState.RUNNING:
            break
        time.sleep(0.05)
    after = reopened.inspect(record.id)
    if verb == "stop":
        assert (after.state, after.exit_code) == (ContainerState.EXITED, 137)
    else:
        assert after.state is ContainerState.RUNNING and after.resources_operation_id != started
    assert [row.event for row in reopened.history(record.id)].count("kill") >= 3


def test_a_kill_is_not_escalated_by_recovery(tmp_path: pathlib.Path) -> None:
    runtime, host = FakeRuntime(), FakeHost(str(tmp_path))
    engine, _ = open_engine(tmp_path, runtime=runtime, host=host, failpoints=Failpoints())
    record = engine.create(make_config("signalled"))
    runtime.ignore_sigterm.add(record.id)
    engine.start(record.id)
    engine.kill(record.id, signal=signal.SIGTERM)  # ignored: it runs on, as it may
    engine.saga.db.close()
    reopened, report = open_engine(tmp_path, runtime=runtime, host=host,
                                   failpoints=Failpoints())
    assert report is not None and report.stops == []
    assert reopened.inspect(record.id).state is ContainerState.RUNNING


def test_a_stops_sigkill_row_says_it_is_owed_at_once(engine: Engine,
                                                    fake_runtime: FakeRuntime) -> None:
    """A daemon dying between the escalation's commit and its signal leaves recovery to
    send it: its kill row carries a timeout of 0 (a kill's carries none)."""
    record = engine.create(make_config("escalated"))
    fake_runtime.ignore_sigterm.add(record.id)
    engine.start(record.id)
    engine.stop(record.id, timeout=0)
    kills = [row.attributes or {} for row in engine.history(record.id) if row.event == "kill"]
    assert [(kill["signal"], kill["stopTimeout"]) for kill in kills] == [(15, 0), (9, 0)]
