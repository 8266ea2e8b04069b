"""Reading the delivery log: backwards (tail), forwards (stream), one parsed entry at a time.

Logs grow without bound, so nothing here loads a whole log: ``tail`` reads the file backwards in
blocks and stops once it has enough records, and the other readers stream it. A line is parsed
only when a cheap bytes check says it could match (``b"failed" in line`` before ``json.loads``),
which is what makes filtering a large log fast.

A line that is not a JSON object is skipped and reported once through ``on_bad_line(line_number)``.
Line numbers are counted only when a bad line is actually met, so reading backwards stays cheap on
a healthy log.

The log is opened by ``records.open_log``: a folder or a FIFO is refused with an error naming it
(a FIFO is never opened in blocking mode: that would wait for ever for a writer), and a device
reads as an empty log.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from moxiehook.errors import NotFoundError
from moxiehook.log.filters import MATCH_ALL, LogFilter
from moxiehook.log.records import BadLineCallback, Record, has_lone_surrogate, open_log, record_from_dict
from moxiehook.suggest import did_you_mean

BLOCK_SIZE = 64 * 1024


@dataclass(frozen=True)
class LogEntry:
    """One record as read: the parsed line, its raw bytes, where it starts, and as a ``Record``."""

    data: dict[str, Any]
    raw: bytes
    offset: int
    record: Record

    @property
    def json_text(self) -> str:
        """The record as compact JSON: the logged line itself, unknown fields kept."""
        return self.raw.strip().decode("utf-8", "replace")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_entry(line: bytes, offset: int) -> LogEntry | None:
    """The entry on ``line``, or None when it is not a JSON object (NaN is refused: not JSON)."""
    try:
        data = json.loads(line, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested arrays
        return None
    if not isinstance(data, dict) or has_lone_surrogate(line, data):
        return None
    try:
        record = record_from_dict(data)  # a line whose fields have impossible shapes is a bad line too
    except (TypeError, ValueError):
        return None
    return LogEntry(data, line, offset, record)


class _LineNumbers:
    """Line numbers from byte offsets, counted only on demand (a bad line is rare).

    The last answer is kept, so several bad lines cost one pass over the
    bytes between them rather than one pass each from the start.
    """

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self._known_offset = 0
        self._known_number = 1

    def number_at(self, offset: int) -> int:
        low, high = sorted((self._known_offset, offset))
        newlines = self._count_newlines(low, high)
        number = self._known_number + (newlines if offset >= self._known_offset else -newlines)
        self._known_offset, self._known_number = offset, number
        return number

    def _count_newlines(self, start: int, end: int) -> int:
        here = self._handle.tell()
        self._handle.seek(start)
        count, left = 0, end - start
        while left > 0:
            block = self._handle.read(min(BLOCK_SIZE, left))
            if not block:
                break
            count += block.count(b"\n")
            left -= len(block)
        self._handle.seek(here)
        return count


def lines_backward(handle: IO[bytes], end: int) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` of each line before ``end``, the last one first.

    Linear in the bytes read, however long a line is: each block is scanned
    once, and the pieces of a line spanning many blocks are kept in a list
    and joined once when its start is found. (Gluing each new block onto the
    piece carried so far copied that piece again per block: quadratic in one
    record's size, 11 s for ``logs -n 2`` past a 40 MB record.)
    """
    position = end
    carry: list[bytes] = []  # the end of a line whose start lies in a block not read yet, last piece first
    while position > 0:
        size = min(BLOCK_SIZE, position)
        position -= size
        handle.seek(position)
        block = handle.read(size)
        first_newline = block.find(b"\n")
        if first_newline < 0:
            carry.append(block)
            continue
        pieces = block[first_newline + 1 :].split(b"\n")
        carry.append(pieces.pop())  # the start of the line carried so far
        carry.reverse()
        last = b"".join(carry)
        start = position + len(block) - len(carry[0])
        found = [(start, last)]
        for piece in reversed(pieces):
            start -= len(piece) + 1
            found.append((start, piece))
        yield from found
        carry = [block[:first_newline]]
    if carry:
        carry.reverse()
        line = b"".join(carry)
        if line:
            yield 0, line


def lines_forward(
    handle: IO[bytes], start: int, whole_only: bool = False, end: int | None = None
) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` of each line from ``start`` (up to ``end``, when given).

    With ``whole_only`` a last line without its newline is left for later:
    while following, it may be a write still in progress.
    """
    handle.seek(start)
    offset = start
    for line in handle:
        if (whole_only and not line.endswith(b"\n")) or (end is not None and offset >= end):
            return
        yield offset, line
        offset += len(line)


def parse_lines(
    handle: IO[bytes],
    lines: Iterator[tuple[int, bytes]],
    could_match: Callable[[bytes], bool],
    on_bad_line: BadLineCallback | None,
) -> Iterator[LogEntry]:
    """Parse the non-blank lines that pass the cheap check; report the ones that are not JSON."""
    numbers = _LineNumbers(handle)
    for offset, line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        if not could_match(line):
            # Not parsed, but a torn write (the usual bad line) is still told apart
            # cheaply: a whole record starts with "{" and ends with "}".
            if on_bad_line is not None and not (stripped[:1] == b"{" and stripped[-1:] == b"}"):
                on_bad_line(numbers.number_at(offset))
            continue
        entry = parse_entry(line, offset)
        if entry is None:
            if on_bad_line is not None:
                on_bad_line(numbers.number_at(offset))
            continue
        yield entry


def entries_backward(
    path: Path,
    could_match: Callable[[bytes], bool],
    on_bad_line: BadLineCallback | None = None,
    end: int | None = None,
) -> Iterator[LogEntry]:
    """The parsed entries before ``end`` (default: the whole log), newest first; none without a log.

    Stop iterating as soon as you have enough: only the blocks read so far were read.
    """
    handle = open_log(path)
    if handle is None:
        return
    with handle:
        stop = os.fstat(handle.fileno()).st_size if end is None else end
        yield from parse_lines(handle, lines_backward(handle, stop), could_match, on_bad_line)


def tail(
    path: Path,
    n: int,
    log_filter: LogFilter = MATCH_ALL,
    on_bad_line: BadLineCallback | None = None,
    end: int | None = None,
) -> list[LogEntry]:
    """The newest ``n`` matching records (oldest first), read backwards from ``end``.

    Stops as soon as ``n`` records matched, so its cost depends on ``n`` (and
    on how rare the matches are), not on the size of the log.
    """
    found: list[LogEntry] = []
    if n <= 0:
        return found
    for entry in entries_backward(path, log_filter.could_match, on_bad_line, end):
        if log_filter.matches(entry.data):
            found.append(entry)
            if len(found) == n:
                break
    found.reverse()
    return found


def stream(
    path: Path,
    log_filter: LogFilter = MATCH_ALL,
    on_bad_line: BadLineCallback | None = None,
    end: int | None = None,
) -> Iterator[LogEntry]:
    """Every matching record (before ``end``, when given), oldest first, one at a time."""
    handle = open_log(path)
    if handle is None:
        return
    with handle:
        for entry in parse_lines(handle, lines_forward(handle, 0, end=end), log_filter.could_match, on_bad_line):
            if log_filter.matches(entry.data):
                yield entry


def whole_lines_end(log: Path | IO[bytes]) -> int:
    """The offset just after the log's last complete line (0 when there is no log).

    ``log``: its path, or the log already open (``follow`` reads its backlog from the file it follows).
    """
    if isinstance(log, Path):
        handle = open_log(log)
        if handle is None:
            return 0
        with handle:
            return whole_lines_end(handle)
    position = os.fstat(log.fileno()).st_size
    while position > 0:
        start = max(0, position - BLOCK_SIZE)
        log.seek(start)
        newline = log.read(position - start).rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        position = start
    return 0



# The record's own "endpoint" field: the first one on a line as the writers order them.
_ENDPOINT_FIELD = re.compile(rb'"endpoint":\s*"([^"\\]*)"')


def check_endpoint_filter(path: Path, name: str, configured: Iterable[str]) -> None:
    """``--endpoint NAME`` of ``logs``/``replay``: a name in the config or in the log, else exit 2.

    An endpoint removed from the config still has its records, so the log's
    names count too. An unknown name is a ``NotFoundError`` with the closest
    known name, as everywhere a name is typed; the log is read in full only then.
    """
    known = set(configured)
    if name in known or next(stream(path, LogFilter(endpoint=name)), None) is not None:
        return
    handle = open_log(path)
    if handle is not None:
        with handle:
            for line in handle:
                match = _ENDPOINT_FIELD.search(line)
                if match:
                    known.add(match[1].decode("utf-8", "replace"))
    raise NotFoundError(
        f"unknown endpoint {name!r}{did_you_mean(name, known, quote=True)}: "
        "it is neither in the config nor in the delivery log (see: moxiehook endpoint list)"
    )

