"""What the CLI reads and prints as Docker's CLI does: ``--since`` / ``--until`` values."""

from __future__ import annotations

import datetime

import pytest

from engine.cli_output import parse_moment

NOW = 1_800_000_000_000_000_000


@pytest.mark.parametrize(("value", "expected"), [
    ("42m", NOW - 42 * 60 * 10**9),
    ("1h30m", NOW - 90 * 60 * 10**9),
    ("1.5s", NOW - 1_500_000_000),
    ("300ms", NOW - 300_000_000),
    ("1700000000", 1_700_000_000 * 10**9),
    ("1700000000.25", 1_700_000_000_250_000_000),
    ("2013-01-02T13:23:37Z", 1_357_133_017 * 10**9),
    ("2013-01-02T13:23:37.5+01:00", (1_357_133_017 - 3600) * 10**9 + 500_000_000),
])
def test_docker_time_values(value: str, expected: int) -> None:
    assert parse_moment(value, NOW) == expected


def test_a_time_without_a_zone_is_local_time() -> None:
    local = datetime.datetime(2013, 1, 2, 13, 23, 37).astimezone()
    assert parse_moment("2013-01-02T13:23:37", NOW) == int(local.timestamp()) * 10**9


@pytest.mark.parametrize("value", ["xyz", "-5m", "5 m", "m", "2013-13-45"])
def test_what_is_no_time_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        parse_moment(value, NOW)
