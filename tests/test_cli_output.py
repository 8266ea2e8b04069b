"""What reaches the terminal and stdout: colours, NO_COLOR, write errors on stdout, table layout.

Run as real processes, on a pseudo-terminal where the terminal is the point.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import Receiver
from logrecords import busy_records, delivery, iso, write
from rich.cells import cell_len
from terminal import first_lines_in_terminal, run_in_terminal

from moxiehook.log.records import EndpointRecord


def test_error_and_warning_labels_are_coloured_on_a_terminal_unless_no_color(config_path: Path) -> None:
    """NO_COLOR (https://no-color.org) turns off the `error:`/`warning:` colours too, not only Rich's."""
    folder = config_path.parent
    code, shown = run_in_terminal("endpoint", "show", "nope", cwd=folder)
    assert code == 2
    assert "\x1b[" in shown and "error:" in shown
    for value in ("1", "yes"):
        code, shown = run_in_terminal("endpoint", "show", "nope", cwd=folder, env={"NO_COLOR": value})
        assert code == 2
        assert shown == "error: unknown endpoint 'nope' (see: moxiehook endpoint list)\n"
    (folder / "log.jsonl").write_text("torn\n")
    code, shown = run_in_terminal("logs", "--json", cwd=folder, env={"NO_COLOR": "1"})
    assert code == 0
    assert shown == "warning: log.jsonl line 1 is not a valid log record; skipped\n[]\nthe delivery log is empty\n"


# --- stdout that cannot be written ------------------------------------------------

needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")


def run(args: list[str], cwd: Path, stdout: object, env: dict[str, str] | None = None,
        close_stdout: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "moxiehook", *args], cwd=cwd, stdout=stdout, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})}, timeout=60,
        preexec_fn=(lambda: os.close(1)) if close_stdout else None,
    )


@needs_dev_full
@pytest.mark.parametrize("args", [["events", "--json"], ["events"], ["logs", "--json"], ["logs"],
                                  ["logs", "show", "FIRST", "--json"], ["config", "show"], ["map", "list"]])
def test_a_full_disk_on_stdout_is_one_error_line(config_path: Path, args: list[str]) -> None:
    folder = config_path.parent
    first = delivery(0)
    write(folder / "log.jsonl", first, *[delivery(n) for n in range(1, 50)])
    args = [first.id if arg == "FIRST" else arg for arg in args]
    with open("/dev/full", "w") as full:
        result = run(args, folder, full)
    assert (result.returncode, result.stderr) == (1, "error: cannot write the output: No space left on device\n")


@pytest.mark.parametrize("args", [["events", "--json"], ["events"], ["logs", "--json"], ["config", "path"]])
def test_a_closed_stdout_is_one_error_line(config_path: Path, args: list[str]) -> None:
    write(config_path.parent / "log.jsonl", delivery(0))
    result = run(args, config_path.parent, None, close_stdout=True)
    assert (result.returncode, result.stderr) == (1, "error: cannot write the output: stdout is closed\n")


def test_a_command_that_writes_nothing_on_stdout_does_not_mind_it_closed(config_path: Path) -> None:
    result = run(["endpoint", "status", "nope"], config_path.parent, None, close_stdout=True)
    assert (result.returncode, result.stderr.splitlines()[0][:31]) == (2, "error: unknown endpoint 'nope' ")
    result = run(["fire", "ClientCreate"], config_path.parent, None, close_stdout=True)
    assert (result.returncode, result.stderr) == (3, "error: no mapping for ClientCreate (see: moxiehook map list)\n")


def test_a_reader_that_stops_early_ends_the_command_quietly(config_path: Path) -> None:
    """`moxiehook logs --json | head`: exit 141 (as if by SIGPIPE, like git or seq), nothing on stderr."""
    folder = config_path.parent
    write(folder / "log.jsonl", *[delivery(n) for n in range(3000)])  # ~2 MB: far more than a pipe holds
    process = subprocess.Popen([sys.executable, "-m", "moxiehook", "logs", "--json", "--tail", "0"], cwd=folder,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.read(100).startswith(b"[\n  {")
    process.stdout.close()
    stderr = process.stderr.read()
    assert (process.wait(timeout=60), stderr) == (141, b"")


@needs_dev_full
def test_fire_json_to_a_full_disk_after_sending_is_one_error_line(config_path: Path, receiver: Receiver) -> None:
    folder = config_path.parent
    with config_path.open("a") as handle:
        handle.write(f'\n[endpoints.mine]\n[[endpoints.mine.mappings]]\nevent = "ClientCreate"\n'
                     f'url = "{receiver.url()}"\n')
    with open("/dev/full", "w") as full:
        result = run(["fire", "ClientCreate", "--json"], folder, full)
    lines = result.stderr.splitlines()
    assert result.returncode == 1
    assert lines[-2].startswith("1 delivered, 0 failed, 0 skipped · ")
    assert lines[-1] == "error: cannot write the output: No space left on device"
    assert "Traceback" not in result.stderr
    assert len(receiver.requests) == 1
    assert len((folder / "log.jsonl").read_text().splitlines()) == 1


# --- tables: one line per record on a terminal -------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _screen_lines(shown: str) -> list[str]:
    return ANSI.sub("", shown).splitlines()


def _cell(lines: list[str], row: int, name: str) -> str:
    """The text of column ``name`` on line ``row``, cut where the header puts the column."""
    header = lines[0]
    start = header.index(name)
    rest = header[start + len(name):]
    end = start + len(name) + (len(rest) - len(rest.lstrip())) if rest.strip() else None
    return lines[row][start:end].strip()


def _a_busy_log(log: Path) -> list:
    """Records as a new user's log holds them: long URLs and errors, replays, today's and older ones."""
    today = datetime.now(UTC).replace(microsecond=0)
    records = busy_records("https://billing.internal.example.com/webhooks/moxie/deliverables/{n}?tenant=acme")
    toggle = EndpointRecord(at=iso(today), endpoint="crm", action="disabled",
                            reason="HTTP 401 Unauthorized from POST https://crm.example.com/hooks/clients")
    write(log, *records, toggle)
    return records


@pytest.mark.parametrize("columns", [80, 120])
def test_the_logs_table_is_one_line_per_record_with_ids_logs_show_accepts(cli, config_path: Path,
                                                                          columns: int) -> None:
    folder = config_path.parent
    records = _a_busy_log(folder / "log.jsonl")
    code, shown = run_in_terminal("logs", cwd=folder, columns=columns)
    assert code == 0
    lines = _screen_lines(shown)
    assert len(lines) == len(records) + 2  # the header, each delivery, the endpoint record: no wrapped line
    assert all(cell_len(line) <= columns for line in lines), lines
    header = lines[0].split()
    assert header[:5] == ["time", "outcome", "status", "event", "endpoint"] or "mode" in header
    assert header[-1] == "id" and "mode" in header  # a replay never looks like a fire
    for line, record in zip(lines[1:], records, strict=False):
        short = line.split()[-1]
        assert short == f"dlv_…{record.id[-10:]}"
        assert record.at[11:19] in line or record.at[5:10] in line  # HH:MM:SS today, the date otherwise
        shown_record = cli("logs", "show", short, "--json")
        assert (shown_record.exit_code, json.loads(shown_record.stdout)["id"]) == (0, record.id)
    if columns == 120:
        assert "mode" in header and "URL" in header
        url = _cell(lines, 1, "URL")
        assert url.startswith("https://") and url.endswith("acme") and "…" in url  # shortened in the middle
        assert _cell(lines, 2, "error").startswith("conn")
    assert _cell(lines, 6, "mode") == "replay"


def test_logs_wide_shows_every_column_in_full(config_path: Path) -> None:
    folder = config_path.parent
    records = _a_busy_log(folder / "log.jsonl")
    code, shown = run_in_terminal("logs", "--wide", cwd=folder, columns=80)
    assert code == 0
    text = ANSI.sub("", shown)
    assert all(record.id in text and record.url in text for record in records)
    assert ANSI.sub("", shown).splitlines()[0].split()[-3:-1] == ["attempts", "duration"]


def test_short_ids_and_unique_prefixes_name_one_delivery(cli, config_path: Path, receiver: Receiver) -> None:
    folder = config_path.parent
    with config_path.open("a") as handle:
        handle.write('\n[endpoints.crm]\n')
    first = delivery(0, url=receiver.url())
    time.sleep(0.002)  # another millisecond: a prefix of the id can tell them apart
    second = delivery(1, url=receiver.url())
    write(folder / "log.jsonl", first, second)
    for typed in (f"dlv_…{second.id[-10:]}", f"dlv_...{second.id[-10:]}", f"…{second.id[-6:]}", second.id[:-1]):
        result = cli("logs", "show", typed, "--json")
        assert (result.exit_code, json.loads(result.stdout)["id"]) == (0, second.id), typed
    result = cli("logs", "show", "dlv_")
    assert result.exit_code == 2
    assert result.stderr == (f"error: 'dlv_' names more than one delivery (at least {second.id} and {first.id}): "
                             "give more of the id\n")
    result = cli("replay", f"dlv_…{first.id[-10:]}", first.id, "--json")
    assert result.exit_code == 0, result.stderr
    assert len(receiver.requests) == 1  # two forms of one id: resent once
    assert json.loads(result.stdout)["deliveries"][0]["replay_of"] == first.id


@pytest.mark.parametrize("args", [("map", "list"), ("endpoint", "list"), ("endpoint", "show", "billing-service")])
def test_map_list_and_endpoint_views_are_one_line_per_record_at_80_columns(config_path: Path,
                                                                           args: tuple[str, ...]) -> None:
    long_url = "https://billing.internal.example.com/webhooks/moxie/deliverables/approvals?tenant=acme&region=eu"
    with config_path.open("a") as handle:
        handle.write(f"""
[endpoints.billing-service]
description = "Billing and approvals: a description that goes on well past the end of an 80-column line"
headers = {{ "X-Long" = "a header value that also goes well past the end of the terminal's line" }}
enabled = false
disabled_reason = "HTTP 401 Unauthorized from POST {long_url}"
[[endpoints.billing-service.mappings]]
event = "DeliverableApproval"
url = "{long_url}"
[[endpoints.billing-service.mappings]]
event = "ClientCreate"
url = "http://127.0.0.1:8787/hooks/clients"
""")
    code, shown = run_in_terminal(*args, cwd=config_path.parent, columns=80)
    assert code == 0
    lines = _screen_lines(shown)
    assert all(cell_len(line) <= 80 for line in lines), lines
    expected = {"map": 3, "list": 2, "show": 9}[args[1] if args[0] == "endpoint" else "map"]
    assert len(lines) == expected, lines
    if args[0] == "map":
        assert lines[1].split()[2].startswith("https://billing") and "…" in lines[1]


def test_followed_lines_fit_the_terminal_and_keep_their_id(config_path: Path) -> None:
    """`logs --follow` on an 80-column pseudo-terminal: each record one line, ending in its short id."""

    folder = config_path.parent
    records = _a_busy_log(folder / "log.jsonl")
    output = first_lines_in_terminal("logs", "--follow", "--tail", "4", cwd=folder, lines=4,
                                     columns=80)
    lines = _screen_lines(output)[:4]
    assert len(lines) == 4
    assert all(cell_len(line) <= 80 for line in lines), lines
    assert [line.split()[-1] for line in lines[:3]] == [f"dlv_…{r.id[-10:]}" for r in records[-3:]]
