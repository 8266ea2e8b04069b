"""The log reader: time parsing, filters, tail read backwards, streaming, lookup, follow."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from logrecords import START, delivery, iso, write

from moxiehook import log as logquery
from moxiehook.errors import NotFoundError, UsageError
from moxiehook.log import LogFilter, reading
from moxiehook.log.records import EndpointRecord, encode


def ids(entries: list[logquery.LogEntry]) -> list[str]:
    return [entry.data["id"] for entry in entries]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "log.jsonl"


# --- parse_when -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", START - timedelta(minutes=30)),
        ("2h", START - timedelta(hours=2)),
        ("7d", START - timedelta(days=7)),
        ("45s", START - timedelta(seconds=45)),
        ("2026-11-28T10:00:00Z", datetime(2026, 11, 28, 10, tzinfo=UTC)),
        ("2026-11-28T10:00:00.250+02:00", datetime(2026, 11, 28, 8, 0, 0, 250000, tzinfo=UTC)),
    ],
)
def test_parse_when_accepts_durations_and_iso_times(text: str, expected: datetime) -> None:
    assert logquery.parse_when(text, now=START) == expected


def test_parse_when_reads_a_time_without_zone_as_local_time() -> None:
    parsed = logquery.parse_when("2026-11-28T10:00:00")
    assert parsed.tzinfo is not None
    assert parsed == datetime(2026, 11, 28, 10).astimezone()


@pytest.mark.parametrize("text", ["yesterday", "10x", "-5m", "", "2026-13-01"])
def test_parse_when_refuses_anything_else(text: str) -> None:
    with pytest.raises(UsageError, match="invalid time"):
        logquery.parse_when(text, now=START)


@pytest.mark.parametrize(("zone", "text"), [("EST5EDT", "0001-01-01"), ("JST-9", "9999-12-31T23:59:59")])
def test_parse_when_refuses_a_local_time_beyond_datetime(
    monkeypatch: pytest.MonkeyPatch, zone: str, text: str
) -> None:
    # West of UTC, local 0001-01-01 is in year 0 (east: 9999-12-31 is in year 10000).
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        with pytest.raises(UsageError, match="invalid time"):
            logquery.parse_when(text)
    finally:
        monkeypatch.undo()
        time.tzset()


# --- filters -----------------------------------------------------------------


def test_filter_matches_each_field_exactly() -> None:
    record = delivery(5, outcome="failed", status=500, event="ClientUpdate").to_dict()
    assert LogFilter(outcome="failed", status=500, event="ClientUpdate", endpoint="crm").matches(record)
    assert not LogFilter(outcome="delivered").matches(record)
    assert not LogFilter(status=50).matches(record)
    assert not LogFilter(event="Client").matches(record)
    assert not LogFilter(endpoint="cr").matches(record)
    assert LogFilter(since=START + timedelta(minutes=5)).matches(record)
    assert not LogFilter(since=START + timedelta(minutes=6)).matches(record)


def test_endpoint_records_match_only_endpoint_and_since_filters() -> None:
    record = EndpointRecord(at=iso(START), endpoint="crm", action="disabled", reason="HTTP 401").to_dict()
    assert LogFilter().matches(record)
    assert LogFilter(endpoint="crm", since=START).matches(record)
    assert not LogFilter(endpoint="billing").matches(record)
    assert not LogFilter(outcome="failed").matches(record)
    assert not LogFilter(event="ClientCreate").matches(record)
    assert not LogFilter(status=401).matches(record)


def test_filter_refuses_an_unknown_outcome() -> None:
    with pytest.raises(UsageError, match="invalid outcome 'lost'"):
        LogFilter(outcome="lost")


def test_cheap_check_never_drops_a_line_spelled_with_escapes() -> None:
    line = b'{"kind":"delivery","id":"dlv_1","outcome":"\\u0066ailed","at":"2026-11-28T14:00:00Z"}'
    assert LogFilter(outcome="failed").could_match(line)
    assert not LogFilter(outcome="failed").could_match(line.replace(b"\\u0066ailed", b"delivered"))


# --- tail and stream --------------------------------------------------------


def test_missing_log_is_empty(log: Path) -> None:
    assert logquery.tail(log, 20) == []
    assert list(logquery.stream(log)) == []
    assert logquery.whole_lines_end(log) == 0


def test_tail_returns_the_newest_records_oldest_first(log: Path) -> None:
    records = [delivery(n) for n in range(50)]
    write(log, *records)
    assert ids(logquery.tail(log, 5)) == [r.id for r in records[-5:]]
    assert ids(logquery.tail(log, 500)) == [r.id for r in records]
    assert logquery.tail(log, 0) == []


def test_tail_across_many_blocks_keeps_every_line_whole(log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "BLOCK_SIZE", 97)  # lines straddle block edges everywhere
    records = [delivery(n) for n in range(40)]
    write(log, *records)
    entries = logquery.tail(log, 40)
    assert ids(entries) == [r.id for r in records]
    assert [entry.record for entry in entries] == records


class _CountedBytes(bytes):
    """What ``read`` returns, counting the bytes each search, slice or concatenation goes over."""

    scanned = 0

    def _count(self, extra: int = 0) -> None:
        _CountedBytes.scanned += len(self) + extra

    def find(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._count()
        return super().find(*args, **kwargs)

    def rfind(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._count()
        return super().rfind(*args, **kwargs)

    def split(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._count()
        return super().split(*args, **kwargs)

    def __getitem__(self, key):  # type: ignore[no-untyped-def]
        self._count()
        return super().__getitem__(key)

    def __add__(self, other: bytes) -> bytes:  # type: ignore[override]
        self._count(len(other))
        return bytes(self) + other


class _CountingHandle:
    def __init__(self, handle) -> None:  # type: ignore[no-untyped-def]
        self._handle = handle
        self.reads = 0

    def seek(self, offset: int) -> int:
        return self._handle.seek(offset)

    def read(self, size: int) -> bytes:
        self.reads += 1
        return _CountedBytes(self._handle.read(size))


def test_reading_backwards_past_a_huge_record_is_linear_in_its_size(log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One 2 MB record read in 1 KiB blocks: every byte is scanned a bounded number of times.

    Gluing each block onto the carried part of the line scanned ~1,000 times the
    record (2 GB); the bound is 4 times the file.
    """
    monkeypatch.setattr(reading, "BLOCK_SIZE", 1024)
    huge = delivery(0)
    huge.request["body"] = {"blob": "x" * 2_000_000}
    small = delivery(1)
    first = delivery(-1)
    write(log, first, huge, small)
    size = log.stat().st_size
    _CountedBytes.scanned = 0
    with log.open("rb") as raw:
        handle = _CountingHandle(raw)
        lines = [line for _, line in logquery.lines_backward(handle, size)]  # type: ignore[arg-type]
    assert lines == [b""] + [encode(record).rstrip(b"\n") for record in (small, huge, first)]
    assert handle.reads == -(-size // 1024)
    assert _CountedBytes.scanned <= 4 * size, _CountedBytes.scanned


def test_tail_with_a_filter_stops_at_n_matches(log: Path) -> None:
    records = [delivery(n, outcome="failed" if n % 3 == 0 else "delivered", status=500 if n % 3 == 0 else 200)
               for n in range(30)]
    write(log, *records)
    failed = [r.id for r in records if r.outcome == "failed"]
    assert ids(logquery.tail(log, 4, LogFilter(outcome="failed"))) == failed[-4:]
    assert ids(logquery.tail(log, 4, LogFilter(status=200, since=START + timedelta(minutes=25)))) == \
        [r.id for r in records[25:] if r.status == 200][-4:]


def test_stream_yields_every_match_in_order_with_unknown_fields_kept(log: Path) -> None:
    write(log, delivery(0), delivery(1, endpoint="billing"), delivery(2))
    with log.open("ab") as handle:
        handle.write(b'{"kind":"delivery","id":"dlv_X","endpoint":"crm","outcome":"failed","future":1}\n')
    entries = list(logquery.stream(log, LogFilter(endpoint="crm")))
    assert len(entries) == 3
    assert entries[-1].data["future"] == 1
    assert entries[-1].json_text.endswith('"future":1}')
    assert entries[-1].record.id == "dlv_X"


def test_bad_lines_are_reported_once_with_their_line_number(log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "BLOCK_SIZE", 64)
    write(log, delivery(0), delivery(1))
    with log.open("ab") as handle:
        handle.write(b'{"kind":"delivery","id":"dlv_torn","ou\n')  # line 3: a torn write
        handle.write(b"\n")  # line 4: blank, not worth a warning
        handle.write(b"[1, 2]\n")  # line 5: JSON, but not a record
    write(log, delivery(2))
    with log.open("ab") as handle:
        handle.write(b'{"a": NaN}\n')  # line 7: Python would accept NaN, JSON does not
    write(log, delivery(3))

    for read in (lambda report: logquery.tail(log, 100, on_bad_line=report),
                 lambda report: list(logquery.stream(log, on_bad_line=report))):
        bad: list[int] = []
        entries = read(bad.append)
        assert len(entries) == 4
        assert sorted(bad) == [3, 5, 7]


def test_a_last_line_without_newline_is_read_but_not_while_following(log: Path) -> None:
    write(log, delivery(0))
    complete = log.stat().st_size
    last = delivery(1)
    with log.open("ab") as handle:
        handle.write(encode(last)[:-1])
    assert ids(logquery.tail(log, 5))[-1] == last.id
    assert logquery.whole_lines_end(log) == complete


# --- find -----------------------------------------------------------------------


def test_find_returns_the_delivery_with_that_id(log: Path) -> None:
    records = [delivery(n) for n in range(10)]
    write(log, *records)
    assert logquery.find(log, records[3].id).record == records[3]
    with pytest.raises(NotFoundError, match="no delivery dlv_nope"):
        logquery.find(log, "dlv_nope")
    missing = log.with_name("none.jsonl")
    with pytest.raises(NotFoundError, match="dlv_nope"):
        logquery.find(missing, "dlv_nope")
    assert not missing.exists()


def test_find_ignores_an_id_that_only_appears_inside_a_body(log: Path) -> None:
    target = delivery(0)
    decoy = delivery(1)
    decoy.request["body"]["id"] = target.id
    write(log, target, decoy)
    assert logquery.find(log, target.id).record == target


# --- follow ------------------------------------------------------------------------


class Stop(Exception):
    pass


def test_follow_yields_appended_records_and_waits_for_the_file(log: Path) -> None:
    appended = [delivery(0, outcome="failed", status=500), delivery(1), delivery(2, outcome="failed", status=500)]
    ticks = iter(range(10))

    def sleep(_: float) -> None:
        tick = next(ticks)
        if tick == 1:  # the log appears only after the first looks
            write(log, *appended[:2])
        elif tick == 2:
            with log.open("ab") as handle:
                handle.write(b"not json\n")
            write(log, appended[2])
        elif tick > 3:
            raise Stop

    seen = []
    with pytest.raises(Stop):
        for entry in logquery.follow(log, LogFilter(outcome="failed"), on_bad_line=seen.append, sleep=sleep):
            seen.append(entry.data["id"])
    assert seen == [appended[0].id, 3, appended[2].id]


def test_stream_stops_at_end(log: Path) -> None:
    records = [delivery(n) for n in range(3)]
    write(log, *records[:2])
    end = log.stat().st_size
    write(log, records[2])
    assert ids(list(logquery.stream(log, end=end))) == [r.id for r in records[:2]]
    assert ids(logquery.tail(log, 5, end=end)) == [r.id for r in records[:2]]


def test_follow_reads_its_backlog_from_the_file_it_follows(log: Path) -> None:
    """A prune between showing the last records and following the log (``logs -f`` printing a
    long backlog) shows no record twice and loses none: both are read from one open file."""
    records = [delivery(n) for n in range(6)]
    write(log, *records[:4])
    looks = 0

    def sleep(_: float) -> None:
        nonlocal looks
        looks += 1
        if looks == 1:
            write(log, records[5])
        elif looks > 2:
            raise Stop

    followed = logquery.follow(log, backlog=2, sleep=sleep)
    seen = [next(followed).data["id"]]  # the backlog has begun: the file is open
    logquery.prune(log, keep=1)  # renamed over it: a file holding records[3] only
    write(log, records[4])
    with pytest.raises(Stop):
        for entry in followed:
            seen.append(entry.data["id"])
    assert seen == [r.id for r in records[2:]]


def test_the_log_package_lists_its_public_names_statically() -> None:
    """``__all__`` is a plain list in ``log/__init__.py`` (no lazy table): every name is imported
    there, and no inner module's public function is left out of it."""
    import ast

    import moxiehook.log as package

    source = Path(package.__file__).read_text(encoding="utf-8")
    listed = next(node.value for node in ast.parse(source).body
                  if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__")
    assert isinstance(listed, ast.List)
    names = [element.value for element in listed.elts]  # type: ignore[attr-defined]
    assert names == package.__all__
    assert all(hasattr(package, name) for name in names)
    for used_elsewhere in ("follow", "prune", "tail", "stream", "find", "parse_duration", "parse_when", "short_id",
                           "check_endpoint_filter", "LogFilter", "LogEntry", "open_log"):
        assert used_elsewhere in names
