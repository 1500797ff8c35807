"""Request ids: a retried mutating call gets the first call's outcome, and the work runs once."""

from __future__ import annotations

import pathlib
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from engine.api.idempotency import MAX_REQUEST_ID
from engine.api.server import build_server, listen
from engine.api.v1 import containers_pb2 as pb
from engine.api.v1 import system_pb2 as spb
from engine.api.v1 import system_pb2_grpc as system_rpc
from engine.client import connect
from engine.config import ConfigSnapshot
from tests.api.conftest import (
    CALL_TIMEOUT,
    ApiDaemon,
    error_class_of,
    failure,
    start_daemon,
)

CONFIG = pb.ContainerConfig(image="busybox", cmd=["sleep", "1000"], name="web")


def create(daemon: ApiDaemon, request_id: str, config: pb.ContainerConfig = CONFIG
           ) -> pb.Container:
    reply = daemon.containers.Create(pb.CreateRequest(config=config, request_id=request_id),
                                     timeout=CALL_TIMEOUT)
    return reply.container


def all_containers(daemon: ApiDaemon) -> list[pb.Container]:
    return list(daemon.containers.List(pb.ListRequest(all=True), timeout=CALL_TIMEOUT)
                .containers)


def test_retried_create_returns_the_first_container(daemon: ApiDaemon) -> None:
    first = create(daemon, "req-create-1")
    again = create(daemon, "req-create-1")
    assert again == first
    assert [container.id for container in all_containers(daemon)] == [first.id]
    creates = [row for row in daemon.history() if row.event == "create"]
    assert [(row.container_id, row.request_id) for row in creates] == [(first.id,
                                                                         "req-create-1")]


def test_concurrent_retries_do_the_work_once(daemon: ApiDaemon) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda _: create(daemon, "req-race"), range(8)))
    assert len({reply.id for reply in replies}) == 1
    assert len(all_containers(daemon)) == 1
    assert sum(row.event == "create" for row in daemon.history()) == 1


def test_a_new_request_id_does_new_work(daemon: ApiDaemon) -> None:
    create(daemon, "req-a")
    error = failure(lambda: create(daemon, "req-b"))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS  # really ran: the name is taken


def test_retried_start_does_not_start_twice(daemon: ApiDaemon) -> None:
    container = create(daemon, "")
    first = daemon.containers.Start(pb.StartRequest(container="web", request_id="req-start"),
                                    timeout=CALL_TIMEOUT)
    again = daemon.containers.Start(pb.StartRequest(container="web", request_id="req-start"),
                                    timeout=CALL_TIMEOUT)
    assert first.changed and again.changed  # the first reply, not "not modified"
    assert again == first
    assert daemon.runtime.count("start", container.id) == 1
    fresh = daemon.containers.Start(pb.StartRequest(container="web", request_id="req-other"),
                                    timeout=CALL_TIMEOUT)
    assert fresh.changed is False


def test_request_ids_land_in_the_history(daemon: ApiDaemon) -> None:
    container = create(daemon, "req-h-create")
    daemon.containers.Start(pb.StartRequest(container="web", request_id="req-h-start"),
                            timeout=CALL_TIMEOUT)
    daemon.containers.Stop(pb.StopRequest(container="web", timeout=0, request_id="req-h-stop"),
                           timeout=CALL_TIMEOUT)
    events = daemon.containers.History(pb.HistoryRequest(container="web"),
                                       timeout=CALL_TIMEOUT).events
    by_request: dict[str, set[str]] = {}
    for event in events:
        assert event.container_id == container.id
        assert event.request_id, f"{event.event} row without its request id"
        by_request.setdefault(event.request_id, set()).add(event.event)
    assert set(by_request) == {"req-h-create", "req-h-start", "req-h-stop"}
    assert by_request["req-h-create"] == {"create"}
    assert "start" in by_request["req-h-start"]
    assert "stop" in by_request["req-h-stop"] or "die" in by_request["req-h-stop"]
    stored = {row.event_seq: row.request_id for row in daemon.history()}
    assert {event.seq: event.request_id for event in events} == stored


def test_retried_remove_answers_the_first_result(daemon: ApiDaemon) -> None:
    container = create(daemon, "")
    first = daemon.containers.Remove(pb.RemoveRequest(container="web", request_id="req-rm"),
                                     timeout=CALL_TIMEOUT)
    again = daemon.containers.Remove(pb.RemoveRequest(container="web", request_id="req-rm"),
                                     timeout=CALL_TIMEOUT)
    assert first.changed and again == first
    assert sum(row.event == "destroy" and row.container_id == container.id
               for row in daemon.history()) == 1


def test_a_failed_call_replays_its_status_without_running_again(daemon: ApiDaemon) -> None:
    def start() -> pb.ChangeResponse:
        return daemon.containers.Start(pb.StartRequest(container="web", request_id="req-fail"),
                                       timeout=CALL_TIMEOUT)

    first = failure(start)
    assert first.code() == grpc.StatusCode.NOT_FOUND
    assert error_class_of(first) == "NotFound"
    container = create(daemon, "")  # now the call would succeed if it ran again
    again = failure(start)
    assert again.code() == grpc.StatusCode.NOT_FOUND
    assert error_class_of(again) == "NotFound"
    assert again.details() == first.details()
    assert daemon.runtime.count("start", container.id) == 0
    state = daemon.containers.Inspect(pb.InspectRequest(container="web"), timeout=CALL_TIMEOUT)
    assert state.state == "created"


def test_an_id_reused_for_another_method_is_invalid_argument(daemon: ApiDaemon) -> None:
    create(daemon, "req-shared")
    error = failure(lambda: daemon.containers.Start(
        pb.StartRequest(container="web", request_id="req-shared"), timeout=CALL_TIMEOUT))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_class_of(error) == "InvalidParameter"
    state = daemon.containers.Inspect(pb.InspectRequest(container="web"), timeout=CALL_TIMEOUT)
    assert state.state == "created"


def test_an_id_reused_with_other_parameters_is_invalid_argument(daemon: ApiDaemon) -> None:
    """The id names one request: the same id with another config is refused, not answered
    with the first container (which would tell the caller its new config was created)."""
    first = create(daemon, "req-params")
    other = pb.ContainerConfig(image="busybox", cmd=["sleep", "5"], name="other")
    error = failure(lambda: create(daemon, "req-params", other))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_class_of(error) == "InvalidParameter"
    assert "req-params was used with other parameters" in (error.details() or "")
    assert [container.id for container in all_containers(daemon)] == [first.id]
    assert create(daemon, "req-params") == first  # the same request still replays


def test_a_stop_retried_with_another_timeout_is_refused(daemon: ApiDaemon) -> None:
    create(daemon, "req-create")
    daemon.containers.Start(pb.StartRequest(container="web", request_id="req-start"),
                            timeout=CALL_TIMEOUT)
    daemon.containers.Stop(pb.StopRequest(container="web", timeout=0, request_id="req-stop"),
                           timeout=CALL_TIMEOUT)
    error = failure(lambda: daemon.containers.Stop(
        pb.StopRequest(container="web", timeout=5, request_id="req-stop"),
        timeout=CALL_TIMEOUT))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    again = daemon.containers.Stop(
        pb.StopRequest(container="web", timeout=0, request_id="req-stop"), timeout=CALL_TIMEOUT)
    assert again.container.state == "exited"


def test_an_outcome_recorded_before_digests_is_still_replayed(daemon: ApiDaemon) -> None:
    """Rows of a database migrated from before revision 0005 have no digest: a retry is
    answered as it was then, whatever its parameters."""
    first = create(daemon, "req-old")
    with daemon.engine.saga.db.write():
        daemon.engine.saga.db._write_connection.execute(
            "UPDATE api_requests SET request_digest = NULL WHERE request_id = 'req-old'")
    other = pb.ContainerConfig(image="busybox", cmd=["true"], name="other")
    assert create(daemon, "req-old", other) == first


@pytest.mark.parametrize("length", [MAX_REQUEST_ID + 1, 4096])
def test_an_overlong_id_is_invalid_argument(daemon: ApiDaemon, length: int) -> None:
    error = failure(lambda: create(daemon, "r" * length))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert all_containers(daemon) == []


def test_request_ids_survive_a_daemon_restart(daemon_root: pathlib.Path) -> None:
    daemon = start_daemon(daemon_root)
    try:
        first = create(daemon, "req-durable")
    finally:
        daemon.stop()
    daemon = start_daemon(daemon_root)
    try:
        again = create(daemon, "req-durable")
        assert again.id == first.id
        assert [container.id for container in all_containers(daemon)] == [first.id]
    finally:
        daemon.stop()


def test_retried_reload_reloads_once(daemon: ApiDaemon) -> None:
    """Reload is mutating (it publishes a new configuration generation) and its request
    carries a request id, so a retry must answer the first generation, not reload again."""
    reloads: list[int] = []

    def reload() -> ConfigSnapshot:
        reloads.append(len(reloads) + 1)
        snapshot = ConfigSnapshot(generation=daemon.engine.config.current().generation + 1)
        daemon.engine.config.swap(snapshot)
        return snapshot

    server = build_server(daemon.engine, data_root=str(daemon.root), backend="fake",
                          reload=reload)
    address = listen(server, f"unix://{daemon.root}/reload.sock")
    server.start()
    channel = connect(address)
    try:
        system = system_rpc.SystemStub(channel)
        first = system.Reload(spb.ReloadRequest(request_id="req-reload"), timeout=CALL_TIMEOUT)
        again = system.Reload(spb.ReloadRequest(request_id="req-reload"), timeout=CALL_TIMEOUT)
        assert again.generation == first.generation
        assert reloads == [1]
        fresh = system.Reload(spb.ReloadRequest(request_id="req-reload-2"),
                              timeout=CALL_TIMEOUT)
        assert fresh.generation == first.generation + 1
    finally:
        channel.close()
        server.stop(None).wait()
