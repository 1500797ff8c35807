"""What the CLI prints: Docker's times, statuses, tables and inspect documents."""

from __future__ import annotations

import datetime
import decimal
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from engine.cli_template import Method, NilMap, NilSlice, WithMethods, go_quote
from engine.log_pump import nanoseconds_of

ZERO_TIME = "0001-01-01T00:00:00Z"


def iso(milliseconds: int) -> str:
    """A time as Go's JSON writes a ``time.Time`` (RFC 3339 with nanoseconds, UTC), from the
    journal's milliseconds: the fraction's trailing zeros dropped, no fraction when it is
    zero (``...:05.12Z``, ``...:05Z``), as in Docker's inspect."""
    if not milliseconds:
        return ZERO_TIME
    seconds, fraction = divmod(milliseconds, 1000)
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    digits = f"{fraction:03d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{digits}" if digits else "") + "Z"


_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "h": 3_600_000_000_000}
_MOMENT = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?)?"
                     r"(Z|[+-]\d{2}:\d{2})?")
_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _go_duration(value: str) -> int | None:
    """Go's time.ParseDuration in nanoseconds, or None if ``value`` is none."""
    sign = -1 if value.startswith("-") else 1
    body = value[1:] if value[:1] in "+-" else value
    if body == "0":
        return 0
    parts = _DURATION_PART.findall(body)
    if not parts or "".join(number + unit for number, unit in parts) != body:
        return None
    return sign * int(sum(decimal.Decimal(number) * _UNITS[unit] for number, unit in parts))


def _rfc3339(value: str, *, local: bool) -> int:
    """Docker's layouts for a time (date, hour, minutes, seconds, a fraction; a zone unless
    ``local``) in nanoseconds. Raises ValueError with Go's kind of message."""
    match = _MOMENT.fullmatch(value)
    if match is None or (match.group(8) is None) != local:
        raise ValueError(f'parsing time "{value}": cannot parse it as '
                         f'{"a local" if local else "an RFC 3339"} time')
    year, month, day, hour, minute, second = (int(part or 0) for part in match.groups()[:6])
    if not 1 <= month <= 12:
        raise ValueError(f'parsing time "{value}": month out of range')
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= day <= (_DAYS[month - 1] if month != 2 or leap else 28):
        raise ValueError(f'parsing time "{value}": day out of range')
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f'parsing time "{value}": '
                         f'{"hour" if hour > 23 else "minute" if minute > 59 else "second"} '
                         "out of range")
    if local:  # Docker reads it in the client's zone as it is now (not as it was then)
        offset = time.localtime().tm_gmtoff
    elif match.group(8) == "Z":
        offset = 0
    else:
        zone = match.group(8)
        offset = (1 if zone[0] == "+" else -1) * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    days = (datetime.date(year, month, day) - datetime.date(1970, 1, 1)).days
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset
    return seconds * 1_000_000_000 + nanoseconds_of(match.group(7) or "")


def parse_moment(value: str, now_ns: int | None = None) -> int:
    """Docker's ``--since`` / ``--until`` value (its timetypes.GetTimestamp) as nanoseconds
    since the epoch: a Go duration back from now, in whole seconds (``42m``, ``1h30m``,
    ``-5m``); an RFC 3339 time or date, in the client's current zone without one
    (``2013-01-02T13:23:37Z``, ``2013-01-02T13:23``, ``2013-01-02``); a Unix time
    (``1700000000.5``). Raises ValueError (Go's message for a time it could not read)."""
    now = time.time_ns() if now_ns is None else now_ns
    duration = _go_duration(value) if value != "0" else None
    if duration is not None:
        return (now - duration) // 1_000_000_000 * 1_000_000_000
    local = not (any(char in value for char in "zZ+") or value.count("-") == 3)
    try:
        return _rfc3339(value, local=local)
    except ValueError:
        if "-" in value:
            raise  # it was a time, just not a good one: its own error
    # Docker's parseTimestamp: strconv.ParseInt of each part (a sign allowed, 64 bits).
    seconds, dot, fraction = value.partition(".")
    fraction = fraction.removeprefix("+")
    if not re.fullmatch(r"\+?\d+", seconds) or int(seconds) >= 1 << 63 or (
            dot and (not re.fullmatch(r"\d+", fraction) or int(fraction) >= 1 << 63)):
        raise ValueError(f'failed to parse value as time or duration: "{value}"')
    return int(seconds) * 1_000_000_000 + nanoseconds_of(fraction)


def ago(milliseconds: int) -> str:
    """How long ago ``milliseconds`` (a Unix time) was, in Docker's words (``Up 3 hours``,
    ``Exited (0) About a minute ago``); "" for never."""
    if not milliseconds:
        return ""
    return human_duration(
        max(0.0, datetime.datetime.now(datetime.UTC).timestamp() - milliseconds / 1000))


def human_duration(seconds: float) -> str:
    """go-units' HumanDuration: seconds below a minute, minutes below an hour, hours (rounded)
    below two days, then days below two weeks, weeks below two months, months below two
    years, years; one minute and one hour are "About a minute" and "About an hour"."""
    whole = int(seconds)
    if whole < 1:
        return "Less than a second"
    if whole < 60:
        return "1 second" if whole == 1 else f"{whole} seconds"
    minutes = whole // 60
    if minutes < 60:
        return "About a minute" if minutes == 1 else f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


_ANONYMOUS = re.compile(r"[0-9a-f]{64}")  # the name create gives a -v /path volume


def _anonymous(spec: str) -> bool:
    """A ``-v /path`` volume, as create stored it (``NAME:/path``): Docker lists those in
    Config.Volumes, not in HostConfig.Binds."""
    return _ANONYMOUS.fullmatch(spec.split(":", 1)[0]) is not None


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
        "LogPath": container.log_path,
        "Name": f"/{container.name}",
        "RestartCount": container.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": {
            "Binds": [spec for spec in config.mounts if not _anonymous(spec)] or NilSlice(),
            "Runtime": container.runtime, "AutoRemove": config.auto_remove,
            "RestartPolicy": {"Name": config.restart_policy or "no",
                              "MaximumRetryCount": config.restart_max_retries},
            "NetworkMode": config.network_mode or "none",
        },
        "Mounts": [{"Type": mount.type, **({"Name": mount.name} if mount.type == "volume"
                                            else {}),
                    "Source": mount.source, "Destination": mount.destination,
                    **({"Driver": "local"} if mount.type == "volume" else {}),
                    "Mode": mount.mode, "RW": mount.rw, "Propagation": mount.propagation}
                   for mount in container.mounts],
        "Config": {"Hostname": container.hostname, "Cmd": cmd, "Env": list(config.env),
                   "Image": container.image, "Volumes": {
                       mount.destination: {} for mount in container.mounts
                       if mount.type == "volume" and _ANONYMOUS.fullmatch(mount.name)}
                       or NilMap(),
                   "WorkingDir": config.working_dir, "User": config.user,
                   "Labels": dict(sorted(config.labels.items()))},
        "NetworkSettings": {"Networks": {config.network_mode or "none": {}}},
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
        return WithMethods(dict.fromkeys(PS_HEADERS, ""), {"Label": label_method({})})
    command = " ".join(container.config.cmd)
    if truncate and len(command) > 20:  # Docker's Ellipsis(command, 20), then Go's quoting
        command = command[:19] + "…"
    command = go_quote(command)
    created = datetime.datetime.fromtimestamp(container.created_ms / 1000, datetime.UTC)
    volumes = [spec.split(":", 1)[0] for spec in container.config.mounts
               if not spec.startswith("/")]
    labels = dict(container.config.labels)
    return WithMethods({
        "ID": container.id[:12] if truncate else container.id,
        "Image": (container.image.removeprefix("sha256:")[:12]  # an ID, as Docker truncates it
                  if truncate and container.image.startswith("sha256:") else container.image),
        "Command": command,
        "CreatedAt": created.strftime("%Y-%m-%d %H:%M:%S +0000 UTC"),
        "RunningFor": f"{ago(container.created_ms)} ago", "Ports": "",
        "State": container.status, "Status": status_text(container),
        "Size": "0B",  # Docker's without --size: units.HumanSize of SizeRw, 0
        "Names": container.name,
        "Labels": ",".join(f"{key}={value}" for key, value in sorted(labels.items())),
        "Mounts": ",".join(volumes), "Networks": container.config.network_mode or "none",
        "LocalVolumes": str(len(volumes)),
    }, {"Label": label_method(labels)})


def label_method(labels: Mapping[str, str]) -> Method:
    """Docker's ``{{.Label "key"}}`` (ps and volume ls rows): the label's value, empty
    without it."""
    return Method("Label", lambda key: labels.get(key, ""), 1)


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

    from engine.cli_template import json_plain

    print(json.dumps(json_plain(value), indent=4))
