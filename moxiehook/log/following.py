"""``logs --follow``: print each record once, as it is appended, until Ctrl-C.

Polling (portable, and cheap at 5 looks a second). Each record is shown exactly once, whatever
happens to the file between two looks:

- appended to: read on from the end of the last whole line read; a line still being written (no
  newline yet) is left for the next look;
- a line taken back (a writer whose paired write failed cuts its line off again): the lines
  already read are still in place up to where the file now ends, so it goes on from there, not
  from the top;
- truncated or rewritten in place: none of the last lines read is where it was: read from the top;
- replaced (``logs prune`` renames a new file over it): the file read so far is still open, so the
  new file's first lines are matched, in order, against the lines already read; reading goes on
  after the last of them. Prune keeps lines in order but may drop any of them (``--before``
  drops by time, and records are appended when a delivery ends, not in time order), so this
  never relies on the last line read still being there.

A signal (a terminal resize: SIGWINCH) changes none of this: the offsets live here, not in the
terminal.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, NamedTuple

from moxiehook.log.filters import MATCH_ALL, LogFilter
from moxiehook.log.reading import LogEntry, lines_backward, lines_forward, parse_lines, whole_lines_end
from moxiehook.log.records import BadLineCallback, open_log

FOLLOW_INTERVAL = 0.2  # seconds between two looks at a followed log
RECENT_LINES = 16  # how many of the last lines read are remembered to find our place again
_HEAD, _TAIL = 256, 64  # bytes of a line remembered: its start (where the id is) and its end


class _Mark(NamedTuple):
    """Where a line read ends, and enough of it to tell whether it is still there."""

    end: int
    length: int
    head: bytes
    tail: bytes

    @classmethod
    def of(cls, end: int, line: bytes) -> _Mark:
        return cls(end, len(line), line[:_HEAD], line[-_TAIL:])

    def in_place(self, handle: IO[bytes], size: int) -> bool:
        if self.end > size:
            return False
        handle.seek(self.end - self.length)
        if handle.read(len(self.head)) != self.head:
            return False
        handle.seek(self.end - len(self.tail))
        return handle.read(len(self.tail)) == self.tail


def follow(
    path: Path,
    log_filter: LogFilter = MATCH_ALL,
    on_bad_line: BadLineCallback | None = None,
    backlog: int = 0,
    interval: float = FOLLOW_INTERVAL,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[LogEntry]:
    """The matching records already logged, then each one appended, as it comes; never ends by itself.

    ``backlog``: how many of the records already there come first (the newest N; 0: all of
    them). They are read from the same open file that is then followed, so a prune between the
    two cannot make a record show twice or go missing. A log that does not exist yet is waited
    for; all of it is new when it appears.
    """
    handle = open_log(path)  # the file read so far, kept open while followed
    offset = 0
    recent: deque[_Mark] = deque(maxlen=RECENT_LINES)
    try:
        if handle is not None:
            offset = whole_lines_end(handle)
            yield from _backlog(handle, offset, backlog, log_filter, on_bad_line)
            if offset:
                recent.append(_line_ending_at(handle, offset))
        while True:
            handle, offset = _find_place(path, handle, offset, recent)
            if handle is not None:
                lines = _remembered(lines_forward(handle, offset, whole_only=True), recent)
                for entry in parse_lines(handle, lines, log_filter.could_match, on_bad_line):
                    if log_filter.matches(entry.data):
                        yield entry
                if recent:
                    offset = recent[-1].end
            sleep(interval)
    finally:
        if handle is not None:
            handle.close()


def _backlog(
    handle: IO[bytes], end: int, count: int, log_filter: LogFilter, on_bad_line: BadLineCallback | None
) -> Iterator[LogEntry]:
    """The newest ``count`` matching records before ``end`` (0: all), oldest first."""
    if count == 0:
        for entry in parse_lines(handle, lines_forward(handle, 0, end=end), log_filter.could_match, on_bad_line):
            if log_filter.matches(entry.data):
                yield entry
        return
    found: list[LogEntry] = []
    for entry in parse_lines(handle, lines_backward(handle, end), log_filter.could_match, on_bad_line):
        if log_filter.matches(entry.data):
            found.append(entry)
            if len(found) == count:
                break
    yield from reversed(found)


def _remembered(lines: Iterator[tuple[int, bytes]], recent: deque[_Mark]) -> Iterator[tuple[int, bytes]]:
    """``lines``, each remembered (its end and marks) as it is handed on, bad or blank ones too."""
    for offset, line in lines:
        recent.append(_Mark.of(offset + len(line), line))
        yield offset, line


def _find_place(
    path: Path, handle: IO[bytes] | None, offset: int, recent: deque[_Mark]
) -> tuple[IO[bytes] | None, int]:
    """The file to read now and where to go on in it (see the module's docstring)."""
    if handle is None:
        return open_log(path), 0  # the log appeared: all of it is new
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return handle, offset  # removed: keep what was read, and wait for a new log
    opened = os.fstat(handle.fileno())
    if (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino):
        if recent and not recent[-1].in_place(handle, opened.st_size):
            while recent and not recent[-1].in_place(handle, opened.st_size):
                recent.pop()
            offset = recent[-1].end if recent else 0
        return handle, offset
    replacement = open_log(path)
    if replacement is None:
        return handle, offset
    with handle:
        offset = _offset_in_replacement(handle, offset, replacement)
    recent.clear()
    if offset:
        recent.append(_line_ending_at(replacement, offset))
    return replacement, offset


def _offset_in_replacement(old: IO[bytes], old_end: int, new: IO[bytes]) -> int:
    """Where the lines of ``new`` that were read in ``old`` (before ``old_end``) end.

    ``new`` holds some of ``old``'s lines in their order, then lines not read yet: each line of
    ``new`` is looked for further on in ``old``; the first one not found there is the first new one.
    """
    read = (line for _, line in lines_forward(old, 0, end=old_end))
    resume = 0
    for offset, line in lines_forward(new, 0, whole_only=True):
        if not any(candidate == line for candidate in read):  # consumes `read` up to the match
            return offset
        resume = offset + len(line)
    return resume


def _line_ending_at(handle: IO[bytes], end: int) -> _Mark:
    """The mark of the line that ends (with its newline) at ``end``."""
    lines = lines_backward(handle, end)
    next(lines, None)  # the empty piece after the newline at `end` (none: the file is shorter now)
    start, line = next(lines, (0, b""))
    return _Mark.of(end, line + b"\n") if end - start == len(line) + 1 else _Mark.of(end, b"\n")
