"""What the CLI prints: Docker's times, statuses, tables and inspect documents."""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

ZERO_TIME = "0001-01-01T00:00:00Z"


def iso(milliseconds: int) -> str:
    if not milliseconds:
        return ZERO_TIME
    moment = datetime.datetime.fromtimestamp(milliseconds / 1000, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "h": 3_600_000_000_000}


def parse_moment(value: str, now_ns: int | None = None) -> int:
    """Docker's ``--since`` / ``--until`` value as nanoseconds since the epoch: a Go duration
    back from now (``42m``, ``1h30m``), a Unix time (``1700000000.5``), or an RFC 3339 time or
    date (``2013-01-02T13:23:37Z``; local time without a zone). Raises ValueError."""
    now = time.time_ns() if now_ns is None else now_ns
    parts = _DURATION.findall(value)
    if parts and "".join(number + unit for number, unit in parts) == value:
        return now - int(sum(float(number) * _UNITS[unit] for number, unit in parts))
    if re.fullmatch(r"\d+(\.\d{1,9})?", value):
        seconds, _, fraction = value.partition(".")
        return int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0") or 0)
    moment = datetime.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time, as Docker reads a time without a zone
    micros = moment.microsecond
    return int(moment.replace(microsecond=0).timestamp()) * 1_000_000_000 + micros * 1000


def ago(milliseconds: int) -> str:
    if not milliseconds:
        return ""
    seconds = max(0, datetime.datetime.now(datetime.UTC).timestamp() - milliseconds / 1000)
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds >= size:
            count = int(seconds // size)
            plural = "s" if count != 1 else ""
            return f"{count} {unit}{plural}"
    return "Less than a second"


def docker_inspect(container: Any) -> dict[str, Any]:
    config = container.config
    cmd = list(config.cmd)
    return {
        "Id": container.id,
        "Created": iso(container.created_ms),
        "Path": cmd[0] if cmd else "",
        "Args": cmd[1:],
        "State": {
            "Status": container.status, "Running": container.running,
            "Paused": container.paused, "Restarting": container.restarting,
            "OOMKilled": container.oom_killed, "Dead": container.dead,
            "Pid": container.pid, "ExitCode": container.exit_code, "Error": container.error,
            "StartedAt": iso(container.started_ms), "FinishedAt": iso(container.finished_ms),
        },
        "Image": container.image_digest or container.image,
        "Name": f"/{container.name}",
        "RestartCount": container.restart_count,
        "HostConfig": {
            "Runtime": container.runtime, "AutoRemove": config.auto_remove,
            "RestartPolicy": {"Name": config.restart_policy or "no",
                              "MaximumRetryCount": config.restart_max_retries},
            "NetworkMode": config.network_mode or "none",
        },
        "Config": {"Cmd": cmd, "Env": list(config.env), "Image": container.image,
                   "WorkingDir": config.working_dir, "User": config.user},
    }


# docker ps --format: the fields of a container, and the header each has in a table.
PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
              "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
              "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES",
              "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
              "LocalVolumes": "LOCAL VOLUMES"}


def ps_fields(container: Any, *, truncate: bool = True) -> dict[str, Any]:
    """What ``{{.Field}}`` reads in ``ps --format`` (Docker's names; no ports or sizes here);
    every field empty for None (the row a template is tried on first). ``truncate``: the
    ID's 12 characters and the command's 20, as Docker's (not with ``--no-trunc``)."""
    if container is None:
        return dict.fromkeys(PS_HEADERS, "")
    command = " ".join(container.config.cmd)
    command = f'"{command[:20]}…"' if truncate and len(command) > 20 else f'"{command}"'
    created = datetime.datetime.fromtimestamp(container.created_ms / 1000, datetime.UTC)
    volumes = [spec.split(":", 1)[0] for spec in container.config.mounts
               if not spec.startswith("/")]
    return {
        "ID": container.id[:12] if truncate else container.id, "Image": container.image,
        "Command": command,
        "CreatedAt": created.strftime("%Y-%m-%d %H:%M:%S +0000 UTC"),
        "RunningFor": f"{ago(container.created_ms)} ago", "Ports": "",
        "State": container.status, "Status": status_text(container), "Size": "",
        "Names": container.name, "Labels": "", "Mounts": ",".join(volumes),
        "Networks": container.config.network_mode or "none",
        "LocalVolumes": str(len(volumes)),
    }


def status_text(container: Any) -> str:
    if container.status == "running":
        return f"Up {ago(container.started_ms)}"
    if container.status == "paused":
        return f"Up {ago(container.started_ms)} (Paused)"
    if container.status == "exited":
        return f"Exited ({container.exit_code}) {ago(container.finished_ms)} ago"
    return str(container.status).capitalize()


def table(rows: Iterable[Sequence[str]], header: Sequence[str], *, header_row: bool = True
          ) -> None:
    rows = [list(header), *[list(row) for row in rows]] if header_row else [
        list(row) for row in rows]
    if not rows:
        return
    widths = [max(len(row[index]) for row in rows) for index in range(len(header))]
    for row in rows:
        print("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip())


def print_json(value: Any) -> None:
    import json

    print(json.dumps(value, indent=4))
