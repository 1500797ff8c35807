"""What the CLI prints: Docker's times, statuses, tables and inspect documents."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import Any

ZERO_TIME = "0001-01-01T00:00:00Z"


def iso(milliseconds: int) -> str:
    if not milliseconds:
        return ZERO_TIME
    moment = datetime.datetime.fromtimestamp(milliseconds / 1000, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


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


def status_text(container: Any) -> str:
    if container.status == "running":
        return f"Up {ago(container.started_ms)}"
    if container.status == "paused":
        return f"Up {ago(container.started_ms)} (Paused)"
    if container.status == "exited":
        return f"Exited ({container.exit_code}) {ago(container.finished_ms)} ago"
    return str(container.status).capitalize()


def table(rows: Iterable[Sequence[str]], header: Sequence[str]) -> None:
    rows = [list(header), *[list(row) for row in rows]]
    widths = [max(len(row[index]) for row in rows) for index in range(len(header))]
    for row in rows:
        print("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip())


def print_json(value: Any) -> None:
    import json

    print(json.dumps(value, indent=4))
