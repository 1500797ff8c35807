"""The log pump on real pipes: one thread for every container, and one container's broken log
never stops the others' or blocks its own output."""

from __future__ import annotations

import json
import os
import pathlib
import re
import threading

import pytest

from engine import log_pump
from engine.log_pump import (
    CHUNK,
    MAX_LINE,
    LogPump,
    entry,
    parse_rfc3339_nano,
    rfc3339_nano,
    tail_offset,
)


class Container:
    """Two pipes as a container's stdout and stderr, handed to the pump."""

    def __init__(self, pump: LogPump, log: pathlib.Path) -> None:
        out_read, self.stdout = os.pipe()
        err_read, self.stderr = os.pipe()
        self.drained = threading.Event()
        pump.add(out_read, err_read, log, self.drained.set, log.name)

    def exit(self) -> None:
        os.close(self.stdout)
        os.close(self.stderr)


def entries(path: pathlib.Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_lines_of_both_streams_land_in_order_with_their_stream(tmp_path: pathlib.Path) -> None:
    pump = LogPump()
    container = Container(pump, tmp_path / "c1.log")
    os.write(container.stdout, b"one\ntw")
    os.write(container.stderr, b"oops\n")
    os.write(container.stdout, b"o\nno newline at the end")
    container.exit()
    assert container.drained.wait(10)
    got = [(entry["stream"], entry["log"]) for entry in entries(tmp_path / "c1.log")]
    assert [line for stream, line in got if stream == "stdout"] == [
        "one\n", "two\n", "no newline at the end"]
    assert [line for stream, line in got if stream == "stderr"] == ["oops\n"]
    assert all(entry["time"].endswith("Z") for entry in entries(tmp_path / "c1.log"))


def test_a_log_that_cannot_be_written_loses_only_its_own_output(tmp_path: pathlib.Path
                                                                ) -> None:
    pump = LogPump()
    broken = Container(pump, pathlib.Path("/dev/full"))  # every write: ENOSPC
    healthy = Container(pump, tmp_path / "healthy.log")
    # More than a pipe holds: a pump that stopped reading would block this writer.
    for index in range(4 * 65536 // CHUNK + 64):
        os.write(broken.stdout, b"x" * 1023 + b"\n")
        os.write(healthy.stdout, f"line {index}\n".encode())
    broken.exit()
    healthy.exit()
    assert broken.drained.wait(10)
    assert healthy.drained.wait(10)
    assert [entry["log"] for entry in entries(tmp_path / "healthy.log")] == [
        f"line {index}\n" for index in range(4 * 65536 // CHUNK + 64)]


def test_a_log_that_cannot_be_opened_still_drains(tmp_path: pathlib.Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    pump = LogPump()
    container = Container(pump, tmp_path / "a-file" / "c1.log")
    os.write(container.stdout, b"lost\n" * 20000)  # more than a pipe holds
    container.exit()
    assert container.drained.wait(10)


def test_many_containers_one_thread(tmp_path: pathlib.Path) -> None:
    before = threading.active_count()
    pump = LogPump()
    containers = [Container(pump, tmp_path / f"c{index}.log") for index in range(20)]
    assert threading.active_count() == before + 1
    for index, container in enumerate(containers):
        os.write(container.stdout, f"hello from {index}\n".encode())
        container.exit()
    for index, container in enumerate(containers):
        assert container.drained.wait(10)
        assert [entry["log"] for entry in entries(tmp_path / f"c{index}.log")] == [
            f"hello from {index}\n"]


def test_a_line_without_end_is_cut_into_bounded_partial_entries(tmp_path: pathlib.Path) -> None:
    """Docker's copier: at most MAX_LINE bytes an entry; only a line's last entry ends with
    its newline. The pump never holds more than that for a stream."""
    pump = LogPump()
    container = Container(pump, tmp_path / "long.log")
    writer = threading.Thread(target=lambda: [os.write(container.stdout, b"y" * CHUNK)
                                              for _ in range(64)])  # 4 MiB, no newline
    writer.start()
    writer.join()
    os.write(container.stdout, b"tail\nnext\n")
    container.exit()
    assert container.drained.wait(30)
    logged = [entry["log"] for entry in entries(tmp_path / "long.log")]
    assert all(len(line.encode()) <= MAX_LINE for line in logged)
    assert "".join(logged) == "y" * (64 * CHUNK) + "tail\nnext\n"
    assert logged[-2:] == ["tail\n", "next\n"] and logged[-3].endswith("y")
    assert [line for line in logged if line.endswith("\n")] == ["tail\n", "next\n"]


def test_entries_are_written_as_dockers_json_file_driver_writes_them(
        tmp_path: pathlib.Path) -> None:
    pump = LogPump()
    container = Container(pump, tmp_path / "format.log")
    os.write(container.stderr, b"quote \" and \x01\n")
    container.exit()
    assert container.drained.wait(10)
    (line,) = (tmp_path / "format.log").read_bytes().splitlines()
    assert re.fullmatch(rb'\{"log":"quote \\" and \\u0001\\n","stream":"stderr",'
                        rb'"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z"\}', line), line


def test_rfc3339_nano_drops_trailing_zeros_as_go_does() -> None:
    assert rfc3339_nano(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert rfc3339_nano(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"
    assert rfc3339_nano(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"


def test_escapes_are_the_ones_dockers_writer_makes() -> None:
    """Raw UTF-8 (a real U+FFFD too); quotes, backslashes, \\n and \\r by name; other
    controls, < > & and U+2028/U+2029 as \\u00XX; each invalid byte as the escape \\ufffd."""
    line = entry("a\t\u2039\u00e9>&\u2028\"\\\r\n\ufffd".encode() + b"\xe2\x82X\xff",
                 "stdout")
    text = line.split(b',"stream"')[0]
    assert text == ('{"log":"a\\u0009\u2039\u00e9\\u003e\\u0026\\u2028\\"\\\\\\r\\n'
                    '\ufffd\\ufffd\\ufffdX\\ufffd"').encode()  # one escape an invalid byte
    assert json.loads(line)["log"] == "a\t\u2039\u00e9>&\u2028\"\\\r\n\ufffd\ufffd\ufffdX\ufffd"


def test_a_complete_long_line_is_cut_as_dockers_copier_cuts_it(tmp_path: pathlib.Path) -> None:
    """40000 bytes and a newline in one write: 16384 + 16384 + 7232 and the newline; a line
    of exactly 16384 bytes: the partial, then the newline alone."""
    pump = LogPump()
    container = Container(pump, tmp_path / "cut.log")
    os.write(container.stdout, b"B" * 40000 + b"\n")
    os.write(container.stderr, b"C" * MAX_LINE + b"\n")
    container.exit()
    assert container.drained.wait(10)
    logged = [(entry["stream"], entry["log"]) for entry in entries(tmp_path / "cut.log")]
    assert [line for stream, line in logged if stream == "stdout"] == [
        "B" * MAX_LINE, "B" * MAX_LINE, "B" * 7232 + "\n"]
    assert [line for stream, line in logged if stream == "stderr"] == ["C" * MAX_LINE, "\n"]
    times = {entry["time"] for entry in entries(tmp_path / "cut.log")
             if entry["stream"] == "stdout"}
    assert len(times) == 1  # a line's pieces carry its one time, as Docker's copier stamps them


def test_the_tail_is_found_from_the_end_of_the_log(tmp_path: pathlib.Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_pump, "TAIL_BLOCK", 7)  # lines across several blocks read back
    log = tmp_path / "c.log"
    lines = [f"line {index}\n".encode() for index in range(10)]
    log.write_bytes(b"".join(lines) + b"half a line")  # the last one is still being written
    with log.open("rb") as handle:
        for count, expected in ((0, []), (3, lines[7:]), (10, lines), (50, lines)):
            handle.seek(tail_offset(handle, count))
            assert [line for line in handle.readlines() if line.endswith(b"\n")] == expected
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    with empty.open("rb") as handle:
        assert tail_offset(handle, 5) == 0


def test_log_times_read_back_to_the_nanosecond() -> None:
    for nanoseconds in (1_700_000_000_000_000_000, 1_700_000_000_123_456_789,
                        1_700_000_000_100_000_000):
        assert parse_rfc3339_nano(rfc3339_nano(nanoseconds)) == nanoseconds


def test_the_pieces_of_a_long_line_share_the_time_of_the_first(tmp_path: pathlib.Path) -> None:
    """Docker's copier gives every piece the first's time (partialTS), whatever read it came
    in: ``-t`` and ``--since`` see one line, not pieces a few ms apart."""
    pump = LogPump()
    container = Container(pump, tmp_path / "pieces.log")
    for _ in range(3):  # three reads apart, 40 KiB, one line
        os.write(container.stdout, b"a" * (MAX_LINE + 100))
        threading.Event().wait(0.05)
    os.write(container.stdout, b"end\nnext\n")
    os.write(container.stdout, b"b" * (MAX_LINE + 1))  # a piece, then the rest at exit
    threading.Event().wait(0.05)
    container.exit()
    assert container.drained.wait(10)
    logged = entries(tmp_path / "pieces.log")
    first_line = logged[:[line["log"].endswith("\n") for line in logged].index(True) + 1]
    assert len(first_line) == 4 and first_line[-1]["log"].endswith("end\n")
    assert len({line["time"] for line in first_line}) == 1
    assert logged[len(first_line)]["log"] == "next\n"
    assert logged[len(first_line)]["time"] != first_line[0]["time"]
    last = logged[len(first_line) + 1:]
    assert [len(line["log"]) for line in last] == [MAX_LINE, 1]
    assert len({line["time"] for line in last}) == 1


def test_a_torn_last_entry_is_ended_before_the_next_run_appends(tmp_path: pathlib.Path
                                                                ) -> None:
    """A write a full disk cut short left half an entry: the next run's first entry used to
    be glued to it, and the line read as no JSON."""
    log = tmp_path / "torn.log"
    log.write_bytes(entry(b"whole\n", "stdout") + b'{"log":"cut sh')
    pump = LogPump()
    container = Container(pump, log)
    os.write(container.stdout, b"next run\n")
    container.exit()
    assert container.drained.wait(10)
    lines = log.read_bytes().split(b"\n")
    assert lines[1] == b'{"log":"cut sh'
    assert json.loads(lines[2])["log"] == "next run\n"


@pytest.fixture
def small_spool(monkeypatch: pytest.MonkeyPatch) -> None:
    """1000 bytes in memory, segments of 300, no reserve: the spool's rules at a small scale."""
    monkeypatch.setattr(log_pump, "ATTACH_BACKLOG", 1000)
    monkeypatch.setattr(log_pump, "SPOOL_SEGMENT", 300)
    monkeypatch.setattr(log_pump, "SPOOL_RESERVE", 0)
    monkeypatch.setattr(log_pump, "SPOOL_RESERVE_SHARE", 1 << 62)


@pytest.mark.usefixtures("small_spool")
def test_an_attachment_that_falls_behind_loses_nothing_and_blocks_nothing(
        tmp_path: pathlib.Path) -> None:
    """The pump never waits for an attached reader: past ATTACH_BACKLOG bytes in memory, what
    a slow reader has not taken waits on disk, in order, stdout and stderr mixed; once it
    caught up, memory again. It was cut off at 16 MiB, and `run ... | slow` lost the rest
    (helper-47)."""
    fanout = log_pump.Fanout(str(tmp_path))
    idle, reading = fanout.attach(), fanout.attach()
    sent: list[tuple[int, bytes]] = []
    read: list[tuple[int, bytes]] = []
    for index in range(30):
        item = (log_pump.STDOUT if index % 3 else log_pump.STDERR, bytes([65 + index]) * 100)
        sent.append(item)
        fanout.publish(*item)
        while (taken := reading.take(timeout=0)) is not None:
            read.append(taken)
    assert read == sent and not reading.cut_off
    assert len(list(tmp_path.iterdir())) == 0  # each segment is unlinked from the start
    first = [idle.take(timeout=0) for _ in range(5)]  # caught up a little, then more comes
    fanout.publish(log_pump.STDOUT, b"late")
    fanout.end()
    rest = []
    while (taken := idle.take(timeout=0)) is not None:
        rest.append(taken)
    assert first + rest == [*sent, (log_pump.STDOUT, b"late")]
    assert idle.done and not idle.cut_off and not idle._segments  # all read: all freed
    late = fanout.attach()  # after the end: ended at once
    assert late.take(timeout=0) is None and late.done


@pytest.mark.usefixtures("small_spool")
def test_the_spool_holds_only_what_is_unread(tmp_path: pathlib.Path) -> None:
    """A reader that keeps a little behind for good: each segment goes once read, so the
    disk holds the backlog, not all the output since it first fell behind (helper-48)."""
    attachment = log_pump.Attachment(str(tmp_path))
    for _ in range(10):  # memory full: the rest goes to disk
        attachment.put(log_pump.STDOUT, b"m" * 100)
    for round_ in range(200):  # then, for good: two chunks in, two out
        attachment.put(log_pump.STDOUT, bytes([round_ % 200 + 32]) * 100)
        attachment.put(log_pump.STDOUT, bytes([round_ % 200 + 32]) * 100)
        assert attachment.take(timeout=0) is not None
        assert attachment.take(timeout=0) is not None
        assert len(attachment._segments) <= 6  # ~1000 bytes behind: 4 segments of 300
    assert not attachment.cut_off


def test_an_attachment_past_its_spool_bounds_is_cut_off(tmp_path: pathlib.Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """At most SPOOL_MAX unread bytes on disk, and never into the data root's reserve: a
    reader that never reads filled the disk, and the container's log lost its end and the
    journal its commits (helper-48). Cut off, the reader learns it."""
    monkeypatch.setattr(log_pump, "ATTACH_BACKLOG", 100)
    monkeypatch.setattr(log_pump, "SPOOL_MAX", 250)
    monkeypatch.setattr(log_pump, "SPOOL_RESERVE", 0)
    monkeypatch.setattr(log_pump, "SPOOL_RESERVE_SHARE", 1 << 62)
    bounded = log_pump.Attachment(str(tmp_path))
    for index in range(4):  # 100 in memory, 2 x (100 + 5) spooled, then past SPOOL_MAX
        bounded.put(log_pump.STDOUT, bytes([65 + index]) * 100)
    assert bounded.cut_off
    taken = []
    while (item := bounded.take(timeout=0)) is not None:
        taken.append(item[1][:1])
    assert taken == [b"A", b"B", b"C"] and bounded.done
    monkeypatch.setattr(log_pump, "SPOOL_RESERVE", 1 << 62)  # no disk has that much free
    reserved = log_pump.Attachment(str(tmp_path))
    reserved.put(log_pump.STDOUT, b"a" * 100)
    reserved.put(log_pump.STDOUT, b"b")
    assert reserved.cut_off and not list(tmp_path.iterdir())


def test_runs_of_escaped_characters_are_escaped_one_by_one() -> None:
    """Escaped a run at a time (a Python call per NUL made /dev/zero 10x slower to log), each
    character of a run still as Docker's writer escapes it (helper-47)."""
    line = b"\x00\x00\x01<&>\"\\\n\r\t\xff\xfe" + "\u2028".encode() + b"ok\x1f"
    assert entry(line, "stdout", "T") == (
        b'{"log":"\\u0000\\u0000\\u0001\\u003c\\u0026\\u003e\\"\\\\\\n\\r\\u0009\\ufffd'
        b'\\ufffd\\u2028ok\\u001f","stream":"stdout","time":"T"}\n')
