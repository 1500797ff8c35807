"""Stateful property: random lifecycle operations and injected faults keep the journal honest.

A hypothesis state machine drives a real ``Engine`` (fresh temp root, ``FakeRuntime``,
``FakeHost``) through create, start, stop, kill, pause, unpause, remove and natural exits, arming
one ``System`` fault on a random runtime or host call before an operation. After every step:

1. each container's history replays through ``engine.lifecycle.advance`` (every row's
   ``to_state`` follows from its ``from_state`` and event, rows chain, the last one is the stored
   state);
2. history is gap-free: seq is exactly 1..N and the record's ``last_seq`` is N;
3. no operation is unfinished, no step is left running, no container rests in a transient state;
4. no leak: what the fakes hold is exactly what the journal says is held. Replaying each
   container's operations and steps gives the resources it acquired and released; the fakes must
   agree. A live container holds its start's resources and a task in the same state; any other
   container holds only what a ``compensation_failed`` step (caused by an injected release fault)
   could not release; a cleanup step never skips a resource its operation held;
5. a failed start leaves Docker status ``created`` (first start) or ``exited``, a non-empty error
   and exit code 126/127/128 or the previous non-zero code.

Only ``BerthError`` may escape the engine: anything else fails the test (errors crossing a module
boundary are classified).
"""

from __future__ import annotations

import atexit
import dataclasses
import itertools
import pathlib
import shutil
import signal as signals
import tempfile
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from engine import steps
from engine.composition import DB_FILE, open_engine
from engine.config import ConfigSnapshot
from engine.container_config import ContainerConfig
from engine.errors import (
    BerthError,
    ContainerNotFound,
    NameInUseConflict,
    System,
)
from engine.failpoint import Failpoints
from engine.lifecycle import Event, advance
from engine.runtime import TaskStatus
from engine.state import (
    ContainerState,
    OperationKind,
    OperationStatus,
    StepKind,
    StepStatus,
    docker_status,
)
from engine.store import ContainerRecord, Database, OperationRecord, Reader, StepRecord
from engine.testing import FakeHost, FakeRuntime

S = ContainerState

# -- the containers the machine plays with ---------------------------------------------------
PLAIN = "alpha"  # defaults: rootfs, netns, shm, spec
MOUNTED = "beta"  # host network (no netns), secrets and a bind mount
STUBBORN = "stubborn"  # its task ignores SIGTERM: stop falls back to SIGKILL
AUTO = "auto"  # --rm: a failed start removes it
NAMES = (PLAIN, MOUNTED, STUBBORN, AUTO)
CONFIGS: Mapping[str, Mapping[str, Any]] = {
    PLAIN: {},
    MOUNTED: {"network_mode": "host", "secrets": ("token",), "mounts": ("/srv:/data:ro",)},
    STUBBORN: {},
    AUTO: {"auto_remove": True},
}

# -- faults ---------------------------------------------------------------------------------
HOST_CALLS = ("acquire:rootfs", "acquire:network", "acquire:ipc", "acquire:spec",
              "attach:network", "release:network", "release:rootfs", "release:ipc", "release_all",
              "remove")
RUNTIME_CALLS = ("create", "start", "delete", "kill", "pause", "resume")
# Calls whose failure may leave a resource behind (recorded ``compensation_failed``).
RELEASE_CALLS = frozenset({"release:network", "release:rootfs", "release:ipc", "release_all",
                           "remove", "delete"})
# The start-error classifier reads the message: cover 126, 127 and 128.
MESSAGES = ("permission denied", "executable file not found in $PATH", "device or resource busy")
# Which journaled step each release call's failure shows up in.
FAILED_STEP_OF_CALL: Mapping[str, frozenset[str]] = {
    "release:network": frozenset({steps.RELEASE_NETWORK}),
    "release:rootfs": frozenset({steps.UNMOUNT_ROOTFS}),
    "release:ipc": frozenset({steps.UNMOUNT_IPC}),
    "release_all": frozenset({steps.UNMOUNT_RECURSIVE, steps.AUTO_REMOVE}),
    "delete": frozenset({steps.DELETE_RUNTIME_CONTAINER, steps.AUTO_REMOVE}),
    "remove": frozenset({steps.AUTO_REMOVE}),
}
RELEASES = ("release:network", "release:rootfs", "release:ipc", "release_all", "delete")
START_CALLS = ("acquire:rootfs", "acquire:network", "acquire:ipc", "acquire:spec", "create",
               "attach:network", "start", *RELEASES, "remove")
EXIT_CALLS = ("kill", "resume", *RELEASES)
FREEZE_CALLS = ("pause", "resume")
REMOVE_CALLS = ("kill", "delete", "release_all", "remove", *RELEASES)

Fault = tuple[str, str] | None
Aim = tuple[int, int]
# (roll, choice): which container an operation is aimed at (see ``LifecycleMachine.pick``).
AIM = st.tuples(st.integers(0, 7), st.integers(0, 3))


def faults(likely: tuple[str, ...]) -> st.SearchStrategy[Fault]:
    """No fault, one on a call the operation is likely to make, or one on any call."""
    return st.one_of(
        st.none(),
        st.tuples(st.sampled_from(likely), st.sampled_from(MESSAGES)),
        st.tuples(st.sampled_from(HOST_CALLS + RUNTIME_CALLS), st.sampled_from(MESSAGES)),
    )


def assert_exited(before: ContainerRecord, after: ContainerRecord) -> None:
    """moby's T8: exited, then an auto-remove container is removed (dead if that failed)."""
    if before.auto_remove:
        assert after.state in (S.REMOVED, S.DEAD), after
    else:
        assert after.state is S.EXITED, after


# -- what the journal says is held -----------------------------------------------------------
TASK = "task"
MOUNTS = frozenset({"rootfs", "ipc", "secrets", "volumes"})
# A cleanup sub-step (start compensation or exit) releases these, if its operation held them.
CLEANUP_RELEASES: Mapping[str, frozenset[str]] = {
    steps.DELETE_RUNTIME_CONTAINER: frozenset({TASK, "spec"}),
    steps.RELEASE_NETWORK: frozenset({"network"}),
    steps.UNMOUNT_IPC: frozenset({"ipc"}),
    steps.UNMOUNT_ROOTFS: frozenset({"rootfs"}),
    steps.UNMOUNT_SECRETS: frozenset({"secrets"}),
    steps.UNMOUNT_VOLUMES: frozenset({"volumes"}),
    steps.UNMOUNT_RECURSIVE: MOUNTS,
}
# A removal step releases these whatever was held (runc delete --force; umount everything).
REMOVAL_RELEASES: Mapping[str, frozenset[str]] = {
    steps.DELETE_RUNTIME_CONTAINER: frozenset({TASK}),
    steps.UNMOUNT_RECURSIVE: MOUNTS,
    # Removing the files takes everything under the container's directory with them: its
    # network namespace and bundle too, whatever a failed cleanup left behind.
    steps.REMOVE_FILES: frozenset({"rootfs", "network", "ipc", "secrets", "volumes", "spec"}),
}
HOLDING = frozenset({StepStatus.DONE.value, StepStatus.RUNNING.value, StepStatus.FAILED.value})
TRANSIENT = frozenset({S.STARTING, S.ROLLING_BACK, S.EXITING, S.REMOVING})
LIVE = frozenset({S.RUNNING, S.PAUSED})
START_EXIT_CODES = frozenset({126, 127, 128})


@dataclasses.dataclass
class Holding:
    """Resources of one container according to its journal."""

    definite: set[str] = dataclasses.field(default_factory=set)
    maybe: set[str] = dataclasses.field(default_factory=set)  # a failed acquisition
    # resource -> the compensation_failed step that last failed to release it
    failed_release: dict[str, StepRecord] = dataclasses.field(default_factory=dict)

    def acquire(self, resources: Iterable[str], *, certain: bool) -> None:
        for resource in resources:
            self.failed_release.pop(resource, None)
            if certain:
                self.definite.add(resource)
                self.maybe.discard(resource)
            elif resource not in self.definite:
                self.maybe.add(resource)

    def release(self, resources: Iterable[str]) -> None:
        for resource in resources:
            self.definite.discard(resource)
            self.maybe.discard(resource)
            self.failed_release.pop(resource, None)

    def fail_release(self, resources: Iterable[str], row: StepRecord) -> None:
        for resource in resources:
            if resource in self.definite or resource in self.maybe:
                self.failed_release[resource] = row


Journal = list[tuple[OperationRecord, list[StepRecord]]]  # a container's operations and steps


def read_journal(reader: Reader, container_id: str) -> Journal:
    return [(operation, reader.steps(operation.id))
            for operation in reader.operations(container_id)]


def journal_holding(record: ContainerRecord, journal: Journal) -> Holding:
    """Replay a container's operations and steps into the resources they leave held.

    Also asserts that a cleanup sub-step recorded ``skipped`` had nothing of its operation's to
    release (a skip that hides a held resource is a leak).
    """
    holding = Holding()
    start_held: frozenset[str] = frozenset()  # what the start that made it live acquired
    for operation, rows in journal:
        held: set[str] = set()
        if operation.kind == OperationKind.START.value:
            for row in rows:
                if (row.kind == StepKind.FORWARD.value and row.name in steps.ACQUIRING_STEPS
                        and row.status in HOLDING and row.handle):
                    held |= set(row.handle)
            if operation.status == OperationStatus.SUCCEEDED.value:
                start_held = frozenset(held)
        elif operation.kind == OperationKind.EXIT.value:
            held = set(start_held)
        for row in rows:
            if operation.kind == OperationKind.REMOVE.value:
                if row.status == StepStatus.DONE.value:
                    holding.release(REMOVAL_RELEASES.get(row.name, ()))
                continue
            if row.kind == StepKind.FORWARD.value:
                if row.name in steps.ACQUIRING_STEPS and row.status in HOLDING and row.handle:
                    holding.acquire(row.handle, certain=row.status == StepStatus.DONE.value)
                continue
            covers = CLEANUP_RELEASES.get(row.name, frozenset()) & held
            if row.status == StepStatus.SKIPPED.value:
                assert not covers, (
                    f"{record.name}: operation {operation.id} ({operation.kind}) skipped "
                    f"{row.name} although it held {sorted(covers)}")
            elif row.status == StepStatus.COMPENSATED.value:
                holding.release(covers)
            elif row.status == StepStatus.COMPENSATION_FAILED.value:
                holding.fail_release(covers, row)
    return holding


def replay_history(reader: Reader, record: ContainerRecord) -> None:
    """Invariants 1 and 2 for one container."""
    rows = reader.history(record.id)
    assert rows, f"{record.name}: no history"
    assert [row.seq for row in rows] == list(range(1, len(rows) + 1)), (
        f"{record.name}: history seq has gaps: {[row.seq for row in rows]}")
    assert record.last_seq == len(rows), (
        f"{record.name}: last_seq {record.last_seq} but {len(rows)} history rows")
    first = rows[0]
    assert (first.event, first.from_state, first.to_state) == ("create", None, "created"), first
    started_before = False
    for previous, row in itertools.pairwise(rows):
        assert row.from_state == previous.to_state, (
            f"{record.name}: seq {row.seq} {row.event} starts from {row.from_state}, "
            f"previous row ended in {previous.to_state}")
        try:
            expected = advance(S(row.from_state), Event(row.event), started_before=started_before)
        except BerthError as exc:
            raise AssertionError(
                f"{record.name}: seq {row.seq}: machine refuses {row.event} in "
                f"{row.from_state}: {exc}") from None
        assert row.to_state == expected, (
            f"{record.name}: seq {row.seq} {row.event} from {row.from_state} went to "
            f"{row.to_state}, the machine says {expected}")
        if row.event == Event.START.value:
            started_before = True
    assert rows[-1].to_state == record.state, (
        f"{record.name}: last history row ends in {rows[-1].to_state}, stored {record.state}")
    assert record.has_been_started_before == started_before, record


_TEMPLATE: list[pathlib.Path] = []


def migrated_database(root: str) -> str:
    """A migrated, empty database file in ``root``: a copy of one migrated once per session
    (migrating costs more than the rest of an example)."""
    if not _TEMPLATE:
        template_root = pathlib.Path(tempfile.mkdtemp(prefix="berth-property-template-"))
        atexit.register(shutil.rmtree, template_root, ignore_errors=True)
        Database(str(template_root / DB_FILE)).close()
        _TEMPLATE.append(template_root / DB_FILE)
    path = pathlib.Path(root) / DB_FILE
    shutil.copyfile(_TEMPLATE[0], path)
    return str(path)


class LifecycleMachine(RuleBasedStateMachine):
    """Random lifecycle operations with injected faults against a real engine."""

    def __init__(self) -> None:
        super().__init__()
        self.root = tempfile.mkdtemp(prefix="berth-property-")
        self.runtime = FakeRuntime()
        self.host = FakeHost(self.root)
        self.engine, _ = open_engine(self.root, db_path=migrated_database(self.root),
                                     runtime=self.runtime, host=self.host,
                                     failpoints=Failpoints(), config=ConfigSnapshot())
        self.tokens = itertools.count(1)
        self.injected: dict[str, str] = {}  # fault token -> the call it was armed on
        self._states: dict[str, ContainerState] | None = None

    def teardown(self) -> None:
        self.engine.saga.db.close()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------
    def record(self, name: str) -> ContainerRecord | None:
        """The live (not removed) container called ``name``."""
        with self.engine.saga.db.read() as reader:
            return reader.live_container_by_name(name)

    def stored(self, container_id: str) -> ContainerRecord:
        with self.engine.saga.db.read() as reader:
            record = reader.container(container_id)
        assert record is not None
        return record

    def operation_count(self, container_id: str) -> int:
        with self.engine.saga.db.read() as reader:
            return len(reader.operations(container_id))

    def arm(self, fault: Fault) -> None:
        if fault is None:
            return
        call, message = fault
        token = f"injected fault #{next(self.tokens)}"
        self.injected[token] = call
        error = System(f"{token} on {call}: {message}")
        target = self.runtime.faults if call in RUNTIME_CALLS else self.host.faults
        target.add(call, error, times=1)

    def call(self, fault: Fault, action: Callable[[], object]
             ) -> tuple[object, BerthError | None]:
        """Run ``action`` with ``fault`` armed; only a BerthError may escape the engine."""
        self.arm(fault)
        try:
            return action(), None
        except BerthError as exc:
            return None, exc
        finally:
            self.runtime.faults.clear()
            self.host.faults.clear()
            self._states = None

    def assert_refused(self, before: ContainerRecord, error: BerthError | None) -> None:
        """A request the state forbids raises (its class is the lifecycle's) and writes nothing."""
        assert error is not None, f"{before.name}: accepted in state {before.state}"
        after = self.stored(before.id)
        assert (after.state, after.version, after.last_seq) == (
            before.state, before.version, before.last_seq), (
            f"{before.name}: refused with {type(error).__name__} ({error}) but the record "
            f"changed: {before.state}/v{before.version} -> {after.state}/v{after.version}")

    def task_status(self, container_id: str) -> TaskStatus | None:
        task = self.runtime.tasks().get(container_id)
        return None if task is None else task.status

    # -- rules ---------------------------------------------------------------------------
    def pick(self, aim: Aim, prefer: Iterable[ContainerState]) -> str:
        """A container name: mostly one in a state the operation wants, sometimes any.

        ``aim`` is drawn before the state is known (fixed-shape draws shrink well).
        """
        roll, choice = aim
        wanted = frozenset(prefer)
        existing = self.states()
        preferred = sorted(name for name, state in existing.items() if state in wanted)
        if roll < 5 and preferred:
            pool = preferred
        elif roll < 7 and existing:
            pool = sorted(existing)
        else:
            pool = list(NAMES)
        return pool[choice % len(pool)]

    @initialize()
    def create_all(self) -> None:
        for name in NAMES:
            self.create_named(name)

    def states(self) -> dict[str, ContainerState]:
        """Name -> state of the containers not removed (cached between engine calls: every
        rule's precondition asks)."""
        if self._states is None:
            with self.engine.saga.db.read() as reader:
                self._states = {record.name: record.state for record in reader.containers()}
        return self._states

    def some_in(self, *wanted: ContainerState) -> bool:
        return any(state in wanted for state in self.states().values())

    @precondition(lambda self: len(self.states()) < len(NAMES))
    @rule(aim=AIM)
    def create(self, aim: Aim) -> None:
        roll, choice = aim
        missing = [name for name in NAMES if name not in self.states()]
        pool = missing if roll < 6 else list(NAMES)
        name = pool[choice % len(pool)]
        self.create_named(name)

    def create_named(self, name: str) -> None:
        existing = self.record(name)
        config = ContainerConfig(image="busybox", command=("sh", "-c", "sleep 1000"), name=name,
                                 **CONFIGS[name])
        created, error = self.call(None, lambda: self.engine.create(config))
        if existing is not None:
            assert isinstance(error, NameInUseConflict), error
            return
        assert error is None, error
        assert isinstance(created, ContainerRecord)
        assert created.state is S.CREATED
        if name == STUBBORN:
            self.runtime.ignore_sigterm.add(created.id)

    @precondition(lambda self: self.some_in(S.CREATED))
    @rule(aim=AIM, fault=faults(START_CALLS))
    def start(self, aim: Aim, fault: Fault) -> None:
        self.start_named(self.pick(aim, (S.CREATED,)), fault)

    @precondition(lambda self: self.some_in(S.EXITED))
    @rule(aim=AIM, fault=faults(START_CALLS))
    def restart(self, aim: Aim, fault: Fault) -> None:
        self.start_named(self.pick(aim, (S.EXITED,)), fault)

    def start_named(self, name: str, fault: Fault) -> None:
        before = self.record(name)
        operations = self.operation_count(before.id) if before else 0
        _, error = self.call(fault, lambda: self.engine.start(name))
        if before is None:
            assert isinstance(error, ContainerNotFound), error
            return
        after = self.stored(before.id)
        if error is None:
            assert before.state in (S.CREATED, S.EXITED), before.state
            assert after.state is S.RUNNING, after.state
            assert after.error == "" and after.exit_code == 0 and after.pid != 0, after
            assert self.task_status(after.id) is TaskStatus.RUNNING
            return
        if self.operation_count(before.id) == operations:
            # Refused before the saga began (already running, paused, dead...).
            assert before.state not in (S.CREATED, S.EXITED), (before.state, error)
            self.assert_refused(before, error)
            return
        # Invariant 5: the saga ran and failed.
        assert fault is not None, f"{name}: start failed without an injected fault: {error}"
        if before.auto_remove:
            assert after.state in (S.REMOVED, S.DEAD), after.state
            return
        status = docker_status(after.state, started_before=after.has_been_started_before)
        expected = "exited" if before.has_been_started_before else "created"
        assert status == expected, (name, after.state, status)
        assert after.error, f"{name}: failed start left no error"
        allowed = START_EXIT_CODES | ({before.exit_code} if before.exit_code else set())
        assert after.exit_code in allowed, (after.exit_code, allowed)
        assert after.pid == 0 and after.resources_operation_id is None, after

    @precondition(lambda self: self.some_in(*LIVE))
    @rule(aim=AIM, timeout=st.sampled_from((0, 1)), fault=faults(EXIT_CALLS))
    def stop(self, aim: Aim, timeout: int, fault: Fault) -> None:
        name = self.pick(aim, LIVE)
        if name == STUBBORN:
            timeout = 0  # it ignores SIGTERM: any wait would be spent in full
        before = self.record(name)
        stopped, error = self.call(fault, lambda: self.engine.stop(name, timeout=timeout))
        if before is None:
            assert isinstance(error, ContainerNotFound), error
            return
        after = self.stored(before.id)
        if before.state not in LIVE:
            self.assert_refused(before, error)
            return
        if error is not None:
            assert isinstance(error, System) and fault is not None and fault[0] == "kill", error
            assert after.state is before.state
            return
        assert isinstance(stopped, ContainerRecord)
        assert_exited(before, after)
        assert after.has_been_manually_stopped, after
        signal = signals.SIGKILL if name == STUBBORN else signals.SIGTERM
        assert after.exit_code == 128 + signal, after.exit_code
        with self.engine.saga.db.read() as reader:
            events = [row.event for row in reader.history(after.id)]
        assert Event.STOP.value in events and (before.auto_remove or events[-1] == Event.STOP.value)

    @precondition(lambda self: self.some_in(*LIVE))
    @rule(aim=AIM,
          signal=st.sampled_from((signals.SIGKILL, signals.SIGTERM, signals.SIGUSR1)),
          fault=faults(EXIT_CALLS))
    def kill(self, aim: Aim, signal: int, fault: Fault) -> None:
        name = self.pick(aim, LIVE)
        before = self.record(name)
        _, error = self.call(fault, lambda: self.engine.kill(name, signal=signal))
        if before is None:
            assert isinstance(error, ContainerNotFound), error
            return
        after = self.stored(before.id)
        if before.state not in LIVE:
            self.assert_refused(before, error)
            return
        if error is not None:
            assert fault is not None and fault[0] == "kill", error
            assert after.state is before.state
            return
        if signal == signals.SIGKILL or (signal == signals.SIGTERM and name != STUBBORN):
            assert_exited(before, after)
            assert after.exit_code == 128 + signal, after
        elif before.state is S.RUNNING:
            assert after.state is S.RUNNING, after.state
        else:
            # A paused task may be thawed to receive the signal (moby does so unless the
            # container has its own stop signal) or left frozen; either way the invariant
            # holds the stored state to the task's.
            assert after.state in LIVE, after.state

    @precondition(lambda self: self.some_in(S.RUNNING))
    @rule(aim=AIM, fault=faults(FREEZE_CALLS))
    def pause(self, aim: Aim, fault: Fault) -> None:
        self.freeze(self.pick(aim, (S.RUNNING,)), fault, pause=True)

    @precondition(lambda self: self.some_in(S.PAUSED))
    @rule(aim=AIM, fault=faults(FREEZE_CALLS))
    def unpause(self, aim: Aim, fault: Fault) -> None:
        self.freeze(self.pick(aim, (S.PAUSED,)), fault, pause=False)

    def freeze(self, name: str, fault: Fault, *, pause: bool) -> None:
        before = self.record(name)
        action = self.engine.pause if pause else self.engine.unpause
        _, error = self.call(fault, lambda: action(name))
        if before is None:
            assert isinstance(error, ContainerNotFound), error
            return
        source, target = (S.RUNNING, S.PAUSED) if pause else (S.PAUSED, S.RUNNING)
        if before.state is not source:
            self.assert_refused(before, error)
            return
        if error is not None:
            assert fault is not None and fault[0] == ("pause" if pause else "resume"), error
            self.assert_refused(before, error)
            return
        assert self.stored(before.id).state is target
        wanted = TaskStatus.PAUSED if pause else TaskStatus.RUNNING
        assert self.task_status(before.id) is wanted

    @rule(aim=AIM, force=st.booleans(), fault=faults(REMOVE_CALLS),
          gate=st.integers(0, 2))
    def remove(self, aim: Aim, force: bool, fault: Fault, gate: int) -> None:
        if gate:
            return  # removal ends a container's story: make it rarer than the other rules
        name = self.pick(aim, (S.CREATED, S.EXITED, S.DEAD, *LIVE))
        before = self.record(name)
        _, error = self.call(fault, lambda: self.engine.remove(name, force=force))
        if before is None:
            assert isinstance(error, ContainerNotFound), error
            return
        after = self.stored(before.id)
        if before.state in LIVE and not force:
            self.assert_refused(before, error)
            return
        if error is None:
            assert after.state is S.REMOVED, after.state
            assert self.record(name) is None
            return
        assert fault is not None, f"{name}: remove failed without an injected fault: {error}"
        if after.state is S.DEAD:
            assert isinstance(error, System) and after.error, (error, after)
        else:
            # The force-kill failed before the removal began.
            assert force and fault[0] == "kill" and after.state is before.state, (error, after)

    @precondition(lambda self: self.some_in(*LIVE))
    @rule(aim=AIM, code=st.sampled_from((0, 1, 137)), fault=faults(EXIT_CALLS))
    def exit_naturally(self, aim: Aim, code: int, fault: Fault) -> None:
        """The task's process ends on its own; the monitor reaps it."""
        name = self.pick(aim, LIVE)
        before = self.record(name)
        if before is None or before.state not in LIVE:
            return
        assert self.task_status(before.id) in (TaskStatus.RUNNING, TaskStatus.PAUSED)
        self.runtime.exit(before.id, code)
        reaped, error = self.call(fault, self.engine.reap)
        assert error is None, error
        assert reaped == 1, reaped
        after = self.stored(before.id)
        assert_exited(before, after)
        assert after.exit_code == code, after

    # -- invariants ----------------------------------------------------------------------
    @invariant()
    def journal_agrees_with_machine_and_fakes(self) -> None:
        host_held: dict[str, set[str]] = {}
        for (container_id, resource), _ in self.host.acquired().items():
            host_held.setdefault(container_id, set()).add(resource.value)
        tasks = self.runtime.tasks()
        with self.engine.saga.db.read() as reader:
            records = reader.containers(include_removed=True)
            known = {record.id for record in records}
            strays = (set(host_held) | set(tasks)) - known
            assert not strays, f"resources held for unknown containers: {strays}"
            unfinished = reader.unfinished_operations()
            assert not unfinished, f"unfinished operations: {unfinished}"
            for record in records:
                journal = read_journal(reader, record.id)
                replay_history(reader, record)  # invariants 1 and 2
                self.check_resting(record, journal)  # invariant 3
                holding = journal_holding(record, journal)
                actual = set(host_held.get(record.id, ()))
                if record.id in tasks:
                    actual.add(TASK)
                self.check_holding(record, holding, actual, tasks)  # invariant 4
                self.check_failed_start(record, journal)  # invariant 5

    def check_resting(self, record: ContainerRecord, journal: Journal) -> None:
        assert record.state not in TRANSIENT, f"{record.name} rests in {record.state}"
        if record.state in LIVE:
            assert record.pid != 0 and record.resources_operation_id is not None, record
        else:
            assert record.pid == 0 and record.resources_operation_id is None, record
        for operation, rows in journal:
            assert operation.status not in (OperationStatus.IN_PROGRESS.value,
                                             OperationStatus.COMPENSATING.value), operation
            failed_at = min((row.step_index for row in rows
                             if row.status == StepStatus.FAILED.value), default=None)
            for row in rows:
                assert row.status not in (StepStatus.RUNNING.value,
                                          StepStatus.COMPENSATING.value), (operation, row)
                if row.status == StepStatus.PENDING.value:
                    # Only a failed removal leaves the steps after the failed one unattempted.
                    assert operation.kind == OperationKind.REMOVE.value, (operation, row)
                    assert failed_at is not None and row.step_index > failed_at, (operation, row)
                if row.status == StepStatus.COMPENSATION_FAILED.value:
                    self.check_injected(row)

    def check_injected(self, row: StepRecord) -> None:
        """A compensation_failed step was caused by an injected fault on a release call."""
        message = row.error_message or ""
        token = next((t for t in self.injected if f"{t} on " in message), None)
        assert token is not None, f"{row.name} failed without an injected fault: {message}"
        call = self.injected[token]
        assert call in RELEASE_CALLS, f"{row.name} failed from a fault on {call}"
        assert row.name in FAILED_STEP_OF_CALL[call], f"{row.name} failed from {call}"

    def check_holding(self, record: ContainerRecord, holding: Holding, actual: set[str],
                      tasks: Mapping[str, Any]) -> None:
        assert holding.definite <= actual <= holding.definite | holding.maybe, (
            f"{record.name} ({record.state}): the fakes hold {sorted(actual)}, the journal "
            f"says {sorted(holding.definite)} (maybe {sorted(holding.maybe)})")
        if record.state in LIVE:
            assert {"rootfs", "spec", TASK} <= actual, (record.name, sorted(actual))
            wanted = TaskStatus.RUNNING if record.state is S.RUNNING else TaskStatus.PAUSED
            status = tasks[record.id].status
            assert status is wanted, f"{record.name} reads {record.state}, its task is {status}"
            return
        if record.state is S.REMOVED:
            assert not actual, f"{record.name} was removed and still holds {sorted(actual)}"
        for resource in actual:
            row = holding.failed_release.get(resource)
            assert row is not None, (
                f"{record.name} ({record.state}) leaks {resource} and no compensation_failed "
                f"step accounts for it (held: {sorted(actual)})")

    def check_failed_start(self, record: ContainerRecord, journal: Journal) -> None:
        """Invariant 5, for a container resting after its latest start (the start rules also
        check the exit code against the one before)."""
        if record.auto_remove or record.state not in (S.CREATED, S.EXITED):
            return
        starts = [operation for operation, _ in journal
                  if operation.kind == OperationKind.START.value]
        if not starts or starts[-1].status == OperationStatus.SUCCEEDED.value:
            assert record.error == "", record
            if record.state is S.CREATED:
                assert record.exit_code == 0 and not starts, record
            return
        latest = starts[-1]
        assert latest.status == OperationStatus.FAILED.value, latest
        first = not any(op.status == OperationStatus.SUCCEEDED.value for op in starts)
        assert record.has_been_started_before is not first, record
        status = docker_status(record.state, started_before=record.has_been_started_before)
        assert status == ("created" if first else "exited"), (record.name, status)
        assert record.error and record.error == latest.error_message, (record.error, latest)
        assert record.exit_code == latest.exit_code, (record.exit_code, latest)
        if first:
            assert record.exit_code in START_EXIT_CODES, record.exit_code


TestLifecycleProperties = LifecycleMachine.TestCase
TestLifecycleProperties.settings = settings(
    max_examples=80,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # The explain phase replays a failure many times more to annotate it; the shrunk example
    # says enough, and a failing run stays well inside the suite's time budget without it.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)


def test_non_fatal_signal_to_paused_container_keeps_state_and_task_in_step() -> None:
    """Regression guard for the shrunk example the state machine found: ``kill -s USR1`` on a
    paused container thawed its task (``Engine._signal`` resumes it so the signal is delivered)
    while the journal still said ``paused``; the stored state must follow the task."""
    machine = LifecycleMachine()
    try:
        machine.create_all()
        machine.start(aim=(0, 0), fault=None)
        machine.pause(aim=(0, 0), fault=None)
        machine.kill(aim=(0, 0), signal=signals.SIGUSR1, fault=None)
        machine.journal_agrees_with_machine_and_fakes()
    finally:
        machine.teardown()
