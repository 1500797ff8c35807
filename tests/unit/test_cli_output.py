"""What the CLI reads and prints as Docker's CLI does: ``--since`` / ``--until`` values."""

from __future__ import annotations

import time

import pytest

from engine.cli_output import human_duration, parse_moment

NOW = 1_800_000_000_000_000_000


@pytest.mark.parametrize(("value", "expected"), [
    ("42m", NOW - 42 * 60 * 10**9),
    ("1h30m", NOW - 90 * 60 * 10**9),
    ("1.5s", NOW - 2 * 10**9),  # Docker's: whole seconds, rounded down
    ("300ms", NOW - 10**9),
    ("-5m", NOW + 5 * 60 * 10**9),
    ("3μs", NOW - 10**9),
    ("1700000000", 1_700_000_000 * 10**9),
    ("1700000000.25", 1_700_000_000_250_000_000),
    ("1700000000.1234567891", 1_700_000_000_123_456_789),
    ("+5", 5 * 10**9),  # strconv.ParseInt takes a sign
    ("2013-01-02T13:23:37Z", 1_357_133_017 * 10**9),
    ("2013-01-02T13:23:37.123456789Z", 1_357_133_017_123_456_789),
    ("2013-01-02T13:23:37.5+01:00", (1_357_133_017 - 3600) * 10**9 + 500_000_000),
    ("2013-01-02T13:23+01:00", (1_357_133_017 - 37 - 3600) * 10**9),
    ("2013-01-02Z", 1_357_084_800 * 10**9),
    ("2013-01-02+01:00", (1_357_084_800 - 3600) * 10**9),
])
def test_docker_time_values(value: str, expected: int) -> None:
    assert parse_moment(value, NOW) == expected


def test_a_time_without_a_zone_is_in_the_clients_zone_as_it_is_now() -> None:
    offset = time.localtime().tm_gmtoff
    assert parse_moment("2013-01-02T13:23:37", NOW) == (1_357_133_017 - offset) * 10**9
    assert parse_moment("2013-01-02", NOW) == (1_357_084_800 - offset) * 10**9


@pytest.mark.parametrize("value", ["xyz", "5 m", "m", "2013-13-45", "2013-02-30",
                                   "2013-01-02 13:23:37", "2013-W01", "2013-01-02T25:00Z",
                                   "2013-01-02T13:23:37+0100",
                                   "99999999999999999999", "9223372036854775808",
                                   "1.99999999999999999999"])  # past int64: ParseInt refuses
def test_what_is_no_time_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        parse_moment(value, NOW)


@pytest.mark.parametrize(("seconds", "words"), [
    (0.4, "Less than a second"), (1, "1 second"), (59.9, "59 seconds"),
    (60, "About a minute"), (119, "About a minute"), (120, "2 minutes"),
    (3599, "59 minutes"), (3600, "About an hour"), (5399, "About an hour"),
    (5400, "2 hours"), (47 * 3600, "47 hours"), (48 * 3600, "2 days"),
    (13 * 86400, "13 days"), (14 * 86400, "2 weeks"), (60 * 86400, "2 months"),
    (2 * 365 * 86400, "2 years"),
])
def test_durations_read_as_dockers(seconds: float, words: str) -> None:
    """Docker's ps says "Up About a minute" and counts hours up to two days; berth said
    "1 minute" and "1 day" (helper-40)."""
    assert human_duration(seconds) == words


@pytest.mark.parametrize(("milliseconds", "text"), [
    (1700000000123, "2023-11-14T22:13:20.123Z"),
    (1700000000120, "2023-11-14T22:13:20.12Z"),
    (1700000000100, "2023-11-14T22:13:20.1Z"),
    (1700000000000, "2023-11-14T22:13:20Z"),
    (1700000000001, "2023-11-14T22:13:20.001Z"),
    (0, "0001-01-01T00:00:00Z"),
])
def test_times_read_as_gos_json_writes_them(milliseconds: int, text: str) -> None:
    """Docker's inspect times are Go's RFC 3339 with nanoseconds: trailing zeros dropped."""
    from engine.cli_output import iso

    assert iso(milliseconds) == text
