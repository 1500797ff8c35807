"""Engine records to and from the berth.v1 messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.api.v1 import containers_pb2 as pb
from engine.api.v1 import events_pb2
from engine.container_config import ContainerConfig, RestartPolicy
from engine.state import docker_flags, docker_status
from engine.store import ContainerRecord, HistoryRecord, ImageRecord


def config_from(message: pb.ContainerConfig) -> ContainerConfig:
    return ContainerConfig(
        image=message.image, command=tuple(message.cmd), name=message.name,
        env=tuple(message.env), working_dir=message.working_dir, user=message.user,
        hostname=message.hostname, network_mode=message.network_mode or "none",
        mounts=tuple(message.mounts), secrets=tuple(message.secrets),
        restart_policy=RestartPolicy(message.restart_policy or "no",
                                     message.restart_max_retries),
        auto_remove=message.auto_remove, runtime=message.runtime,
        labels=tuple(sorted(message.labels.items())),
    )


def container_message(record: ContainerRecord) -> pb.Container:
    flags = docker_flags(record.state)
    config = record.config
    return pb.Container(
        id=record.id, name=record.name, image=record.image, created_ms=record.created_at,
        state=record.state.value,
        status=docker_status(record.state, started_before=record.has_been_started_before),
        running=flags["Running"], paused=flags["Paused"], restarting=flags["Restarting"],
        oom_killed=record.oom_killed, dead=flags["Dead"],
        removal_in_progress=flags["RemovalInProgress"], pid=record.pid,
        exit_code=record.exit_code, error=record.error, started_ms=record.started_at or 0,
        finished_ms=record.finished_at or 0, restart_count=record.restart_count,
        runtime=record.runtime, runtime_binary=record.runtime_binary or "",
        image_digest=str(config.get("image_digest", "")),
        config=pb.ContainerConfig(
            image=record.image, cmd=list(config.get("cmd", [])), name=record.name,
            env=list(config.get("env", [])), working_dir=config.get("working_dir", ""),
            user=config.get("user", ""), hostname=config.get("hostname", ""),
            network_mode=config.get("network_mode", "none"),
            mounts=list(config.get("mounts", [])), restart_policy=record.restart_policy,
            restart_max_retries=record.restart_max_retries, auto_remove=record.auto_remove,
            runtime=record.runtime, labels=labels_of(config),
        ),
    )


def labels_of(config: Mapping[str, Any]) -> dict[str, str]:
    """A stored configuration's labels (none before labels were kept)."""
    return {str(key): str(value) for key, value in (config.get("labels") or {}).items()}


def inspect_details(message: pb.Container, record: ContainerRecord, *, log_path: str,
                    volumes_root: str | None) -> pb.Container:
    """Fill what only Inspect shows: moby's Mounts (a volume's source under
    ``volumes_root``), LogPath and the hostname the container has."""
    from engine.container_config import parse_mount
    from engine.errors import InvalidParameter
    from engine.oci_spec import container_hostname
    from engine.volume import data_path

    message.log_path = log_path
    message.hostname = container_hostname(record.id, record.config)
    mounts = []
    for spec in record.config.get("mounts") or []:
        try:
            mount = parse_mount(spec)
        except InvalidParameter:  # stored before a rule it breaks: not shown
            continue
        source = str(mount["source"])
        modes = list(mount.get("modes", []))  # as typed: moby keeps the mode string
        volume = not source.startswith("/")
        mounts.append(pb.Mount(
            type="volume" if volume else "bind", name=source if volume else "",
            source=(data_path(volumes_root, source) if volumes_root else "") if volume
            else source, destination=str(mount["destination"]), mode=",".join(modes),
            rw=not mount["readonly"],
            propagation="" if volume else str(mount.get("propagation") or "rprivate")))
    message.mounts.extend(mounts)
    return message


def history_message(row: HistoryRecord, name: str, image: str = "",
                    labels: Mapping[str, str] | None = None) -> events_pb2.HistoryEvent:
    """An event of ``row``; its attributes are the row's, then the container's ``labels``
    over them (moby's copyAttributes)."""
    attributes = {key: _attribute(key, value)
                  for key, value in (row.attributes or {}).items() if value is not None}
    attributes.update(labels or {})
    return events_pb2.HistoryEvent(
        seq=row.event_seq, container_id=row.container_id, container_name=name,
        container_seq=row.seq, event=row.event, from_state=row.from_state or "",
        to_state=row.to_state, step=row.step or "", outcome=row.outcome,
        error=row.error_message or "", error_class=row.error_class or "", actor=row.actor,
        request_id=row.request_id or "", at_ms=row.at, image=image, attributes=attributes,
    )


def _attribute(key: str, value: Any) -> str:
    """An event attribute as moby writes it: a string; ``true``/``false``; ``execDuration``
    in whole seconds (the journal keeps milliseconds)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if key == "execDuration" and isinstance(value, int | float):
        return str(int(value))
    return str(value)


def image_message(record: ImageRecord) -> pb.Image:
    return pb.Image(reference=record.reference, digest=record.digest,
                    size_bytes=record.size_bytes, created_ms=record.created_at)
