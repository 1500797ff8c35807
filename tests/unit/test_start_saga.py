"""The start saga against spec section 9, behaviours 1-11, on the fake runtime and host."""

from __future__ import annotations

import itertools
import threading

import pytest

from engine import steps
from engine.config import ConfigSnapshot, RuntimeDefinition
from engine.errors import (
    BerthError,
    Conflict,
    Forbidden,
    InvalidParameter,
    NotModified,
    System,
    Unavailable,
    Unknown,
)
from engine.event import ContainerEvent
from engine.failpoint import Failpoints
from engine.host import Resource
from engine.service import Engine
from engine.state import ContainerState, StepKind, StepStatus, docker_status
from engine.store import ContainerRecord
from engine.testing import FakeHost, FakeRuntime
from tests.conftest import make_config

PHASE_C_ACQUIRING = ["mount_rootfs", "setup_network", "create_spec",
                     "create_runtime_container", "start_task"]


def events_of(engine: Engine) -> list[ContainerEvent]:
    seen: list[ContainerEvent] = []
    engine.saga.events.subscribe(seen.append)
    return seen


def history_events(engine: Engine, container_id: str) -> list[str]:
    with engine.saga.db.read() as reader:
        return [row.event for row in reader.history(container_id)]


def last_start_steps(engine: Engine, container_id: str) -> list[tuple[str, str, str]]:
    with engine.saga.db.read() as reader:
        operation = [op for op in reader.operations(container_id) if op.kind == "start"][-1]
        return [(row.kind, row.name, row.status) for row in reader.steps(operation.id)]


def compensation_order(engine: Engine, container_id: str) -> list[str]:
    return [name for kind, name, _ in last_start_steps(engine, container_id)
            if kind == StepKind.COMPENSATION]


def assert_nothing_held(host: FakeHost, runtime: FakeRuntime, container_id: str) -> None:
    assert host.acquired(container_id) == {}
    assert container_id not in runtime.tasks()


def running(engine: Engine, name: str = "web") -> ContainerRecord:
    record = engine.create(make_config(name))
    assert engine.start(name) is True
    return engine.inspect(record.id)


# -- behaviours 1-4: validation before any resource ---------------------------------------


def test_start_of_paused_container_is_conflict_and_changes_nothing(engine: Engine) -> None:
    record = running(engine)
    engine.pause("web")
    before = engine.inspect("web")
    with pytest.raises(Conflict, match=r"^cannot start a paused container, try unpause instead$"):
        engine.start("web")
    after = engine.inspect("web")
    assert (after.state, after.exit_code, after.error, after.version) == (
        ContainerState.PAUSED, before.exit_code, before.error, before.version)
    assert record.id == after.id


def test_start_of_running_container_is_not_modified_without_event(engine: Engine) -> None:
    running(engine)
    seen = events_of(engine)
    with pytest.raises(NotModified, match=r"^Container is already started$"):
        engine.start("web")
    assert seen == []


@pytest.mark.parametrize("state", [ContainerState.REMOVING, ContainerState.DEAD])
def test_start_of_container_marked_for_removal_is_conflict(engine: Engine,
                                                          state: ContainerState) -> None:
    record = engine.create(make_config("web"))
    with engine.saga.db.write() as writer:  # put it where a crashed rm would leave it
        from engine.store import JournalContext
        writer.update_container(record, {"state": state, "error": "kept"}, [],
                                JournalContext(), 0)
    with pytest.raises(Conflict,
                       match=r"^container is marked for removal and cannot be started$"):
        engine.start("web")
    assert engine.inspect("web").error == "kept"


def test_checkpoint_without_experimental_mode_is_invalid_parameter(engine: Engine) -> None:
    engine.create(make_config("web"))
    with pytest.raises(InvalidParameter,
                       match=r"^checkpoint is only supported in experimental mode$"):
        engine.start("web", checkpoint="cp1")
    assert engine.inspect("web").state is ContainerState.CREATED


def test_checkpoint_dir_is_forbidden_and_runs_no_compensation(engine: Engine,
                                                              fake_host: FakeHost) -> None:
    engine.create(make_config("web"))
    with pytest.raises(Forbidden, match=r"^custom checkpointdir is not supported$"):
        engine.start("web", checkpoint_dir="/tmp/cp")
    record = engine.inspect("web")
    assert (record.exit_code, record.error, record.state) == (0, "", ContainerState.CREATED)
    assert fake_host.calls == []
    with engine.saga.db.read() as reader:
        assert reader.operations(record.id) == []


def test_unknown_runtime_is_refused_before_any_resource(engine: Engine,
                                                        fake_host: FakeHost) -> None:
    engine.create(make_config("web"))
    other = RuntimeDefinition("other", "/bin/other", (), "/bin/other")
    engine.config.swap(ConfigSnapshot(generation=1, runtimes={"other": other},
                                      default_runtime="other"))
    with pytest.raises(InvalidParameter, match=r"^unknown or invalid runtime name: runc$"):
        engine.start("web")
    assert fake_host.calls == []
    assert engine.inspect("web").state is ContainerState.CREATED


# -- behaviour 5: concurrent starts ----------------------------------------------------------


def test_two_concurrent_starts_invoke_the_runtime_once_and_both_succeed(
        tmp_path, fake_host: FakeHost) -> None:
    from engine.composition import open_engine

    class SlowRuntime(FakeRuntime):
        def start(self, container_id, *, binary):  # type: ignore[no-untyped-def]
            gate.wait(5)
            return super().start(container_id, binary=binary)

    gate = threading.Event()
    runtime = SlowRuntime()
    engine, _ = open_engine(tmp_path, runtime=runtime, host=fake_host, failpoints=Failpoints())
    engine.create(make_config("web"))
    results: list[object] = []

    def start() -> None:
        try:
            results.append(engine.start("web"))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    threading.Event().wait(0.2)
    gate.set()
    for thread in threads:
        thread.join(10)
    assert sorted(map(repr, results)) == ["False", "True"]
    assert runtime.count("create") == 1 and runtime.count("start") == 1
    assert engine.inspect("web").state is ContainerState.RUNNING
    engine.saga.db.close()


# -- behaviours 6-8: failures, exit codes, classifier ------------------------------------------


def test_first_start_failing_in_network_stays_created(engine: Engine, fake_host: FakeHost,
                                                      fake_runtime: FakeRuntime) -> None:
    record = engine.create(make_config("web"))
    fake_host.faults.add("acquire:network", RuntimeError("network down"))
    seen = events_of(engine)
    with pytest.raises(Unknown, match=r"^network down$"):
        engine.start("web")
    after = engine.inspect("web")
    assert docker_status(after.state, started_before=after.has_been_started_before) == "created"
    assert (after.exit_code, after.error, after.started_at) == (128, "network down", None)
    assert [event.action for event in seen] == []
    assert "start" not in history_events(engine, record.id)
    assert fake_host.released(record.id)[:2] == ["network", "rootfs"]
    assert_nothing_held(fake_host, fake_runtime, record.id)


def test_a_namespace_that_cannot_be_bound_fails_the_create_step(
        engine: Engine, fake_host: FakeHost, fake_runtime: FakeRuntime) -> None:
    record = engine.create(make_config("web"))
    # The text would read as a missing command (127) if it were the runtime's error.
    failure = System("bind /proc/7/ns/net on /x: No such file or directory")
    fake_host.faults.add("attach:network", failure)
    with pytest.raises(System, match=r"^bind /proc/7/ns/net on /x: No such file"):
        engine.start("web")
    assert engine.inspect("web").exit_code == 128
    steps_run = last_start_steps(engine, record.id)
    assert ("forward", "create_runtime_container", "failed") in steps_run
    assert ("compensation", "delete_runtime_container", "compensated") in steps_run
    assert "network" in fake_host.released(record.id)
    assert_nothing_held(fake_host, fake_runtime, record.id)
    assert engine.inspect("web").state is ContainerState.CREATED


def test_a_supervisor_out_of_reach_is_not_read_as_a_missing_command(
        engine: Engine, fake_runtime: FakeRuntime) -> None:
    record = engine.create(make_config("web"))
    fake_runtime.faults.add("create", Unavailable(
        "the supervisor is unavailable: [Errno 2] No such file or directory"))
    with pytest.raises(Unavailable):
        engine.start("web")
    after = engine.inspect("web")
    assert (after.state, after.exit_code) == (ContainerState.CREATED, 128)
    assert record.id not in fake_runtime.tasks()


def test_exited_container_keeps_its_exit_code_when_a_restart_fails(
        engine: Engine, fake_host: FakeHost) -> None:
    running(engine)
    engine.kill("web")
    assert engine.inspect("web").exit_code == 137
    fake_host.faults.add("acquire:network", RuntimeError("network down"))
    with pytest.raises(Unknown):
        engine.start("web")
    after = engine.inspect("web")
    assert (after.state, after.exit_code, after.error) == (
        ContainerState.EXITED, 137, "network down")


@pytest.mark.parametrize(
    ("message", "code", "error_class", "text"),
    [
        ('exec: "nope": executable file not found in $PATH', 127, InvalidParameter,
         'exec: "nope": executable file not found in $PATH'),
        ("open /bin/sh: permission denied", 126, InvalidParameter,
         "open /bin/sh: permission denied"),
        ("exec /data: is a directory", 126, InvalidParameter,
         "exec /data: is a directory: permission denied"),
        ("mount /x: not a directory", 127, InvalidParameter,
         "mount /x: not a directory: Are you trying to mount a directory onto a file "
         "(or vice-versa)? Check if the specified host path exists and is the expected type"),
        ("something odd", 128, Unknown, "something odd"),
    ],
)
def test_runtime_start_errors_are_classified(engine: Engine, fake_runtime: FakeRuntime,
                                             fake_host: FakeHost, message: str, code: int,
                                             error_class: type, text: str) -> None:
    record = engine.create(make_config("web"))
    fake_runtime.faults.add("start", System(message))
    with pytest.raises(error_class) as raised:
        engine.start("web")
    assert type(raised.value) is error_class and raised.value.message == text
    after = engine.inspect("web")
    assert (after.exit_code, after.error, after.state) == (code, text, ContainerState.CREATED)
    assert_nothing_held(fake_host, fake_runtime, record.id)


# -- behaviour 9: compensation order, every step, best effort --------------------------------

DOCKER_ORDER = [steps.PERSIST_ERROR, steps.RESET_STREAMS, steps.DELETE_RUNTIME_CONTAINER,
                steps.RELEASE_NETWORK, steps.UNMOUNT_IPC, steps.UNMOUNT_ROOTFS,
                steps.UNMOUNT_SECRETS, steps.UNMOUNT_RECURSIVE, steps.UNREGISTER_EXECS,
                steps.UNMOUNT_VOLUMES, steps.CANCEL_ATTACH, steps.AUTO_REMOVE]


@pytest.mark.parametrize("failing_step", list(steps.START_STEPS[: steps.START_STEPS.index(
    steps.MARK_RUNNING) + 2]))
def test_failure_at_every_phase_c_step_compensates_in_docker_order(
        tmp_path, failing_step: str) -> None:
    from engine.composition import open_engine

    runtime, host = FakeRuntime(), FakeHost(str(tmp_path))
    engine, _ = open_engine(tmp_path, runtime=runtime, host=host,
                            failpoints=Failpoints({f"start.{failing_step}": "error"}))
    record = engine.create(make_config("web", mounts=("vol:/data",), secrets=("token",)))
    # The runtime steps' errors go through moby's classifier (no marker: Unknown, 128).
    classified = failing_step in ("resolve_runtime", "create_runtime_container", "start_task")
    with pytest.raises(Unknown if classified else System,
                       match=f"^failpoint start.{failing_step}: injected error$"):
        engine.start("web")
    after = engine.inspect("web")
    assert after.state is ContainerState.CREATED and after.exit_code == 128
    assert compensation_order(engine, record.id) == DOCKER_ORDER
    forward = {name: status for kind, name, status in last_start_steps(engine, record.id)
               if kind == StepKind.FORWARD}
    assert forward[failing_step] == StepStatus.FAILED
    index = steps.START_STEPS.index(failing_step)
    assert all(forward[name] == StepStatus.DONE for name in steps.START_STEPS[:index])
    # The host steps' intents are committed together: one planned with an earlier one's
    # intent that never began is skipped; no other step after the failing one has a row.
    host_steps = (steps.MOUNT_ROOTFS, steps.SETUP_NETWORK, steps.CREATE_SPEC)
    later = {name: forward[name] for name in steps.START_STEPS[index + 1:] if name in forward}
    assert later == {name: StepStatus.SKIPPED for name in host_steps[index + 1:]}
    assert_nothing_held(host, runtime, record.id)
    engine.saga.db.close()


def test_the_host_steps_commit_their_intents_together(tmp_path) -> None:
    """One commit holds the three host steps' intents, each with its planned handle: the
    rootfs running, the network and the spec pending. A start commits four times."""
    from engine.composition import open_engine

    runtime, host = FakeRuntime(), FakeHost(str(tmp_path))
    seen: list[dict[str, tuple[str, object]]] = []
    engine, _ = open_engine(tmp_path, runtime=runtime, host=host)
    original = host.acquire

    def acquire(resource, container, handle, acquired):
        with engine.saga.db.read() as reader:
            operation = [op for op in reader.operations(container.id) if op.kind == "start"][-1]
            seen.append({row.name: (row.status, row.handle)
                         for row in reader.steps(operation.id)})
        return original(resource, container, handle, acquired)

    host.acquire = acquire  # type: ignore[method-assign]
    record = engine.create(make_config("web"))
    commits = engine.saga.db.commits
    engine.start("web")
    assert engine.saga.db.commits - commits == 4
    first = seen[0]  # as the rootfs is mounted
    assert first[steps.MOUNT_ROOTFS][0] == StepStatus.RUNNING
    assert first[steps.SETUP_NETWORK] == (
        StepStatus.PENDING, {"network": host.plan(Resource.NETWORK, engine.inspect("web"))})
    assert first[steps.CREATE_SPEC][0] == StepStatus.PENDING
    assert set(first[steps.CREATE_SPEC][1]) == {"ipc", "spec"}
    assert steps.CREATE_RUNTIME_CONTAINER not in first
    assert all(view == first for view in seen)  # nothing committed until the runtime step
    done = {name: status for kind, name, status in last_start_steps(engine, record.id)
            if kind == StepKind.FORWARD}
    assert all(status == StepStatus.DONE for status in done.values())
    engine.saga.db.close()


@pytest.mark.parametrize("failing_step", [steps.MOUNT_ROOTFS, steps.CREATE_SPEC,
                                          steps.START_TASK])
def test_a_failed_save_of_the_error_still_rolls_back(tmp_path, failing_step: str) -> None:
    """moby logs a failed checkpoint of the start error and cleans up all the same. The error
    rides with the next commit: it used to be dropped, and the rollback's first transition then
    refused ("cannot start.compensate ... in state starting"), leaving everything held until
    the next daemon start (helper-49)."""
    from engine.composition import open_engine

    runtime, host = FakeRuntime(), FakeHost(str(tmp_path))
    failpoints = Failpoints({f"start.{failing_step}": "error",
                             f"cleanup.{steps.PERSIST_ERROR}": "error"})
    engine, _ = open_engine(tmp_path, runtime=runtime, host=host, failpoints=failpoints)
    record = engine.create(make_config("web"))
    with pytest.raises(BerthError, match=f"^failpoint start.{failing_step}: injected error$"):
        engine.start("web")
    after = engine.inspect("web")
    assert after.state is ContainerState.CREATED and after.exit_code == 128
    assert f"start.{failing_step}" in after.error
    assert compensation_order(engine, record.id) == DOCKER_ORDER
    rows = last_start_steps(engine, record.id)
    assert not [row for row in rows if row[2] in (StepStatus.PENDING, StepStatus.RUNNING)]
    with engine.saga.db.read() as reader:
        assert reader.unfinished_operations() == []
    assert_nothing_held(host, runtime, record.id)
    engine.saga.db.close()


def test_only_acquired_resources_are_released(engine: Engine, fake_host: FakeHost) -> None:
    record = engine.create(make_config("web"))
    fake_host.faults.add("acquire:rootfs", RuntimeError("no space"))
    with pytest.raises(Unknown):
        engine.start("web")
    # The rootfs was being mounted (its intent was journaled): it is released, idempotently;
    # nothing later was ever attempted, so nothing else is touched.
    assert fake_host.released(record.id) == ["rootfs"]
    statuses = {name: status for kind, name, status in last_start_steps(engine, record.id)
                if kind == StepKind.COMPENSATION}
    assert statuses[steps.RELEASE_NETWORK] == StepStatus.SKIPPED
    assert statuses[steps.DELETE_RUNTIME_CONTAINER] == StepStatus.SKIPPED
    assert statuses[steps.UNMOUNT_ROOTFS] == StepStatus.COMPENSATED


@pytest.mark.parametrize("failing", ["cleanup.delete_runtime_container",
                                     "cleanup.release_network", "cleanup.unmount_ipc",
                                     "cleanup.unmount_rootfs", "cleanup.unmount_recursive",
                                     "cleanup.unmount_volumes", "cleanup.reset_streams",
                                     "cleanup.unmount_secrets", "cleanup.cancel_attach",
                                     "cleanup.unregister_execs"])
def test_a_failing_compensation_never_blocks_the_later_ones(tmp_path, failing: str) -> None:
    from engine.composition import open_engine

    runtime, host = FakeRuntime(), FakeHost(str(tmp_path))
    engine, _ = open_engine(tmp_path, runtime=runtime, host=host, failpoints=Failpoints(
        {"start.start_task": "error", failing: "error"}))
    record = engine.create(make_config("web", mounts=("vol:/data",), secrets=("token",)))
    with pytest.raises(Unknown, match=r"start.start_task"):
        engine.start("web")
    failed_step = failing.split(".", 1)[1]
    statuses = {name: status for kind, name, status in last_start_steps(engine, record.id)
                if kind == StepKind.COMPENSATION}
    assert statuses[failed_step] == StepStatus.COMPENSATION_FAILED
    later = DOCKER_ORDER[DOCKER_ORDER.index(failed_step) + 1:-1]
    assert all(statuses[name] in (StepStatus.COMPENSATED, StepStatus.SKIPPED)
               for name in later)
    # Everything but what the failing step itself should have released is released.
    leftovers = {resource for (_, resource) in host.acquired(record.id)}
    expected = {"cleanup.release_network": {"network"},
                "cleanup.delete_runtime_container": {"spec"}}.get(failing, set())
    assert leftovers == expected
    if failing != "cleanup.delete_runtime_container":
        assert record.id not in runtime.tasks()
    assert engine.inspect("web").state is ContainerState.CREATED
    engine.saga.db.close()


def test_network_is_released_even_when_earlier_cleanup_fails_and_next_start_works(
        engine: Engine, fake_host: FakeHost, fake_runtime: FakeRuntime) -> None:
    """Regression story 8.2: a partial cleanup must not leak the network endpoint."""
    record = engine.create(make_config("web"))
    fake_runtime.faults.add("start", System("boom"))
    fake_runtime.faults.add("delete", System("delete failed"))
    with pytest.raises(Unknown):
        engine.start("web")
    assert "network" in fake_host.released(record.id)
    assert engine.start("web") is True


# -- behaviour 10: auto-remove -----------------------------------------------------------------


def test_auto_remove_container_is_removed_after_a_failed_start(engine: Engine,
                                                               fake_runtime: FakeRuntime,
                                                               fake_host: FakeHost) -> None:
    record = engine.create(make_config("web", auto_remove=True))
    fake_runtime.faults.add("start", System('exec: "x": executable file not found in $PATH'))
    with pytest.raises(InvalidParameter, match=r"executable file not found"):
        engine.start("web")
    with engine.saga.db.read() as reader:
        stored = reader.container(record.id)
    assert stored is not None and stored.state is ContainerState.REMOVED
    assert record.id in fake_host.removed
    assert [c for c in fake_host.calls if c == ("remove", "volumes", record.id)]
    assert compensation_order(engine, record.id)[-1] == steps.AUTO_REMOVE


def test_auto_remove_failure_is_recorded_and_the_start_error_is_returned(
        engine: Engine, fake_runtime: FakeRuntime, fake_host: FakeHost) -> None:
    record = engine.create(make_config("web", auto_remove=True))
    fake_runtime.faults.add("start", System("boom"))
    fake_host.faults.add("remove", System("disk busy"))
    with pytest.raises(Unknown, match=r"^boom$"):
        engine.start("web")
    statuses = {name: status for kind, name, status in last_start_steps(engine, record.id)
                if kind == StepKind.COMPENSATION}
    assert statuses[steps.AUTO_REMOVE] == StepStatus.COMPENSATION_FAILED
    assert engine.inspect(record.id).state is ContainerState.DEAD


# -- behaviour 11: a successful start --------------------------------------------------------------


def test_successful_start_sets_docker_fields_and_emits_start(engine: Engine) -> None:
    record = engine.create(make_config("web", healthcheck=("CMD", "true")))
    seen = events_of(engine)
    assert engine.start("web") is True
    after = engine.inspect("web")
    assert after.state is ContainerState.RUNNING
    assert (after.error, after.exit_code, after.oom_killed) == ("", 0, False)
    assert after.restart_count == 0
    assert after.pid > 0 and after.started_at is not None
    assert after.has_been_started_before and not after.has_been_manually_stopped
    assert after.health_status == "starting"
    assert after.runtime == "runc" and after.runtime_binary == "runc"
    assert [event.action for event in seen] == ["start"]
    events = history_events(engine, record.id)
    assert events[:2] == ["create", "start.begin"]
    assert events[-1] == "start"
    steps_in_history = [row.step for row in engine.history("web") if row.event == "start.step"]
    assert steps_in_history == list(steps.START_STEPS)


def test_a_failure_to_persist_does_not_fail_the_start(tmp_path) -> None:
    from engine.composition import open_engine

    engine, _ = open_engine(tmp_path, runtime=FakeRuntime(), host=FakeHost(str(tmp_path)),
                            failpoints=Failpoints({"start.persist": "error"}))
    engine.create(make_config("web"))
    assert engine.start("web") is True
    assert engine.inspect("web").state is ContainerState.RUNNING
    engine.saga.db.close()


def test_history_is_gap_free_and_state_matches_last_row(engine: Engine,
                                                        fake_host: FakeHost) -> None:
    record = running(engine)
    engine.stop("web", timeout=0)
    fake_host.faults.add("acquire:ipc", RuntimeError("shm"))
    with pytest.raises(Unknown):
        engine.start("web")
    engine.start("web")
    engine.remove("web", force=True)
    with engine.saga.db.read() as reader:
        rows = reader.history(record.id)
        stored = reader.container(record.id)
    assert [row.seq for row in rows] == list(range(1, len(rows) + 1))
    assert stored is not None and stored.last_seq == len(rows)
    assert rows[-1].to_state == stored.state == ContainerState.REMOVED
    for previous, row in itertools.pairwise(rows):
        assert row.from_state == previous.to_state


def test_a_start_keeps_the_last_runs_finished_at(engine: Engine,
                                                 fake_runtime: FakeRuntime) -> None:
    """moby's SetRunning (T2) leaves FinishedAt alone: a restarted container still shows
    when its last run ended."""
    record = engine.create(make_config("again"))
    engine.start("again")
    fake_runtime.exit(record.id, 0)
    finished = engine.wait("again", timeout=5).finished_at
    assert finished is not None
    engine.start("again")
    assert engine.inspect("again").finished_at == finished
