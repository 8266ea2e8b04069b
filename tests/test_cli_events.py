"""``events`` and ``events show``: the catalog from the command line."""

from __future__ import annotations

import json

from moxiehook.catalog import events as catalog


def test_events_table_lists_the_whole_catalog(cli) -> None:
    result = cli("events", config=None)  # needs no config file
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["event", "object", "description"]
    assert [line.split()[0] for line in lines[1:]] == [e.name for e in catalog.EVENTS]


def test_events_json(cli) -> None:
    result = cli("events", "--json", config=None)
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert len(data) == 16
    assert data[0] == {"event": "ClientCreate", "object": "Client", "description": catalog.EVENTS[0].description}


def test_events_show_prints_the_sample_as_json(cli) -> None:
    result = cli("events", "show", "MeetingScheduled", config=None)
    assert result.exit_code == 0
    assert json.loads(result.stdout) == catalog.sample_payload("MeetingScheduled")
    assert result.stdout.startswith("{\n  ")  # pretty, for people


def test_events_show_unknown_event(rejected) -> None:
    rejected("events", "show", "ClientCreated", match=("unknown event 'ClientCreated'", "moxiehook events"))


def test_events_show_needs_an_event(rejected) -> None:
    rejected("events", "show", match="Missing argument")
