"""Tables as a person sees them on a real terminal 60, 80 and 120 columns wide.

Every row one line; an id never cut (the short id shown names one delivery and `logs show`
accepts it); a URL keeps its scheme, host and port; the `mode` column stays, so a replay
never looks like a fire; followed rows line up with each other.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import Answer
from logrecords import busy_records, iso, write
from rich.cells import cell_len
from terminal import first_lines_in_terminal, run_in_terminal

from moxiehook import catalog
from moxiehook.cli.render import shorten
from moxiehook.log.records import EndpointRecord

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def screen(shown: str) -> list[str]:
    return ANSI.sub("", shown).splitlines()


def busy_log(log: Path, same_millisecond: bool = False) -> list:
    """Fires, replays and forwards, failed and delivered, today and before, long URLs."""
    today = datetime.now(UTC).replace(microsecond=0)
    records = busy_records("http://127.0.0.1:8787/webhooks/moxie/deliverables/{n}/clients", forward=True)
    if same_millisecond:  # ids made in one millisecond share all but their last characters
        for record in records:
            record.id = records[0].id[:-3] + record.id[-3:]
    write(log, *records, EndpointRecord(at=iso(today), endpoint="crm", action="disabled",
                                        reason="HTTP 401 Unauthorized from POST http://127.0.0.1:8787/hooks"))
    return records


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_logs_rows_keep_mode_and_an_id_logs_show_accepts(cli, config_path: Path, columns: int) -> None:
    folder = config_path.parent
    records = busy_log(folder / "log.jsonl", same_millisecond=True)
    code, shown = run_in_terminal("logs", cwd=folder, columns=columns)
    assert code == 0, shown
    lines = screen(shown)
    assert len(lines) == len(records) + 2, lines
    assert all(cell_len(line) <= columns for line in lines), lines
    header = lines[0].split()
    assert "mode" in header, lines[0]
    start = lines[0].index("mode")
    modes = [line[start:].split()[0] for line in lines[1:-1]]
    assert modes == [str(record.mode) for record in records], lines
    shorts = [line.split()[-1] for line in lines[1:-1]]
    assert len(set(shorts)) == len(records), shorts
    for short, record in zip(shorts, records, strict=True):
        result = cli("logs", "show", short, "--json")
        assert (result.exit_code, json.loads(result.stdout)["id"]) == (0, record.id), short


@pytest.mark.parametrize(("url", "width", "expected"), [
    ("http://127.0.0.1:8787/webhooks/moxie/clients", 30, "http://127.0.0.1:8787…/clients"),
    ("https://crm.example.com/hooks/clients?tenant=acme", 36, "https://crm.example.com…?tenant=acme"),
    ("http://127.0.0.1:8787/hooks", 40, "http://127.0.0.1:8787/hooks"),
    ("http://[::1]:8787/a/very/long/path/to/the/clients", 24, "http://[::1]:8787…lients"),
])
def test_a_shortened_url_keeps_its_scheme_host_and_port(url: str, width: int, expected: str) -> None:
    assert shorten(url, width, "middle") == expected
    assert cell_len(expected) <= width


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_map_list_urls_keep_host_and_port(config_path: Path, columns: int) -> None:
    with config_path.open("a") as handle:
        handle.write('\n[endpoints.billing-service]\n[[endpoints.billing-service.mappings]]\n'
                     'event = "DeliverableApproval"\n'
                     'url = "http://127.0.0.1:8787/webhooks/moxie/deliverables/approvals/clients"\n')
    code, shown = run_in_terminal("map", "list", cwd=config_path.parent, columns=columns)
    assert code == 0, shown
    lines = screen(shown)
    assert all(cell_len(line) <= columns for line in lines), lines
    assert "http://127.0.0.1:8787" in lines[1], lines


def test_events_wide_shows_every_description_whole(tmp_path: Path) -> None:
    code, shown = run_in_terminal("events", "--wide", cwd=tmp_path, columns=80)
    assert code == 0, shown
    text = " ".join(ANSI.sub("", shown).split())
    for event in catalog.EVENTS:
        assert " ".join(event.description.split()) in text, event.name


def test_events_at_120_columns_give_the_room_to_the_description(tmp_path: Path) -> None:
    """The object column gives way before the description does."""
    code, shown = run_in_terminal("events", cwd=tmp_path, columns=120)
    assert code == 0, shown
    lines = screen(shown)
    assert all(cell_len(line) <= 120 for line in lines), lines
    whole = sum(1 for event in catalog.EVENTS if event.description in shown)
    assert whole >= len(catalog.EVENTS) * 3 // 4, lines


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_followed_rows_line_up_with_each_other(config_path: Path, columns: int) -> None:
    """`logs --follow` prints rows one at a time, each fitted alone: its columns must still line up."""

    folder = config_path.parent
    records = busy_log(folder / "log.jsonl")
    output = first_lines_in_terminal("logs", "--follow", "--tail", "9", cwd=folder, lines=9,
                                     columns=columns)
    lines = screen(output)[:9]
    assert len(lines) == 9, lines
    assert all(cell_len(line) <= columns for line in lines), lines
    rows = lines[:8]  # the deliveries (the last line is the endpoint record)
    for record, line in zip(records, rows, strict=True):
        assert line.endswith(f"dlv_…{record.id[-10:]}"), line
    id_starts = {line.index("dlv_…") for line in rows}
    assert len(id_starts) == 1, rows
    mode_starts = {line.index(str(record.mode)) for record, line in zip(records, rows, strict=True)}
    assert len(mode_starts) == 1, rows


@pytest.mark.parametrize("columns", [60, 80])
def test_long_messages_fold_at_spaces_on_a_terminal(config_path: Path, receiver, columns: int) -> None:
    """The walk-through's 401: the disabled-endpoint warning is 99 characters, and a terminal wrapped
    it mid-URL. On a terminal every message line fits and breaks at a space (the URL stays whole);
    through a pipe it stays one line, for grep."""
    receiver.answer("/hooks/clients", Answer(status=401))
    text = config_path.read_text() + (
        '\n[endpoints.mine]\nauth = { type = "bearer", token = "t" }\n'
        f'[[endpoints.mine.mappings]]\nevent = "ClientCreate"\nurl = "{receiver.url("/hooks/clients")}"\n')
    config_path.write_text(text)
    code, shown = run_in_terminal("--config", str(config_path), "fire", "ClientCreate", cwd=config_path.parent,
                                  env={"NO_COLOR": "1"}, columns=columns)
    assert code == 1, shown
    lines = screen(shown)
    # Every line fits, but for one word longer than the terminal (the config's path), never cut.
    assert all(cell_len(line) <= columns or " " not in line.strip() for line in lines), lines
    assert any(receiver.url("/hooks/clients") in line for line in lines)  # never cut
    joined = " ".join(line.strip() for line in lines)
    assert f"endpoint 'mine' was disabled: HTTP 401 Unauthorized from POST {receiver.url('/hooks/clients')}" in joined
    piped = subprocess.run([sys.executable, "-m", "moxiehook", "--config", str(config_path), "fire", "ClientCreate"],
                           capture_output=True, text=True, cwd=config_path.parent)
    assert "endpoint 'mine' is disabled, its deliveries were skipped: HTTP 401 Unauthorized from POST " \
           f"{receiver.url('/hooks/clients')}\n" in piped.stderr
