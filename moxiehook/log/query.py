"""Querying the delivery log: time filters, tail, streaming, lookup by id, follow; and pruning it.

Logs grow without bound, so nothing here loads a whole log: ``tail`` reads
the file backwards in blocks and stops once it has enough records, and the
other readers stream it. A line is parsed only when a cheap bytes check says
it could match (``b"failed" in line`` before ``json.loads``), which is what
makes filtering a large log fast.

A line that is not a JSON object is skipped and reported once through
``on_bad_line(line_number)``. Line numbers are counted only when a bad line
is actually met, so reading backwards stays cheap on a healthy log.

``entries_backward`` is public because ``replayselect`` (what ``replay``
resends) reads the log backwards with it too.

``prune`` is the one writer here: it replaces the log under the writers' lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import IO, Any

from moxiehook.errors import NotFoundError, StorageError, UsageError
from moxiehook.files import fsync_folder
from moxiehook.log.records import (
    OUTCOMES,
    BadLineCallback,
    Record,
    exclusive,
    has_lone_surrogate,
    lock_path,
    record_from_dict,
)
from moxiehook.suggest import did_you_mean

BLOCK_SIZE = 64 * 1024
FOLLOW_INTERVAL = 0.2  # seconds between two looks at a followed log

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(text: str) -> float:
    """A length of time in seconds: ``30s``, ``2m``, ``1.5h``, ``7d``, or a bare number of seconds.

    The units of ``--since``'s durations; ``UsageError`` for anything else.
    """
    match = _SPAN.match(text)
    if match is None:
        raise UsageError(f"invalid duration {text!r}: use a number of seconds or a duration like 30s, 2m, 1h")
    return float(match[1]) * _UNIT_SECONDS[match[2] or "s"]


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """``--since``: an ISO-8601 time, or a duration back from ``now`` (``30m``, ``2h``, ``7d``).

    A time without a zone is local time, as in ``journalctl --since``; the
    result is always timezone-aware.
    """
    match = _DURATION.match(text)
    if match:
        now = now or datetime.now(timezone.utc)
        try:
            return now - timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])
        except OverflowError:  # e.g. 99999999999d: before year 1
            raise UsageError(f"invalid time {text!r}: that is further back than datetime can go") from None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"invalid time {text!r}: use an ISO-8601 time (2026-11-28T14:00:00Z) "
            "or a duration like 30m, 2h, 7d"
        ) from None
    if moment.tzinfo:
        return moment
    try:
        return moment.astimezone()
    except (ValueError, OverflowError):  # 0001-01-01 west of UTC, 9999-12-31 east of it
        raise UsageError(f"invalid time {text!r}: in local time that is beyond what datetime can hold") from None


def record_time(data: dict[str, Any]) -> datetime | None:
    """A record's ``at`` as an aware datetime, or None when missing or malformed."""
    at = data.get("at")
    if not isinstance(at, str):
        return None
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class LogFilter:
    """Which records to show. Unset fields match everything.

    ``event``, ``outcome`` and ``status`` describe deliveries, so an
    ``endpoint`` record (disabled/enabled) matches only when none of them is
    set; ``endpoint`` and ``since`` apply to both kinds.
    """

    event: str | None = None
    endpoint: str | None = None
    outcome: str | None = None
    status: int | None = None
    since: datetime | None = None

    def __post_init__(self) -> None:
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise UsageError(f"invalid outcome {self.outcome!r}: use one of {', '.join(OUTCOMES)}")

    @property
    def is_empty(self) -> bool:
        return not (self.event or self.endpoint or self.outcome or self.status is not None or self.since)

    @property
    def deliveries_only(self) -> bool:
        return bool(self.event or self.outcome or self.status is not None)

    @cached_property
    def _needles(self) -> tuple[bytes, ...]:
        values = (self.event, self.endpoint, self.outcome, None if self.status is None else str(self.status))
        return tuple(value.encode() for value in values if value)

    def could_match(self, line: bytes) -> bool:
        """A cheap check on the raw line: False only when it surely cannot match.

        A JSON string may spell a character as ``\\uXXXX``; such a line is
        left to the exact check rather than risk missing it.
        """
        return all(needle in line for needle in self._needles) or b"\\u" in line

    def matches(self, data: dict[str, Any]) -> bool:
        """The exact check on a parsed line."""
        if self.endpoint is not None and data.get("endpoint") != self.endpoint:
            return False
        if data.get("kind") == "endpoint":
            if self.deliveries_only:
                return False
        elif (
            (self.event is not None and data.get("event") != self.event)
            or (self.outcome is not None and data.get("outcome") != self.outcome)
            or (self.status is not None and data.get("status") != self.status)
        ):
            return False
        if self.since is not None:
            moment = record_time(data)
            return moment is not None and moment >= self.since
        return True


MATCH_ALL = LogFilter()


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


def _lines_forward(
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


def open_log(path: Path) -> IO[bytes] | None:
    """The log opened for reading, or None when it does not exist yet (an empty log)."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read the delivery log {path}: {exc.strerror}") from None


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
        for entry in parse_lines(handle, _lines_forward(handle, 0, end=end), log_filter.could_match, on_bad_line):
            if log_filter.matches(entry.data):
                yield entry


def whole_lines_end(path: Path) -> int:
    """The offset just after the log's last complete line (0 when there is no log)."""
    handle = open_log(path)
    if handle is None:
        return 0
    with handle:
        size = os.fstat(handle.fileno()).st_size
        position = size
        while position > 0:
            start = max(0, position - BLOCK_SIZE)
            handle.seek(start)
            newline = handle.read(position - start).rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            position = start
        return 0


def follow(
    path: Path,
    log_filter: LogFilter = MATCH_ALL,
    on_bad_line: BadLineCallback | None = None,
    start: int = 0,
    interval: float = FOLLOW_INTERVAL,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[LogEntry]:
    """Matching records appended from ``start`` on, as they come; never ends by itself.

    Polls the file (portable, and cheap at 5 looks a second). A log that does
    not exist yet is waited for; a log truncated in place is read again from
    its start. A log replaced by another file (``logs prune`` renames the kept
    records over it) is read on just after the last line already read, found
    again in the new file, so no record is shown twice or skipped.
    """
    offset = start
    seen: tuple[int, int] | None = None  # (device, inode) of the file read so far
    last_line = b""  # the last whole line read: where to go on in a replacement
    while True:
        handle = open_log(path)
        if handle is not None:
            with handle:
                status = os.fstat(handle.fileno())
                if seen is None and offset:
                    last_line = next((line for _, line in lines_backward(handle, offset) if line), b"")
                elif seen is not None and seen != (status.st_dev, status.st_ino):
                    offset = _offset_after(handle, status.st_size, last_line)
                elif status.st_size < offset:
                    offset = 0
                seen = (status.st_dev, status.st_ino)
                read_to = [offset]

                def lines(handle: IO[bytes] = handle, start: int = offset) -> Iterator[tuple[int, bytes]]:
                    nonlocal last_line
                    for line_offset, line in _lines_forward(handle, start, whole_only=True):
                        read_to[0] = line_offset + len(line)  # past this line, bad or not
                        last_line = line.rstrip(b"\n")
                        yield line_offset, line

                for entry in parse_lines(handle, lines(), log_filter.could_match, on_bad_line):
                    if log_filter.matches(entry.data):
                        yield entry
                offset = read_to[0]
        sleep(interval)


def _offset_after(handle: IO[bytes], size: int, line: bytes) -> int:
    """Where ``line`` ends in the file, searched from its end (records are unique lines); 0 if it is gone."""
    if line:
        for offset, candidate in lines_backward(handle, size):
            if candidate == line:
                return offset + len(line) + 1
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


# A full delivery or event id: a prefix, "_" and a 26-character ULID.
_FULL_ID = re.compile(r"^[a-z]{3}_[0-9A-HJKMNP-TV-Z]{26}\Z")
# The short form keeps an id's LAST characters: ids made in one millisecond by one
# process differ only there (the random part is incremented), and 10 of them are
# 50 random bits, so two records of one log sharing them are rare (and reported).
SHORT_ID_CHARS = 10
ELLIPSIS = "…"


def short_id(record_id: str) -> str:
    """``dlv_…MPNJM7KNTY``: the form the ``logs`` table shows, accepted by ``logs show`` and ``replay``."""
    if not _FULL_ID.match(record_id):
        return record_id  # a hand-made id is shown as it is
    return f"{record_id[:4]}{ELLIPSIS}{record_id[-SHORT_ID_CHARS:]}"


@dataclass(frozen=True)
class IdPattern:
    """An id as typed: the full id, any unique prefix, or a short form (``dlv_…KNTY``, also ``dlv_...KNTY``)."""

    text: str
    prefix: str
    suffix: str = ""

    @classmethod
    def parse(cls, text: str) -> IdPattern:
        for mark in (ELLIPSIS, "..."):
            head, found, tail = text.partition(mark)
            if found:
                return cls(text, head.strip(), tail.strip())
        return cls(text, text.strip())

    def __post_init__(self) -> None:
        if not (self.prefix or self.suffix):
            raise UsageError(f"{self.text!r} is not a delivery id: give one from `moxiehook logs` (dlv_…)")

    @property
    def exact(self) -> bool:
        """A full id matches one record only: no need to read on for a second one."""
        return not self.suffix and bool(_FULL_ID.match(self.prefix))

    @property
    def needle(self) -> bytes:
        return max(self.prefix, self.suffix, key=len).encode()

    def matches(self, record_id: str) -> bool:
        if self.exact:
            return record_id == self.prefix
        return (len(record_id) >= len(self.prefix) + len(self.suffix)
                and record_id.startswith(self.prefix) and record_id.endswith(self.suffix))


def find(path: Path, record_id: str, on_bad_line: BadLineCallback | None = None) -> LogEntry:
    """The delivery record this id (full, prefix or short form) names; NotFoundError if none or several."""
    found = find_many(path, [record_id], on_bad_line)
    return found[record_id]


def find_many(path: Path, ids: list[str], on_bad_line: BadLineCallback | None = None) -> dict[str, LogEntry]:
    """The delivery records these ids name (as typed: full, a unique prefix, a short form), by id typed.

    Read backwards. A full id stops its search at its record; a prefix or a
    short form is looked for in the whole log, since it must name exactly one
    record. Raises NotFoundError naming ids that match no record, or several.
    """
    patterns = {text: IdPattern.parse(text) for text in dict.fromkeys(ids)}
    matches: dict[str, dict[str, LogEntry]] = {text: {} for text in patterns}

    def open_patterns() -> list[IdPattern]:
        # A full id is done once found; a partial one once it matched two records (ambiguous).
        return [p for p in patterns.values() if len(matches[p.text]) < (1 if p.exact else 2)]

    searching = open_patterns()
    needles = [p.needle for p in searching]

    def could_match(line: bytes) -> bool:
        return any(needle in line for needle in needles) or b"\\u" in line

    for entry in entries_backward(path, could_match, on_bad_line):
        record_id = entry.data.get("id")
        if entry.data.get("kind") == "endpoint" or not isinstance(record_id, str):
            continue
        for pattern in searching:
            if pattern.matches(record_id):
                matches[pattern.text].setdefault(record_id, entry)
        searching = open_patterns()
        if not searching:
            break
        needles = [p.needle for p in searching]
    missing = [text for text in patterns if not matches[text]]
    if missing:
        names = ", ".join(missing)
        raise NotFoundError(f"no delivery {names} in the log {path} (see: moxiehook logs)")
    for text, found in matches.items():
        if len(found) > 1:
            raise NotFoundError(
                f"{text!r} names more than one delivery (at least {' and '.join(found)}): give more of the id"
            )
    return {text: next(iter(found.values())) for text, found in matches.items()}


@dataclass(frozen=True)
class PruneResult:
    """What ``prune`` did: records dropped and kept, other lines kept, the log's size before and after."""

    dropped: int
    kept: int
    other_lines: int
    bytes_before: int
    bytes_after: int


def prune(path: Path, keep: int | None = None, before: datetime | None = None) -> PruneResult:
    """Drop old records: all but the newest ``keep``, and/or those logged before ``before``.

    Made under the log's lock, the one every writer takes for each append, so
    no record is appended meanwhile (writers wait, then append to the new file:
    see ``LogWriter``). The kept lines are copied whole, as they are, into a
    temp file beside the log, which is synced and renamed over it: a reader or
    a crash sees the old log or the new one, never a mix. Lines that are not
    records (a torn write, a hand edit) are kept, for a person to look at;
    blank lines are dropped. Nothing is rewritten when nothing is dropped.
    """
    if keep is None and before is None:
        raise UsageError("say what to drop: --keep N (the newest N records stay), --before WHEN, or both")
    if keep is not None and keep < 0:
        raise UsageError(f"--keep must be 0 or more, got {keep}")
    if not path.exists():
        return PruneResult(0, 0, 0, 0, 0)
    with exclusive(lock_path(path)):
        handle = open_log(path)
        if handle is None:
            return PruneResult(0, 0, 0, 0, 0)
        with handle:
            return _prune_locked(path, handle, keep, before)


def _prune_locked(path: Path, handle: IO[bytes], keep: int | None, before: datetime | None) -> PruneResult:
    import tempfile  # only prune needs it

    status = os.fstat(handle.fileno())
    size = status.st_size
    keep_from = 0  # records before this offset are beyond the newest `keep`
    if keep is not None:
        keep_from = size
        for count, entry in enumerate(entries_backward(path, lambda line: True), start=1):
            if count > keep:
                break
            keep_from = entry.offset
        else:
            keep_from = 0 if keep else size
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a prune that was killed
        with contextlib.suppress(OSError):
            stale.unlink()
    dropped = kept = other = 0
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise StorageError(f"cannot prune the delivery log {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            for offset, line in _lines_forward(handle, 0, end=size):
                if not line.strip():
                    continue
                entry = parse_entry(line, offset)
                if entry is None:
                    other += 1
                elif offset < keep_from or (before is not None and _logged_before(entry.data, before)):
                    dropped += 1
                    continue
                else:
                    kept += 1
                out.write(line)
            out.flush()
            if dropped:
                os.fchmod(out.fileno(), status.st_mode & 0o777)
                os.fsync(out.fileno())
            written = out.tell()
        if dropped:
            os.replace(tmp_name, path)
            fsync_folder(path.parent)
    except OSError as exc:
        raise StorageError(f"cannot prune the delivery log {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
    return PruneResult(dropped, kept, other, size, written if dropped else size)


def _logged_before(data: dict[str, Any], moment: datetime) -> bool:
    at = record_time(data)
    return at is not None and at < moment
