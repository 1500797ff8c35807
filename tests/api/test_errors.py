"""Error classes become gRPC status codes once, at the edge (``engine.api.errors``).

Two halves: every class the engine raises naturally, provoked through real API calls on the
real server; and a table over every ``ErrorClass`` member through ``ErrorInterceptor`` on a
tiny servicer, so that no class reaches clients as UNKNOWN by accident.
"""

from __future__ import annotations

import pathlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from engine import errors
from engine.api.errors import CODES, status_of
from engine.api.v1 import containers_pb2 as pb
from engine.errors import ErrorClass
from engine.failpoint import Failpoints
from tests.api.conftest import (
    CALL_TIMEOUT,
    ApiDaemon,
    error_class_of,
    failure,
    start_daemon,
)
from tests.api.raiser import CLASSES, serve_raiser

Code = grpc.StatusCode


def assert_status(call: Callable[[], object], code: grpc.StatusCode, error_class: str) -> None:
    error = failure(call)
    assert error.code() == code, error.details()
    assert error_class_of(error) == error_class


# -- every class the engine raises, through real calls ---------------------------------------

def test_unknown_container_is_not_found(daemon: ApiDaemon) -> None:
    c = daemon.containers
    assert_status(lambda: c.Inspect(pb.InspectRequest(container="ghost"), timeout=CALL_TIMEOUT),
                  Code.NOT_FOUND, "NotFound")
    assert_status(lambda: c.Start(pb.StartRequest(container="ghost"), timeout=CALL_TIMEOUT),
                  Code.NOT_FOUND, "NotFound")
    assert_status(lambda: c.Remove(pb.RemoveRequest(container="ghost"), timeout=CALL_TIMEOUT),
                  Code.NOT_FOUND, "NotFound")
    assert_status(lambda: c.History(pb.HistoryRequest(container="ghost"), timeout=CALL_TIMEOUT),
                  Code.NOT_FOUND, "NotFound")


@pytest.mark.parametrize("config", [
    {"name": "bad name!"},
    {"image": ""},
    {"cmd": []},
    {"restart_policy": "sometimes"},
    {"restart_policy": "always", "restart_max_retries": 3},
    {"mounts": ["just-one-part"]},
    {"mounts": ["data:relative/path"]},
    {"mounts": ["data:/data:rx"]},
    {"env": ["=no-key"]},
    {"network_mode": "bridge-of-sighs"},
], ids=lambda config: ",".join(config))
def test_invalid_create_is_invalid_argument(daemon: ApiDaemon, config: dict[str, object]
                                            ) -> None:
    fields: dict[str, object] = {"name": "web", **config}
    assert_status(lambda: daemon.create(**fields), Code.INVALID_ARGUMENT,
                  "InvalidParameter")
    listed = daemon.containers.List(pb.ListRequest(all=True), timeout=CALL_TIMEOUT)
    assert list(listed.containers) == []


def test_empty_reference_and_bad_signal_are_invalid_argument(daemon: ApiDaemon) -> None:
    daemon.run("web")
    c = daemon.containers
    assert_status(lambda: c.Inspect(pb.InspectRequest(container=""), timeout=CALL_TIMEOUT),
                  Code.INVALID_ARGUMENT, "InvalidParameter")
    assert_status(lambda: c.Kill(pb.KillRequest(container="web", signal=99),
                                 timeout=CALL_TIMEOUT),
                  Code.INVALID_ARGUMENT, "InvalidParameter")


def test_pause_of_a_created_container_is_failed_precondition(daemon: ApiDaemon) -> None:
    daemon.create("idle")
    assert_status(lambda: daemon.containers.Pause(pb.ContainerRequest(container="idle"),
                                                  timeout=CALL_TIMEOUT),
                  Code.FAILED_PRECONDITION, "Conflict")
    state = daemon.containers.Inspect(pb.InspectRequest(container="idle"), timeout=CALL_TIMEOUT)
    assert state.state == "created"


def test_name_in_use_is_already_exists(daemon: ApiDaemon) -> None:
    first = daemon.create("web")
    error = failure(lambda: daemon.create("web"))
    assert error.code() == Code.ALREADY_EXISTS
    assert error_class_of(error) == "Conflict"
    assert first.id in (error.details() or "")  # Docker's message names the owner
    listed = daemon.containers.List(pb.ListRequest(all=True), timeout=CALL_TIMEOUT)
    assert [container.id for container in listed.containers] == [first.id]


def test_concurrent_creates_of_one_name_leave_one_container(daemon: ApiDaemon) -> None:
    def create(_: int) -> str:
        try:
            return daemon.create("web").id
        except grpc.RpcError as error:
            return error.code().name

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(create, range(8)))
    winners = [outcome for outcome in outcomes if outcome != "ALREADY_EXISTS"]
    assert len(winners) == 1 and len(winners[0]) == 64, outcomes
    listed = daemon.containers.List(pb.ListRequest(all=True), timeout=CALL_TIMEOUT)
    assert [container.id for container in listed.containers] == winners


def test_second_remove_while_one_is_in_progress_is_aborted(daemon_root: pathlib.Path) -> None:
    daemon = start_daemon(daemon_root, failpoints=Failpoints({"remove.remove_files": "sleep(500)"}))
    try:
        daemon.create("doomed")
        first: dict[str, object] = {}

        def remove() -> None:
            try:
                first["reply"] = daemon.containers.Remove(pb.RemoveRequest(container="doomed"),
                                                          timeout=CALL_TIMEOUT)
            except grpc.RpcError as error:  # pragma: no cover - reported by the assert below
                first["error"] = error

        remover = threading.Thread(target=remove)
        remover.start()
        wait_until(lambda: daemon.containers.Inspect(
            pb.InspectRequest(container="doomed"), timeout=CALL_TIMEOUT).removal_in_progress)
        assert_status(lambda: daemon.containers.Remove(pb.RemoveRequest(container="doomed"),
                                                       timeout=CALL_TIMEOUT),
                      Code.ABORTED, "Conflict")
        remover.join(CALL_TIMEOUT)
        assert "error" not in first, first
        reply = first["reply"]
        assert isinstance(reply, pb.ChangeResponse) and reply.changed
        assert_status(lambda: daemon.containers.Inspect(pb.InspectRequest(container="doomed"),
                                                        timeout=CALL_TIMEOUT),
                      Code.NOT_FOUND, "NotFound")
    finally:
        daemon.stop()


def test_checkpoint_dir_is_permission_denied(daemon: ApiDaemon) -> None:
    daemon.create("web")
    assert_status(lambda: daemon.containers.Start(
        pb.StartRequest(container="web", checkpoint_dir="/var/lib/checkpoints"),
        timeout=CALL_TIMEOUT), Code.PERMISSION_DENIED, "Forbidden")


def test_not_modified_is_ok_with_changed_false(daemon: ApiDaemon) -> None:
    running = daemon.run("web")
    again = daemon.containers.Start(pb.StartRequest(container="web"), timeout=CALL_TIMEOUT)
    assert again.changed is False
    assert again.container.id == running.id and again.container.state == "running"
    assert daemon.runtime.count("start", running.id) == 1

    stopped = daemon.containers.Stop(pb.StopRequest(container="web", timeout=0),
                                     timeout=CALL_TIMEOUT)
    assert stopped.changed is True and stopped.container.state == "exited"
    again = daemon.containers.Stop(pb.StopRequest(container="web", timeout=0),
                                   timeout=CALL_TIMEOUT)
    assert again.changed is False and again.container.state == "exited"


def test_failed_removal_is_internal(daemon_root: pathlib.Path) -> None:
    daemon = start_daemon(daemon_root, failpoints=Failpoints({"remove.remove_files": "error"}))
    try:
        daemon.create("web")
        assert_status(lambda: daemon.containers.Remove(pb.RemoveRequest(container="web"),
                                                       timeout=CALL_TIMEOUT),
                      Code.INTERNAL, "System")
        state = daemon.containers.Inspect(pb.InspectRequest(container="web"),
                                          timeout=CALL_TIMEOUT)
        assert state.state == "dead" and state.dead
    finally:
        daemon.stop()


def test_unclassified_start_failure_is_unknown(daemon: ApiDaemon) -> None:
    created = daemon.create("web")
    daemon.runtime.faults.add("start", errors.System("weird"))
    assert_status(lambda: daemon.containers.Start(pb.StartRequest(container="web"),
                                                  timeout=CALL_TIMEOUT),
                  Code.UNKNOWN, "Unknown")
    state = daemon.containers.Inspect(pb.InspectRequest(container="web"), timeout=CALL_TIMEOUT)
    assert state.state == "created" and state.exit_code == 128
    assert created.id not in daemon.runtime.tasks()  # compensation deleted the task


def test_image_store_missing_is_unavailable(daemon: ApiDaemon) -> None:
    assert_status(lambda: daemon.containers.Import(pb.ImportRequest(source="/nowhere.tar"),
                                                   timeout=CALL_TIMEOUT),
                  Code.UNAVAILABLE, "Unavailable")


def test_wait_timeout_is_deadline_exceeded(daemon: ApiDaemon) -> None:
    created = daemon.run("web")
    assert_status(lambda: daemon.containers.Wait(pb.WaitRequest(container="web", timeout=0.01),
                                                 timeout=CALL_TIMEOUT),
                  Code.DEADLINE_EXCEEDED, "Deadline")
    error = failure(lambda: daemon.containers.Wait(pb.WaitRequest(container="web", timeout=0.5),
                                                   timeout=CALL_TIMEOUT))
    assert error.details() == f"container {created.id} still running after 0.5s"


def test_a_wait_for_a_removed_container_is_not_found_unless_it_waits_for_removal(
        daemon: ApiDaemon) -> None:
    """Docker's wait conditions: ``not-running`` (the default) finds no removed container (it
    used to answer with the old exit code); ``removed``, which ``run --rm`` waits on, answers
    with its last exit even when the container went before the call."""
    created = daemon.create("gone")
    daemon.containers.Remove(pb.RemoveRequest(container="gone"), timeout=CALL_TIMEOUT)
    for condition in ("", "not-running"):
        request = pb.WaitRequest(container=created.id, condition=condition)
        assert_status(lambda request=request: daemon.containers.Wait(  # type: ignore[misc]
            request, timeout=CALL_TIMEOUT), Code.NOT_FOUND, "NotFound")
    reply = daemon.containers.Wait(pb.WaitRequest(container=created.id, condition="removed"),
                                   timeout=CALL_TIMEOUT)
    assert reply.exit_code == 0


def test_an_unknown_wait_condition_is_invalid(daemon: ApiDaemon) -> None:
    daemon.run("web")
    error = failure(lambda: daemon.containers.Wait(
        pb.WaitRequest(container="web", condition="bogus"), timeout=CALL_TIMEOUT))
    assert (error.code(), error.details()) == (Code.INVALID_ARGUMENT,
                                               'invalid condition: "bogus"')


def test_a_next_exit_wait_answers_with_the_exit_after_the_call(daemon: ApiDaemon) -> None:
    """Docker's ``next-exit``: an exited container is not answered with the exit it had;
    the wait lasts until it ran and exited again. Unknown containers are NOT_FOUND."""
    created = daemon.run("web")
    daemon.runtime.exit(created.id, 4)
    first = daemon.containers.Wait(pb.WaitRequest(container="web"), timeout=CALL_TIMEOUT)
    assert first.exit_code == 4
    pending = daemon.containers.Wait.future(
        pb.WaitRequest(container="web", condition="next-exit"), timeout=CALL_TIMEOUT)
    with pytest.raises(grpc.FutureTimeoutError):
        pending.result(timeout=0.5)
    daemon.containers.Start(pb.StartRequest(container="web"), timeout=CALL_TIMEOUT)
    daemon.runtime.exit(created.id, 6)
    assert pending.result(timeout=CALL_TIMEOUT).exit_code == 6
    assert_status(lambda: daemon.containers.Wait(
        pb.WaitRequest(container="nothing", condition="next-exit"), timeout=CALL_TIMEOUT),
        Code.NOT_FOUND, "NotFound")


@pytest.mark.parametrize("timeout", [float("nan"), -1.0])
def test_a_wait_timeout_that_is_no_duration_is_invalid(daemon: ApiDaemon, timeout: float
                                                       ) -> None:
    """A NaN one compared false with every deadline: the wait spun a core until the client
    left."""
    daemon.run("web")
    assert_status(lambda: daemon.containers.Wait(pb.WaitRequest(container="web",
                                                                timeout=timeout),
                                                 timeout=CALL_TIMEOUT),
                  Code.INVALID_ARGUMENT, "InvalidParameter")


def test_daemon_keeps_serving_after_errors(daemon: ApiDaemon) -> None:
    for _ in range(3):
        failure(lambda: daemon.containers.Inspect(pb.InspectRequest(container="ghost"),
                                                  timeout=CALL_TIMEOUT))
    assert daemon.create("web").name == "web"


# -- every class through the interceptor -----------------------------------------------------

# The contract of the issue (and the natural code for the classes it does not name).
EXPECTED: dict[ErrorClass, grpc.StatusCode] = {
    ErrorClass.NOT_FOUND: Code.NOT_FOUND,
    ErrorClass.INVALID_PARAMETER: Code.INVALID_ARGUMENT,
    ErrorClass.CONFLICT: Code.FAILED_PRECONDITION,
    ErrorClass.UNAUTHORIZED: Code.UNAUTHENTICATED,
    ErrorClass.UNAVAILABLE: Code.UNAVAILABLE,
    ErrorClass.FORBIDDEN: Code.PERMISSION_DENIED,
    ErrorClass.NOT_MODIFIED: Code.FAILED_PRECONDITION,
    ErrorClass.NOT_IMPLEMENTED: Code.UNIMPLEMENTED,
    ErrorClass.SYSTEM: Code.INTERNAL,
    ErrorClass.UNKNOWN: Code.UNKNOWN,
    ErrorClass.CANCELLED: Code.CANCELLED,
    ErrorClass.DEADLINE: Code.DEADLINE_EXCEEDED,
    ErrorClass.DATA_LOSS: Code.DATA_LOSS,
}

@pytest.fixture(scope="module")
def raiser() -> Iterator[grpc.Channel]:
    """``tests.api.raiser``'s server, through grpc's own client."""
    with serve_raiser() as address:
        channel = grpc.insecure_channel(address)
        yield channel
        channel.close()


def raise_unary(channel: grpc.Channel, key: str) -> grpc.RpcError:
    call = channel.unary_unary("/test.Raiser/Unary")
    return failure(lambda: call(key.encode(), timeout=CALL_TIMEOUT))


def raise_in_stream(channel: grpc.Channel, key: str) -> tuple[list[bytes], grpc.RpcError]:
    call = channel.unary_stream("/test.Raiser/Stream")
    received: list[bytes] = []

    def consume() -> None:
        for message in call(key.encode(), timeout=CALL_TIMEOUT):
            received.append(message)

    return received, failure(consume)


def test_every_error_class_has_a_code_and_a_raisable_class() -> None:
    assert set(CODES) == set(ErrorClass)
    assert set(EXPECTED) == set(ErrorClass)
    assert set(CLASSES) == set(ErrorClass)


def test_only_unknown_maps_to_unknown() -> None:
    unknown = [member for member in ErrorClass if CODES[member] == Code.UNKNOWN]
    assert unknown == [ErrorClass.UNKNOWN]
    for member in ErrorClass:
        assert status_of(CLASSES[member]("x")) == EXPECTED[member], member


@pytest.mark.parametrize("member", list(ErrorClass), ids=lambda member: member.value)
def test_interceptor_maps_each_class(raiser: grpc.Channel, member: ErrorClass) -> None:
    error = raise_unary(raiser, member.value)
    assert error.code() == EXPECTED[member]
    assert error_class_of(error) == member.value
    assert error.details() == f"raised {member.value}"


@pytest.mark.parametrize("member", list(ErrorClass), ids=lambda member: member.value)
def test_interceptor_maps_each_class_in_a_stream(raiser: grpc.Channel, member: ErrorClass
                                                 ) -> None:
    received, error = raise_in_stream(raiser, member.value)
    assert received == [b"first"]
    assert error.code() == EXPECTED[member]
    assert error_class_of(error) == member.value


@pytest.mark.parametrize(("key", "code", "error_class"), [
    ("NameInUse", Code.ALREADY_EXISTS, "Conflict"),
    ("RemovalInProgress", Code.ABORTED, "Conflict"),
    ("ContainerNotFound", Code.NOT_FOUND, "NotFound"),
    ("Failpoint", Code.INTERNAL, "System"),
    ("RuntimeError", Code.INTERNAL, "System"),
    ("KeyError", Code.INTERNAL, "System"),
])
def test_interceptor_maps_concrete_and_unclassified_errors(
        raiser: grpc.Channel, key: str, code: grpc.StatusCode, error_class: str) -> None:
    for error in (raise_unary(raiser, key), raise_in_stream(raiser, key)[1]):
        assert error.code() == code
        assert error_class_of(error) == error_class


def wait_until(predicate: Callable[[], bool], *, attempts: int = 500) -> None:
    """Poll ``predicate`` every 10 ms; fail the test if it never holds."""
    for _ in range(attempts):
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition never held")


@pytest.mark.parametrize("char", ["x", "\u20ac", "\x01", "%"])
def test_a_huge_reference_in_an_error_is_cut_to_what_clients_take(daemon: ApiDaemon, char: str
                                                                  ) -> None:
    """The status message travels as a header, percent-encoded beyond printable ASCII:
    echoing a 1 MiB reference made stock grpc clients see RESOURCE_EXHAUSTED instead of
    NOT_FOUND (and a 4 KiB cut of UTF-8 still did, for "\u20ac" * 100000)."""
    for _ in range(5):
        error = failure(lambda: daemon.containers.Inspect(
            pb.InspectRequest(container=char * 100_000), timeout=CALL_TIMEOUT))
        assert error.code() == Code.NOT_FOUND, error.details()[:80]
        details = error.details()
        assert details.startswith(f"No such container: {char * 3}") and details.endswith("...")
        encoded = sum(1 if 0x20 <= byte <= 0x7E and byte != 0x25 else 3
                      for byte in details.encode())
        assert encoded <= 4096


@pytest.mark.parametrize("data", [b"\xff\xff\xff\xff",  # no protobuf at all
                                  b"\x0a\x02\xff\xfe"])  # field 1, a string that is no UTF-8
def test_a_request_that_does_not_parse_is_invalid_argument(daemon: ApiDaemon, data: bytes
                                                           ) -> None:
    """grpc's own deserializer failure is INTERNAL (with a traceback in the daemon's log)."""
    create = daemon.channel.unary_unary("/berth.v1.Containers/Inspect",
                                        request_serializer=None, response_deserializer=None)
    error = failure(lambda: create(data, timeout=CALL_TIMEOUT))
    assert error.code() == Code.INVALID_ARGUMENT
    assert error_class_of(error) == "InvalidParameter"
    assert error.details().startswith("invalid request: ")
    assert daemon.containers.List(pb.ListRequest(), timeout=CALL_TIMEOUT) is not None


def test_a_wait_for_removed_answers_once_the_container_is_gone(daemon: ApiDaemon) -> None:
    """Docker's "removed" condition: the exit is answered when the container is removed, not
    when it stops; and a timeout says what it waited for."""
    created = daemon.run("kept")
    call = daemon.containers.Wait.future(pb.WaitRequest(container="kept", condition="removed"),
                                         timeout=60)
    daemon.containers.Stop(pb.StopRequest(container="kept", timeout=0), timeout=CALL_TIMEOUT)
    time.sleep(0.5)
    assert not call.done()  # stopped, not removed
    stopped = daemon.containers.Inspect(pb.InspectRequest(container="kept"),
                                        timeout=CALL_TIMEOUT)
    assert stopped.state == "exited"
    daemon.containers.Remove(pb.RemoveRequest(container="kept"), timeout=CALL_TIMEOUT)
    assert call.result(timeout=30).exit_code == stopped.exit_code != 0
    daemon.run("stays")
    daemon.containers.Stop(pb.StopRequest(container="stays", timeout=0), timeout=CALL_TIMEOUT)
    error = failure(lambda: daemon.containers.Wait(
        pb.WaitRequest(container="stays", condition="removed", timeout=0.3),
        timeout=CALL_TIMEOUT))
    assert error.code() == Code.DEADLINE_EXCEEDED
    assert error.details().endswith("not removed after 0.3s")
    assert created.id
