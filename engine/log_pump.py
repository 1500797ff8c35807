"""The supervisor's log pump: every container's stdout and stderr into its json-file log.

Contract: one thread, multiplexing every container's two pipes with a selector (two threads a
container cost ~0.26 ms of every create, and joining them at exit more). Each line becomes one
JSON object ``{"log":...,"stream":...,"time":...}``, byte for byte as Docker's json-file driver
writes it (no spaces, RFC 3339 time in nanoseconds). A line longer than ``MAX_LINE`` is cut into
partial entries of that size without a newline, as Docker's log copier does: what the pump
holds for a container is bounded, whatever it writes (``cat /dev/zero`` included). The pipes
are always read to their end, whatever happens to the log: a log that cannot be opened or
written (a full disk) loses that container's output from then on, is reported once, and never
blocks the container or stops the pump for the others. ``on_drained`` is called, on the
pump's thread, when both streams have ended and the log is closed.

Each container's raw output also goes, chunk by chunk as it is read, to whoever attached to it
(``Fanout``: the supervisor's attach, what ``docker run`` shows): bytes as they are, partial
lines included, never through the log's JSON. A reader that falls behind never blocks the pump
or the container: past ``ATTACH_BACKLOG`` bytes in memory, what it has not taken waits on
disk, bounded (see ``Attachment``).
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import logging
import os
import pathlib
import re
import selectors
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from typing import BinaryIO

log = logging.getLogger("berth.logs")

CHUNK = 65536
ATTACH_BACKLOG = 16 << 20  # bytes an attachment keeps in memory; beyond, on disk
SPOOL_SEGMENT = 8 << 20  # a spool file's size, freed once read
SPOOL_MAX = 1 << 30  # unread bytes an attachment may keep on disk
SPOOL_RESERVE = 256 << 20  # free space never spooled into ...
SPOOL_RESERVE_SHARE = 10  # ... or this share of the disk (a tenth), if more
_SPOOLED = struct.Struct(">BI")  # a spooled chunk's header: its stream, its length
STDOUT, STDERR = 1, 2  # Docker's stdcopy stream numbers
TAIL_BLOCK = 65536  # how much of a log is read back at a time to find its last lines
MAX_LINE = 16 * 1024  # Docker's copier buffer: a longer line goes out as partial messages


class LogPump:
    """The one thread that copies container output into logs."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._guard = threading.Lock()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._additions: list[tuple[int, _Stream]] = []
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        threading.Thread(target=self._run, name="log-pump", daemon=True).start()

    def add(self, stdout: int, stderr: int, path: pathlib.Path,
            on_drained: Callable[[], None], name: str, fanout: Fanout | None = None) -> None:
        """Copy the read ends ``stdout`` and ``stderr`` (owned from here on) into ``path``,
        and to ``fanout``'s attachments; call ``on_drained`` when both have ended (``fanout``
        ends first). ``name`` names the container in reports."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            opened = open(path, "ab")  # noqa: SIM115 - closed at the end
            target: BinaryIO | None = opened
            _end_torn_entry(path, opened)
        except OSError as exc:
            log.error("%s: cannot open its log %s, its output is lost: %s", name, path, exc)
            target = None
        shared = _Log(target, on_drained, name, fanout)
        with self._guard:
            self._additions += [(stdout, _Stream("stdout", shared)),
                                (stderr, _Stream("stderr", shared))]
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_write, b"x")

    def _run(self) -> None:
        while True:
            for key, _ in self._selector.select():
                try:
                    if key.data is None:
                        self._register_additions()
                    else:
                        self._pump(key.fd, key.data)
                except Exception:  # one stream's trouble never stops the others'
                    log.exception("log pump")
                    if key.data is not None:
                        self._finish(key.fd, key.data)

    def _pump(self, descriptor: int, stream: _Stream) -> None:
        try:
            chunk = os.read(descriptor, CHUNK)
        except OSError:
            chunk = b""
        if chunk:
            fanout = stream.shared.fanout
            if fanout is not None:  # raw, as read: what an attached reader shows at once
                fanout.publish(STDOUT if stream.name == "stdout" else STDERR, chunk)
            stream.write(chunk)
        else:
            self._finish(descriptor, stream)

    def _finish(self, descriptor: int, stream: _Stream) -> None:
        if stream.ended:
            return  # finished already (its end's callback failed): the number may be reused
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(descriptor)
        with contextlib.suppress(OSError):
            os.close(descriptor)
        stream.end()

    def _register_additions(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_read, 4096)
        with self._guard:
            additions, self._additions = self._additions, []
        for descriptor, stream in additions:
            self._selector.register(descriptor, selectors.EVENT_READ, stream)


def _end_torn_entry(path: pathlib.Path, target: BinaryIO) -> None:
    """A log whose last entry a failed write cut short (a full disk) gets its newline: the
    next run's first entry is then a line of its own, not glued to the torn one."""
    with open(path, "rb") as existing:
        existing.seek(0, os.SEEK_END)
        if existing.tell() == 0:
            return
        existing.seek(-1, os.SEEK_END)
        if existing.read(1) != b"\n":
            target.write(b"\n")
            target.flush()


class Attachment:
    """What one attached reader has not taken yet: (stream, chunk) items, in order, then the
    end. Up to ``ATTACH_BACKLOG`` bytes wait in memory; beyond, they wait on disk, in spool
    segments of ``SPOOL_SEGMENT`` bytes (unlinked files in ``spool_dir``), each freed once
    read: the pump never waits for a reader, and a slow one loses nothing. What waits on disk
    is bounded: at most ``SPOOL_MAX`` bytes unread, and a new segment only while the
    filesystem keeps ``SPOOL_RESERVE`` of its space free (the logs and the journal live
    there). A reader further behind is cut off (``cut_off``): it learns it, the log has it
    all."""

    def __init__(self, spool_dir: str | None = None) -> None:
        self._ready = threading.Condition()
        self._items: collections.deque[tuple[int, bytes]] = collections.deque()
        self._queued = 0
        self._spool_dir = spool_dir
        # Once any is in use, every later chunk goes to the last one, until all are read.
        self._segments: collections.deque[BinaryIO] = collections.deque()
        self._sizes: collections.deque[int] = collections.deque()  # each one's, as written
        self._read_at = 0  # in the first segment
        self._spooled_unread = 0
        self.ended = False
        self.cut_off = False

    def put(self, stream: int, chunk: bytes) -> None:
        with self._ready:
            if self.ended:
                return
            if not self._segments and self._queued + len(chunk) <= ATTACH_BACKLOG:
                self._items.append((stream, chunk))
                self._queued += len(chunk)
            else:
                self._spool_one(stream, chunk)
            self._ready.notify()

    def _spool_one(self, stream: int, chunk: bytes) -> None:
        frame = _SPOOLED.pack(stream, len(chunk)) + chunk
        try:
            if self._spooled_unread + len(frame) > SPOOL_MAX:
                raise OSError(f"its reader is more than {SPOOL_MAX} bytes behind")
            if not self._segments or self._sizes[-1] >= SPOOL_SEGMENT:
                self._segments.append(self._new_segment())
                self._sizes.append(0)
            segment = self._segments[-1]
            segment.seek(self._sizes[-1])
            segment.write(frame)
            self._sizes[-1] += len(frame)
            self._spooled_unread += len(frame)
        except OSError as exc:
            log.error("an attachment cannot keep what its reader has not taken: %s", exc)
            self.cut_off = self.ended = True

    def _new_segment(self) -> BinaryIO:
        directory = self._spool_dir or tempfile.gettempdir()
        space = os.statvfs(directory)
        free = space.f_bavail * space.f_frsize
        reserve = max(SPOOL_RESERVE, space.f_blocks * space.f_frsize // SPOOL_RESERVE_SHARE)
        if free - SPOOL_SEGMENT < reserve:
            raise OSError(f"{directory} has too little space left to spool to")
        return tempfile.TemporaryFile(dir=directory)

    def end(self) -> None:
        with self._ready:
            self.ended = True
            self._ready.notify()

    def take(self, timeout: float) -> tuple[int, bytes] | None:
        """The next chunk, waiting up to ``timeout``; None if none came (or at the end:
        ``done`` says which)."""
        with self._ready:
            if not self._items and not self._spooled_unread and not self.ended:
                self._ready.wait(timeout)
            if self._items:
                item = self._items.popleft()
                self._queued -= len(item[1])
                return item
            if self._spooled_unread:
                return self._unspool()
            return None

    def _unspool(self) -> tuple[int, bytes] | None:
        segment = self._segments[0]
        try:
            segment.seek(self._read_at)
            stream, size = _SPOOLED.unpack(segment.read(_SPOOLED.size))
            chunk = segment.read(size)
        except (OSError, struct.error) as exc:
            log.error("an attachment's spool cannot be read: %s", exc)
            self.cut_off = self.ended = True
            self._close_spool()
            return None
        self._read_at += _SPOOLED.size + size
        self._spooled_unread -= _SPOOLED.size + size
        if self._read_at == self._sizes[0]:  # read to its end: its space goes now (the
            segment.close()  # last one too: caught up, memory again)
            self._segments.popleft()
            self._sizes.popleft()
            self._read_at = 0
        return stream, chunk

    def _close_spool(self) -> None:
        while self._segments:
            self._segments.popleft().close()
        self._sizes.clear()
        self._read_at = self._spooled_unread = 0

    def close(self) -> None:
        """The reader left: what it did not take goes."""
        with self._ready:
            self.ended = True
            self._items.clear()
            self._queued = 0
            self._close_spool()

    @property
    def done(self) -> bool:
        with self._ready:
            return self.ended and not self._items and not self._spooled_unread


class Fanout:
    """One container run's attachments: each gets every chunk read after it attached."""

    def __init__(self, spool_dir: str | None = None) -> None:
        self._guard = threading.Lock()
        self._attachments: list[Attachment] = []
        self._spool_dir = spool_dir
        self.ended = False

    def attach(self) -> Attachment:
        attachment = Attachment(self._spool_dir)
        with self._guard:
            if self.ended:
                attachment.end()
            else:
                self._attachments.append(attachment)
        return attachment

    def detach(self, attachment: Attachment) -> bool:
        """Drop ``attachment``; return whether none is left."""
        with self._guard:
            if attachment in self._attachments:
                self._attachments.remove(attachment)
            return not self._attachments

    @property
    def idle(self) -> bool:
        with self._guard:
            return not self._attachments

    def publish(self, stream: int, chunk: bytes) -> None:
        with self._guard:
            attachments = list(self._attachments)
        for attachment in attachments:
            attachment.put(stream, chunk)

    def end(self) -> None:
        with self._guard:
            self.ended = True
            attachments, self._attachments = self._attachments, []
        for attachment in attachments:
            attachment.end()


class _Log:
    """One container's log file, shared by its two streams; None once it failed."""

    def __init__(self, target: BinaryIO | None, on_drained: Callable[[], None],
                 name: str, fanout: Fanout | None = None) -> None:
        self.target = target
        self.on_drained = on_drained
        self.name = name
        self.fanout = fanout
        self.open_streams = 2

    def append(self, entries: list[bytes]) -> None:
        if self.target is None:
            return  # failed before: drain and drop
        try:
            self.target.writelines(entries)
            self.target.flush()
        except (OSError, ValueError) as exc:
            log.error("%s: cannot write its log, its output is lost from now on: %s",
                      self.name, exc)
            self._close()

    def stream_ended(self) -> None:
        self.open_streams -= 1
        if self.open_streams == 0:
            self._close()
            if self.fanout is not None:
                self.fanout.end()
            self.on_drained()

    def _close(self) -> None:
        target, self.target = self.target, None
        if target is not None:
            with contextlib.suppress(OSError, ValueError):
                target.close()


class _Stream:
    def __init__(self, name: str, shared: _Log) -> None:
        self.name = name
        self.shared = shared
        self.pending = b""
        self.ended = False
        # The time of the first piece of the line being written, once one went out: every
        # later piece has it too (Docker's copier's partialTS), whatever read it came in.
        self.partial_moment: str | None = None

    def write(self, chunk: bytes) -> None:
        *lines, rest = (self.pending + chunk).split(b"\n")  # pending < MAX_LINE: no quadratic
        entries: list[bytes] = []
        now = rfc3339_nano(time.time_ns())
        for line in lines:  # Docker's copier: a full buffer goes out as a partial message
            moment = self.partial_moment or now
            while len(line) >= MAX_LINE:
                entries.append(entry(line[:MAX_LINE], self.name, moment))
                line = line[MAX_LINE:]
            entries.append(entry(line + b"\n", self.name, moment))
            self.partial_moment = None
        while len(rest) >= MAX_LINE:
            self.partial_moment = self.partial_moment or now
            entries.append(entry(rest[:MAX_LINE], self.name, self.partial_moment))
            rest = rest[MAX_LINE:]
        self.pending = rest
        if entries:
            self.shared.append(entries)

    def end(self) -> None:
        if self.ended:
            return
        self.ended = True
        if self.pending:
            self.shared.append([entry(self.pending, self.name, self.partial_moment)])
            self.pending = b""
        self.shared.stream_ended()


def rfc3339_nano(nanoseconds: int) -> str:
    """Go's time.RFC3339Nano in UTC: trailing zeros of the fraction dropped."""
    seconds, fraction = divmod(nanoseconds, 1_000_000_000)
    moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{moment}.{fraction:09d}".rstrip("0").rstrip(".") + "Z"


def nanoseconds_of(fraction: str) -> int:
    """The nanoseconds of a decimal fraction of a second ("5" is 500000000; past nine
    digits, cut)."""
    return int(fraction.ljust(9, "0")[:9] or 0)


def parse_rfc3339_nano(text: str) -> int:
    """The nanoseconds since the epoch of a time ``rfc3339_nano`` wrote (its one layout, in
    UTC). Raises ValueError."""
    moment, _, fraction = text.removesuffix("Z").partition(".")
    seconds = datetime.datetime.fromisoformat(moment + "+00:00").timestamp()
    return int(seconds) * 1_000_000_000 + nanoseconds_of(fraction)


def padded_rfc3339_nano(text: str) -> str:
    """A time ``rfc3339_nano`` wrote, with all nine digits of its fraction (``docker logs
    -t``)."""
    moment, _, fraction = text.removesuffix("Z").partition(".")
    return f"{moment}.{fraction:0<9}Z"


def tail_offset(log: BinaryIO, count: int) -> int:
    """Where the last ``count`` complete lines of ``log`` begin (read back from its end, not
    from its start: a log may be large). A line still being written is not counted."""
    log.seek(0, os.SEEK_END)
    position = log.tell()
    wanted = count + 1  # the newline before the first of them (the last one ends the last)
    while position > 0:
        start = max(0, position - TAIL_BLOCK)
        log.seek(start)
        block = log.read(position - start)
        index = len(block)
        while (index := block.rfind(b"\n", 0, index)) >= 0:
            wanted -= 1
            if wanted == 0:
                return start + index + 1
        position = start
    return 0


# What Docker's json-file writer (ffjson's string writer) escapes: quotes and backslashes as
# such, \n and \r by name, every other control character and < > & as \u00XX, and U+2028,
# U+2029; everything else is written as raw UTF-8, except that each byte of invalid UTF-8 is
# written as the escape \ufffd (Go decodes an invalid byte as one RuneError).
# Runs of what Docker's writer escapes: one substitution a run, not one a character (a
# container writing NUL bytes took a Python call for each: 100 MB of /dev/zero, 57 s).
_ESCAPED_ONE = "[\x00-\x1f\"\\\\<>&\u2028\u2029\udc80-\udcff]"
_ESCAPED = re.compile(_ESCAPED_ONE + _ESCAPED_ONE + "*")  # not "+": sre's charset search stays
_ESCAPES = {code: f"\\u{code:04x}" for code in (*range(0x20), *map(ord, "<>&\u2028\u2029"))}
_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r"})
_ESCAPES.update(dict.fromkeys(range(0xDC80, 0xDD00), "\\ufffd"))  # an invalid byte: U+FFFD


def _go_string(text: str) -> str:
    """``text`` decoded with surrogateescape (an invalid byte is a lone surrogate)."""
    return '"' + _ESCAPED.sub(_escape, text) + '"'


def _escape(match: re.Match[str]) -> str:
    return match.group().translate(_ESCAPES)


def entry(line: bytes, stream: str, moment: str | None = None) -> bytes:
    """One json-file line, byte for byte as Docker writes it (``moment``: now)."""
    text = _go_string(line.decode("utf-8", errors="surrogateescape"))
    moment = moment or rfc3339_nano(time.time_ns())
    return f'{{"log":{text},"stream":"{stream}","time":"{moment}"}}\n'.encode()
