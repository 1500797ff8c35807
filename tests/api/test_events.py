"""Events(since_seq, filters): replay the stored history, then follow it live, with no gap and no
duplicate, across a daemon restart too. The truth is the history table itself."""

from __future__ import annotations

import pathlib
from typing import Any

import grpc

from engine.api.v1 import containers_pb2 as pb
from engine.api.v1 import events_pb2
from engine.api.v1 import system_pb2 as spb
from engine.api.v1 import system_pb2_grpc as system_rpc
from engine.client import connect
from engine.store import HistoryRecord
from tests.api.conftest import CALL_TIMEOUT, ApiDaemon, start_daemon, take

Row = tuple[int, str, int, str, str, str]
EventStream = Any  # a grpc call that is also an iterator of HistoryEvent


def rows_of(records: list[HistoryRecord]) -> list[Row]:
    return [(row.event_seq, row.container_id, row.seq, row.event, row.to_state,
             row.request_id or "") for row in records]


def events_of(messages: list[events_pb2.HistoryEvent]) -> list[Row]:
    return [(event.seq, event.container_id, event.container_seq, event.event, event.to_state,
             event.request_id) for event in messages]


def after(records: list[HistoryRecord], seq: int) -> list[HistoryRecord]:
    return [row for row in records if row.event_seq > seq]


def events(daemon: ApiDaemon, since_seq: int = 0, **filters: object) -> EventStream:
    request = spb.EventsRequest(since_seq=since_seq, **filters)  # type: ignore[arg-type]
    return daemon.system.Events(request, timeout=CALL_TIMEOUT)


def assert_next_is_live(daemon: ApiDaemon, stream: EventStream, name: str) -> None:
    """Create ``name`` and check that the very next event is its ``create`` row: nothing was
    left over (a duplicate or a stray) between what was read and now."""
    container = daemon.create(name)
    [event] = take(stream, 1)
    marker = [row for row in daemon.history() if row.container_id == container.id]
    assert events_of([event]) == rows_of(marker)


def test_replay_from_zero_is_the_whole_history(daemon: ApiDaemon) -> None:
    daemon.run("web")
    daemon.create("idle")
    daemon.containers.Stop(pb.StopRequest(container="web", timeout=0), timeout=CALL_TIMEOUT)
    history = daemon.history()
    assert len(history) > 3
    stream = events(daemon)
    try:
        assert events_of(take(stream, len(history))) == rows_of(history)
        assert_next_is_live(daemon, stream, "marker")
    finally:
        stream.cancel()


def test_replay_from_a_seq_is_the_rest_of_the_history(daemon: ApiDaemon) -> None:
    daemon.run("web")
    daemon.run("db")
    history = daemon.history()
    middle = history[len(history) // 2].event_seq
    stream = events(daemon, since_seq=middle)
    try:
        rest = after(history, middle)
        assert rest and len(rest) < len(history)
        assert events_of(take(stream, len(rest))) == rows_of(rest)
        assert_next_is_live(daemon, stream, "marker")
    finally:
        stream.cancel()


def test_replay_then_live_has_no_gap_and_no_duplicate(daemon: ApiDaemon) -> None:
    daemon.create("web")
    before = daemon.history()
    stream = events(daemon)
    try:
        seen = take(stream, len(before))
        # Live transitions, while the stream follows.
        daemon.containers.Start(pb.StartRequest(container="web", request_id="req-live"),
                                timeout=CALL_TIMEOUT)
        daemon.containers.Pause(pb.ContainerRequest(container="web"), timeout=CALL_TIMEOUT)
        daemon.containers.Unpause(pb.ContainerRequest(container="web"), timeout=CALL_TIMEOUT)
        daemon.containers.Kill(pb.KillRequest(container="web"), timeout=CALL_TIMEOUT)
        daemon.containers.Remove(pb.RemoveRequest(container="web"), timeout=CALL_TIMEOUT)
        history = daemon.history()
        seen += take(stream, len(history) - len(before))
        assert events_of(seen) == rows_of(history)
        assert {"start", "pause", "unpause", "die", "destroy"} <= {e.event for e in seen}
        assert any(event.request_id == "req-live" for event in seen)
        assert_next_is_live(daemon, stream, "marker")
    finally:
        stream.cancel()


def test_filters(daemon: ApiDaemon) -> None:
    web = daemon.run("web")
    idle = daemon.create("idle")
    history = daemon.history()

    by_name = events(daemon, containers=["web"])
    by_id = events(daemon, containers=[idle.id])
    by_event = events(daemon, events=["create"])
    docker_only = events(daemon, docker_only=True)
    try:
        web_rows = [row for row in history if row.container_id == web.id]
        assert events_of(take(by_name, len(web_rows))) == rows_of(web_rows)
        idle_rows = [row for row in history if row.container_id == idle.id]
        assert events_of(take(by_id, len(idle_rows))) == rows_of(idle_rows)
        creates = [row for row in history if row.event == "create"]
        assert events_of(take(by_event, len(creates))) == rows_of(creates)
        docker = take(docker_only, 3)
        assert [(event.container_id, event.event) for event in docker] == [
            (web.id, "create"), (web.id, "start"), (idle.id, "create")]
        assert all(event.container_name in ("web", "idle") for event in docker)

        # Live, the filters still apply: a new container shows only in the unfiltered ones.
        other = daemon.create("other")
        daemon.containers.Start(pb.StartRequest(container="idle"), timeout=CALL_TIMEOUT)
        [create] = take(by_event, 1)
        assert (create.container_id, create.event) == (other.id, "create")
        next_docker = take(docker_only, 2)
        assert [(e.container_id, e.event) for e in next_docker] == [
            (other.id, "create"), (idle.id, "start")]
        idle_live = [row for row in daemon.history()
                     if row.container_id == idle.id and row.event_seq > idle_rows[-1].event_seq]
        assert events_of(take(by_id, len(idle_live))) == rows_of(idle_live)
    finally:
        for stream in (by_name, by_id, by_event, docker_only):
            stream.cancel()


def test_events_carry_the_image_and_the_rows_attributes(daemon: ApiDaemon) -> None:
    """moby's actor attributes: ``image`` on every container event, ``exitCode`` on die,
    ``signal`` on kill; ``-f image=`` matches the image as given or without its tag."""
    web = daemon.run("web")
    daemon.create("tagged", image="busybox:latest")
    daemon.containers.Kill(pb.KillRequest(container="web", signal=9),
                           timeout=CALL_TIMEOUT)
    history = daemon.history()
    docker = [row for row in history if row.event in ("create", "start", "kill", "die")]
    stream = events(daemon, docker_only=True)
    untagged = events(daemon, docker_only=True, images=["busybox:latest"])
    try:
        seen = take(stream, len(docker))
        assert {event.image for event in seen} == {"busybox", "busybox:latest"}
        kill = next(event for event in seen if event.event == "kill")
        die = next(event for event in seen if event.event == "die")
        assert (kill.container_id, kill.attributes["signal"]) == (web.id, "9")
        assert (die.container_id, die.attributes["exitCode"]) == (web.id, "137")
        assert die.attributes["execDuration"].isdigit()  # whole seconds, as moby's
        # The tagged filter matches only the container created with the tag; busybox (untagged)
        # matched both: moby's stripTag of "busybox:latest" is "busybox".
        [only] = take(untagged, 1)
        assert (only.event, only.image) == ("create", "busybox:latest")
    finally:
        stream.cancel()
        untagged.cancel()
    both = events(daemon, docker_only=True, images=["busybox"], events=["create"])
    try:
        assert [event.container_name for event in take(both, 2)] == ["web", "tagged"]
    finally:
        both.cancel()


def test_reconnect_after_a_daemon_restart_misses_nothing(daemon_root: pathlib.Path) -> None:
    first = start_daemon(daemon_root)
    client = connect(first.address)  # the client's own connection, not the daemon's
    seen: list[events_pb2.HistoryEvent] = []
    try:
        first.run("web")
        first.create("idle")
        stream = system_rpc.SystemStub(client).Events(spb.EventsRequest(since_seq=0),
                                                      timeout=CALL_TIMEOUT)
        seen += take(stream, len(first.history()))
        # Transitions the client may or may not have received when the daemon goes away.
        first.containers.Stop(pb.StopRequest(container="web", timeout=0), timeout=CALL_TIMEOUT)
        first.containers.Start(pb.StartRequest(container="web"), timeout=CALL_TIMEOUT)
        seen += take(stream, 1)
    finally:
        first.stop()
    # The stream ends with the daemon; whatever was still in flight may arrive first.
    try:
        seen.extend(stream)
    except grpc.RpcError as error:
        assert error.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    client.close()
    last_seen = seen[-1].seq

    second = start_daemon(daemon_root)
    client = connect(second.address)
    try:
        # More transitions after the restart, before the client is back.
        second.containers.Kill(pb.KillRequest(container="web"), timeout=CALL_TIMEOUT)
        second.containers.Remove(pb.RemoveRequest(container="idle"), timeout=CALL_TIMEOUT)
        missed = after(second.history(), last_seen)
        assert missed, "the test must leave something for the replay"
        stream = system_rpc.SystemStub(client).Events(spb.EventsRequest(since_seq=last_seen),
                                                      timeout=CALL_TIMEOUT)
        try:
            seen += take(stream, len(missed))
            assert events_of(seen) == rows_of(second.history())
            seqs = [event.seq for event in seen]
            assert len(seqs) == len(set(seqs)) and seqs == sorted(seqs)
            # And the stream follows live transitions of the new daemon.
            marker = second.create("marker")
            [event] = take(stream, 1)
            assert (event.container_id, event.event) == (marker.id, "create")
            assert event.seq == second.history()[-1].event_seq
        finally:
            stream.cancel()
    finally:
        client.close()
        second.stop()
