"""``logs`` and ``logs show`` through the CLI; ``logs --follow`` as a real process."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import pytest
from logrecords import START, delivery, iso, write

from moxiehook.log.records import EndpointRecord, encode
from tests.conftest import run_moxiehook


@pytest.fixture
def log(config_path: Path) -> Path:
    return config_path.parent / "log.jsonl"


def table_ids(stdout: str) -> list[str]:
    return [word for line in stdout.splitlines() for word in line.split() if word.startswith("dlv_")]


def test_missing_log_is_an_empty_log(cli, log: Path) -> None:
    result = cli("logs")
    assert (result.exit_code, result.stdout) == (0, "")
    assert "no deliveries logged yet" in result.stderr
    result = cli("logs", "--json", "--outcome", "failed")
    assert (result.exit_code, json.loads(result.stdout)) == (0, [])
    assert not log.exists()


def test_logs_lists_the_newest_20_oldest_first(cli, log: Path) -> None:
    records = [delivery(n) for n in range(25)]
    write(log, *records)
    result = cli("logs")
    assert result.exit_code == 0
    assert table_ids(result.stdout) == [r.id for r in records[5:]]
    header = result.stdout.splitlines()[0].split()
    assert header == ["time", "outcome", "status", "mode", "event", "endpoint", "URL", "error", "attempts", "duration",
                      "id"]
    assert table_ids(cli("logs", "--tail", "3").stdout) == [r.id for r in records[-3:]]
    assert table_ids(cli("logs", "--tail", "0").stdout) == [r.id for r in records]


def test_a_row_shows_what_happened(cli, log: Path) -> None:
    record = delivery(0, outcome="failed", status=503, event="MeetingScheduled", endpoint="cal",
                      url="http://127.0.0.1:9/meet")
    write(log, record)
    row = cli("logs").stdout.splitlines()[1].split()
    local = datetime.fromisoformat(record.at).astimezone().strftime("%Y-%m-%d %H:%M:%S").split()
    assert row == [*local, "failed", "503", "fire", "MeetingScheduled", "cal", "http://127.0.0.1:9/meet", "1", "3.5",
                   "ms", record.id]  # piped: every column in full, the whole id


def test_filters_select_deliveries(cli, log: Path) -> None:
    ok = delivery(0)
    failed = delivery(1, outcome="failed", status=500)
    other_event = delivery(2, outcome="failed", status=404, event="ClientDelete")
    billing = delivery(3, outcome="skipped", status=None, endpoint="billing")
    write(log, ok, failed, other_event, billing)

    def shown(*args: str) -> list[str]:
        result = cli("logs", *args)
        assert result.exit_code == 0, result.stderr
        return table_ids(result.stdout)

    assert shown("--outcome", "failed") == [failed.id, other_event.id]
    assert shown("--status", "500") == [failed.id]
    assert shown("--event", "ClientDelete") == [other_event.id]
    assert shown("--endpoint", "billing") == [billing.id]
    assert shown("--outcome", "skipped", "--endpoint", "crm") == []
    assert shown("--since", iso(START + timedelta(minutes=2))) == [other_event.id, billing.id]
    assert shown("--outcome", "failed", "--tail", "1") == [other_event.id]
    result = cli("logs", "--outcome", "delivered", "--event", "ClientDelete")
    assert "no matching records" in result.stderr


def test_since_accepts_a_duration(cli, log: Path) -> None:
    now = datetime.now(UTC)
    old, recent = delivery(0), delivery(1)
    old.at, recent.at = iso(now - timedelta(hours=3)), iso(now - timedelta(minutes=30))
    write(log, old, recent)
    assert table_ids(cli("logs", "--since", "2h").stdout) == [recent.id]
    assert table_ids(cli("logs", "--since", "1d").stdout) == [old.id, recent.id]


@pytest.mark.parametrize(("args", "message"), [
    (("--since", "last tuesday"), "error: --since: invalid time 'last tuesday'"),
    (("--outcome", "lost"), "error:"),
    (("--tail", "-1"), "error:"),
])
def test_bad_options_exit_2(cli, log: Path, args: tuple[str, ...], message: str) -> None:
    write(log, delivery(0))
    result = cli("logs", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert result.stdout == ""


def test_endpoint_records_are_listed_as_such(cli, log: Path) -> None:
    failed = delivery(0, outcome="failed", status=401)
    write(log, failed, EndpointRecord(at=iso(START), endpoint="crm", action="disabled", reason="HTTP 401 from POST"),
          EndpointRecord(at=iso(START), endpoint="crm", action="enabled"))
    lines = cli("logs").stdout.splitlines()
    assert len(lines) == 4
    assert lines[2].split()[2:6] == ["disabled", "endpoint", "crm", "HTTP"]
    assert lines[3].split()[2:5] == ["enabled", "endpoint", "crm"]
    assert len(cli("logs", "--endpoint", "crm").stdout.splitlines()) == 4
    assert table_ids(cli("logs", "--outcome", "failed").stdout) == [failed.id]
    assert len(cli("logs", "--outcome", "failed").stdout.splitlines()) == 2


def test_json_is_an_array_of_the_logged_records(cli, log: Path) -> None:
    records = [delivery(0), delivery(1, outcome="failed", status=500), delivery(2)]
    toggle = EndpointRecord(at=iso(START), endpoint="crm", action="disabled", reason="HTTP 401")
    write(log, *records, toggle)
    result = cli("logs", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == [r.to_dict() for r in records] + [toggle.to_dict()]
    assert json.loads(cli("logs", "--json", "--outcome", "failed").stdout) == [records[1].to_dict()]


def test_a_bad_line_is_skipped_with_one_warning(cli, log: Path) -> None:
    first, second = delivery(0), delivery(1, outcome="failed", status=500)
    write(log, first)
    with log.open("ab") as handle:
        handle.write(b'{"kind":"delivery","id":"dlv_torn","outcome":"fai\n')
    write(log, second)
    warning = "warning: log.jsonl line 2 is not a valid log record; skipped\n"
    for args in ((), ("--json",), ("--outcome", "failed"), ("--tail", "0", "--json")):
        result = cli("logs", *args)
        assert result.exit_code == 0
        assert result.stderr == warning, args
        assert second.id in result.stdout
    assert json.loads(cli("logs", "--json").stdout) == [first.to_dict(), second.to_dict()]


# --- logs show ---------------------------------------------------------------


def test_show_prints_one_delivery_in_full(cli, log: Path) -> None:
    record = delivery(0, outcome="failed", status=500)
    record.request["headers"] = {"Content-Type": "application/json", "Authorization": "***"}
    record.response = {"status": 500, "headers": {"content-type": "application/json"}, "body": '{"error":"boom"}'}
    record.error = "HTTP 500 Internal Server Error"
    write(log, delivery(1), record, delivery(2))
    result = cli("logs", "show", record.id)
    assert result.exit_code == 0
    out = result.stdout
    assert f"id        {record.id}" in out
    assert f"event     ClientCreate ({record.event_id})" in out
    assert "outcome   failed (HTTP 500): HTTP 500 Internal Server Error" in out
    assert "  Authorization: ***" in out
    assert '    "name": "Acme"' in out  # the body, pretty
    assert f"  1  {record.at}  HTTP 500  3.4 ms" in out
    assert "response  HTTP 500" in out
    assert '    "error": "boom"' in out


def test_show_json_is_the_logged_record(cli, log: Path) -> None:
    record = delivery(0, outcome="skipped", status=None)
    write(log, record)
    result = cli("logs", "show", record.id, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == record.to_dict()
    assert "response  none" in cli("logs", "show", record.id).stdout


def test_show_unknown_id_exits_2(cli, log: Path) -> None:
    write(log, delivery(0))
    result = cli("logs", "show", "dlv_nope")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no delivery dlv_nope")
    assert result.stdout == ""


def test_help_lists_the_options_and_show(cli) -> None:
    out = cli("logs", "--help").stdout
    for word in ("--tail", "--event", "--endpoint", "--outcome", "--status", "--since", "--follow", "--json", "show"):
        assert word in out


# --- logs --follow (a real process, stopped with Ctrl-C) -------------------------------


class Lines:
    """Reads a child's stdout line by line, waiting at most a few seconds for each."""

    def __init__(self, process: subprocess.Popen[bytes], stream: IO[bytes] | None = None) -> None:
        self.stream = stream or process.stdout  # type: ignore[assignment]
        assert self.stream is not None
        os.set_blocking(self.stream.fileno(), False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.stream, selectors.EVENT_READ)
        self.buffer = b""

    def next(self, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            assert left > 0, f"no line within {timeout} s (got {self.buffer!r})"
            if self.selector.select(left):
                chunk = self.stream.read()
                assert chunk, "the process ended"
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()


def start_follow(config_path: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "moxiehook", "--config", str(config_path), "logs", "--follow", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def stop(process: subprocess.Popen[bytes]) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=10)
    finally:
        process.kill()
    return process.returncode, stderr.decode()


def test_follow_json_prints_new_records_as_lines_until_ctrl_c(config_path: Path, log: Path) -> None:
    earlier = [delivery(0), delivery(1, outcome="failed", status=500)]
    write(log, *earlier)
    process = start_follow(config_path, "--json", "--tail", "1")
    try:
        lines = Lines(process)
        assert json.loads(lines.next()) == earlier[1].to_dict()
        later = [delivery(2), delivery(3)]
        write(log, later[0])
        assert json.loads(lines.next())["id"] == later[0].id
        with log.open("ab") as handle:
            handle.write(b"torn\n")
        write(log, later[1])
        assert json.loads(lines.next())["id"] == later[1].id
    finally:
        code, stderr = stop(process)
    assert code == 0
    assert "Traceback" not in stderr
    assert "warning: log.jsonl line 4 is not a valid log record; skipped" in stderr


def test_follow_waits_for_the_log_to_appear(config_path: Path, log: Path) -> None:
    process = start_follow(config_path, "--outcome", "failed")
    try:
        lines = Lines(process)
        said = Lines(process, process.stderr).next()  # it has looked at the missing file
        assert said == "no deliveries logged yet; waiting for the first (Ctrl-C to stop)"
        wanted = delivery(1, outcome="failed", status=502)
        write(log, delivery(0), wanted)
        line = lines.next()
        assert line.split()[2:4] == ["failed", "502"]
        assert line.split()[-1] == wanted.id
    finally:
        code, _ = stop(process)
    assert code == 0


def test_follow_with_tail_0_shows_the_whole_log_first(config_path: Path, log: Path) -> None:
    earlier = [delivery(n) for n in range(3)]
    write(log, *earlier)
    process = start_follow(config_path, "--json", "--tail", "0")
    try:
        lines = Lines(process)
        assert [json.loads(lines.next())["id"] for _ in earlier] == [r.id for r in earlier]
        later = delivery(9)
        write(log, later)
        assert json.loads(lines.next())["id"] == later.id
    finally:
        code, _ = stop(process)
    assert code == 0


def test_follow_goes_on_after_a_prune_replaces_the_log(config_path: Path, log: Path) -> None:
    """No record shown twice, none missed, when `logs prune` renames a new log over the followed one."""
    earlier = [delivery(n) for n in range(5)]
    write(log, *earlier)
    process = start_follow(config_path, "--json", "--tail", "1")
    try:
        lines = Lines(process)
        assert json.loads(lines.next())["id"] == earlier[-1].id
        middle = delivery(5)
        write(log, middle)
        assert json.loads(lines.next())["id"] == middle.id
        inode = log.stat().st_ino
        assert run_moxiehook("--config", str(config_path), "logs", "prune", "--keep", "2").returncode == 0
        assert log.stat().st_ino != inode
        later = [delivery(6), delivery(7)]
        write(log, *later)
        assert [json.loads(lines.next())["id"] for _ in later] == [r.id for r in later]
        log.write_text("")  # truncated in place: read again from the start
        last = delivery(8)
        write(log, last)
        assert json.loads(lines.next())["id"] == last.id
    finally:
        code, stderr = stop(process)
    assert (code, stderr) == (0, "")
    assert lines.buffer == b""


# --- logs prune ------------------------------------------------------------------------


def test_prune_keeps_the_newest_n_and_or_those_since_when(cli, log: Path, config_path: Path) -> None:
    records = [delivery(n) for n in range(30)]
    toggle = EndpointRecord(at=iso(START + timedelta(minutes=3)), endpoint="crm", action="disabled", reason="x")
    write(log, *records[:5])
    with log.open("ab") as handle:
        handle.write(b"a hand edit\n\n")
    write(log, toggle, *records[5:])
    result = cli("logs", "prune", "--keep", "10", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary == {"dropped": 21, "kept": 10, "other_lines": 1, "bytes_before": summary["bytes_before"],
                       "bytes_after": log.stat().st_size}
    assert summary["bytes_before"] > 3 * summary["bytes_after"]
    assert log.read_bytes() == b"a hand edit\n" + b"".join(encode(r) for r in records[20:])
    result = cli("logs", "prune", "--before", iso(START + timedelta(minutes=25)))
    assert result.exit_code == 0
    assert result.stdout.startswith("dropped 5 records, kept 5 (log.jsonl: ")
    assert result.stderr == ("warning: 1 line that is not a valid log record kept as found "
                             f"(see: moxiehook --config {config_path} logs)\n")
    assert table_ids(cli("logs").stdout) == [r.id for r in records[25:]]
    inode = log.stat().st_ino
    result = cli("logs", "prune", "--keep", "5", "--before", iso(START))
    assert (result.exit_code, result.stdout) == (0, "dropped 0 records, kept 5\n")
    assert log.stat().st_ino == inode  # nothing dropped: the log is not rewritten
    assert cli("logs", "prune", "--keep", "0", "--yes").stdout.startswith("dropped 5 records, kept 0")
    assert log.read_bytes() == b"a hand edit\n"
    assert not list(log.parent.glob(".log.jsonl.*.tmp"))


@pytest.mark.parametrize(("args", "match"), [
    ((), "say what to drop: --keep N"), (("--keep", "-1"), "--keep"),
    (("--before", "yesterday"), "--before: invalid time"),
])
def test_prune_needs_a_sensible_keep_or_before(rejected, log: Path, args: tuple, match: str) -> None:
    write(log, delivery(0))
    before = log.read_bytes()
    rejected("logs", "prune", *args, match=match)
    assert log.read_bytes() == before


def test_prune_while_fires_append_loses_no_record(config_path: Path, log: Path, receiver) -> None:
    """Real processes: 3 `fire --count 150` runs append while `logs prune --keep 40` runs again and again.

    Every record a writer appends lands in the log that stays (writers take the lock prune holds, and
    reopen the log once it was replaced): the records dropped plus those left add up to all 450, and
    every line left is whole.
    """
    with config_path.open("a") as handle:
        handle.write(f'\n[endpoints.mine]\n[[endpoints.mine.mappings]]\nevent = "ClientCreate"\n'
                     f'url = "{receiver.url()}"\n')
    fires = [subprocess.Popen([sys.executable, "-m", "moxiehook", "--config", str(config_path), "fire",
                               "ClientCreate", "--count", "150", "--concurrency", "4"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(3)]
    dropped = prunes = 0
    while any(fire.poll() is None for fire in fires) and prunes < 200:
        result = run_moxiehook("--config", str(config_path), "logs", "prune", "--keep", "40", "--json")
        assert result.returncode == 0, result.stderr
        dropped += json.loads(result.stdout)["dropped"]
        prunes += 1
    for fire in fires:
        assert fire.wait(timeout=60) == 0, fire.stderr.read() if fire.stderr else ""
    lines = log.read_bytes().splitlines()
    assert all(json.loads(line)["kind"] == "delivery" for line in lines)
    assert dropped + len(lines) == 450
    assert prunes >= 2 and dropped > 0
    assert len(receiver.requests) == 450


# --- endpoint names typed -----------------------------------------------------


@pytest.fixture
def mine(config_path: Path, log: Path) -> Path:
    """Endpoint 'mine' in the config; 'gone' only in the log (removed from the config since)."""
    with config_path.open("a") as handle:
        handle.write('\n[endpoints.mine]\n[[endpoints.mine.mappings]]\nevent = "ClientCreate"\n'
                     'url = "http://127.0.0.1:9/hook"\n')
    write(log, delivery(0, endpoint="mine", outcome="failed", status=500),
          delivery(1, endpoint="gone", outcome="failed", status=500))
    return config_path


@pytest.mark.parametrize("command", [("logs",), ("logs", "--json"), ("replay", "--failed"),
                                     ("replay", "--failed", "--dry-run")])
def test_an_unknown_endpoint_filter_is_exit_2_with_the_closest_name(rejected, mine: Path, command: tuple) -> None:
    """A typo no longer reads as 'no matching records' (exit 0): exit 2, nothing sent, the name suggested."""
    rejected(*command, "--endpoint", "mien", match=("unknown endpoint 'mien'", "(did you mean 'mine'?)"))
    rejected(*command, "--endpoint", "gnoe", match=("unknown endpoint 'gnoe'", "(did you mean 'gone'?)"))
    rejected(*command, "--endpoint", "zzz", match="unknown endpoint 'zzz': it is neither in the config nor in")


def test_an_endpoint_filter_accepts_a_name_in_the_config_or_only_in_the_log(cli, mine: Path, log: Path) -> None:
    assert cli("logs", "--endpoint", "gone").exit_code == 0
    assert len(table_ids(cli("logs", "--endpoint", "gone").stdout)) == 1
    assert len(table_ids(cli("logs", "--endpoint", "mine").stdout)) == 1
    log.unlink()
    result = cli("logs", "--endpoint", "mine")  # in the config, nothing logged yet
    assert (result.exit_code, result.stdout) == (0, "")


@pytest.mark.parametrize("command", [
    ("endpoint", "show", "mien"), ("endpoint", "enable", "mien"), ("endpoint", "status", "mien"),
    ("endpoint", "set-header", "mien", "X-A", "b"), ("map", "add", "mien", "ClientCreate", "http://h/"),
    ("map", "remove", "mien", "ClientCreate"), ("fire", "ClientCreate", "--endpoint", "mien"), ("test", "mien"),
])
def test_every_command_naming_an_endpoint_suggests_the_closest(rejected, mine: Path, command: tuple) -> None:
    rejected(*command, match=("unknown endpoint 'mien' (did you mean 'mine'?)",))
