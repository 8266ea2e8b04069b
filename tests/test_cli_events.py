"""``events``, ``events show`` and ``events schema``: the catalog from the command line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from terminal import run_in_terminal

import moxiehook
from moxiehook import catalog

ROOT = Path(__file__).resolve().parent.parent


def test_events_table_lists_the_whole_catalog(cli) -> None:
    result = cli("events", config=None)  # needs no config file
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["event", "object", "shape", "description"]
    assert len(lines) == 29
    assert [line.split()[0] for line in lines[1:]] == [e.name for e in catalog.EVENTS]
    for line, event in zip(lines[1:], catalog.EVENTS, strict=False):
        assert event.object in line and event.description in line
        assert event.shape in line


def test_events_says_which_shapes_are_inferred_and_which_are_partial(cli) -> None:
    lines = {line.split()[0]: line for line in cli("events", config=None).stdout.splitlines()[1:]}
    assert "inferred" in lines["InvoiceSent"] and "documented" not in lines["InvoiceSent"]
    assert "documented" in lines["ClientCreate"] and "partial" not in lines["ClientCreate"]
    for name in ("ProposalSent", "AgreementSigned"):
        assert "documented, partial" in lines[name]
        assert "the rest of its shape is unknown" in lines[name]


def test_events_json(cli) -> None:
    result = cli("events", "--json", config=None)
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert len(data) == 28
    assert data[0] == {"event": "ClientCreate", "object": "Client", "description": catalog.EVENTS[0].description,
                       "source": "documented", "partial": False, "note": None}
    by_name = {row["event"]: row for row in data}
    assert by_name["PaymentReceived"]["source"] == "inferred"
    assert by_name["AgreementSent"]["partial"] is True
    assert "rest of its shape is unknown" in by_name["AgreementSent"]["note"]


@pytest.mark.parametrize("columns", [80, 120])
def test_events_table_keeps_one_line_per_event_on_a_terminal(tmp_path: Path, columns: int) -> None:
    code, output = run_in_terminal("events", cwd=tmp_path, columns=columns)
    assert code == 0
    lines = [line for line in re.sub(r"\x1b\[[0-9;]*m", "", output).splitlines() if line.strip()]
    rows = [line for line in lines if line.split()[0] in catalog.names()]
    assert [row.split()[0] for row in rows] == catalog.names()
    assert len(lines) == 1 + 28  # the header, one line each
    assert all(len(line) <= columns for line in lines)


def test_events_show_prints_the_sample_file_as_it_is(cli) -> None:
    result = cli("events", "show", "MeetingScheduled", config=None)
    assert result.exit_code == 0
    path = Path(catalog.__file__).parent / "data" / "meeting.json"
    assert result.stdout == path.read_text(encoding="utf-8")
    assert json.loads(result.stdout) == catalog.sample("MeetingScheduled")


@pytest.mark.parametrize("name", ["ClientCreate", "AgreementSigned", "PaymentReceived", "FormCompleted"])
def test_events_schema_prints_a_schema_the_sample_validates_against(cli, name: str) -> None:
    result = cli("events", "schema", name, config=None)
    assert result.exit_code == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema == catalog.schema(name)
    Draft202012Validator.check_schema(schema)
    assert Draft202012Validator(schema).is_valid(catalog.sample(name))


@pytest.mark.parametrize("command", ["show", "schema"])
@pytest.mark.parametrize(("typed", "meant"), [("ClientCreat", "ClientCreate"), ("clientcreate", "ClientCreate"),
                                              ("invoicesent", "InvoiceSent")])
def test_a_mistyped_event_gets_a_suggestion(rejected, command: str, typed: str, meant: str) -> None:
    rejected("events", command, typed, match=(f"unknown event '{typed}'", f"did you mean {meant}?"))


@pytest.mark.parametrize("command", ["show", "schema"])
def test_an_unknown_event_points_at_the_catalog(rejected, command: str) -> None:
    rejected("events", command, "Nope", match=("unknown event 'Nope'", "moxiehook events"))


def test_events_show_needs_an_event(rejected) -> None:
    rejected("events", "show", match="missing argument")


# --- the 28 names agree everywhere they are written --------------------------------------------

NAME = re.compile(r"`([A-Z][A-Za-z]+)`")


def test_the_docs_event_table_lists_the_catalog() -> None:
    page = (ROOT / "docs" / "guide" / "fire.md").read_text(encoding="utf-8")
    section = page.split("## The event catalog", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    names = [name for row in rows for name in NAME.findall(row.split("|")[1])]
    assert names == catalog.names()


def test_sample_config_lists_the_catalog_and_maps_only_catalog_events() -> None:
    text = (Path(moxiehook.__file__).parent / "sample-config.toml").read_text(encoding="utf-8")
    listed = text.split("# Built-in event types", 1)[1].split("\n\n", 1)[0]
    assert re.findall(r"\b[A-Z][a-z]+[A-Z][A-Za-z]+\b", listed) == catalog.names()
    mapped = re.findall(r'^event = "([^"]+)"', text, re.MULTILINE)
    assert mapped and all(catalog.is_known(name) for name in mapped)
