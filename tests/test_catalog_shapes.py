"""The catalog's samples and schemas, checked field for field against Moxie's published shapes.

The reference is a vendored copy of MOXIE-EVENTS.md (tests/data/, so this runs on a clean clone):
under each ``### <object> — EventA / EventB ...`` heading, one line per field path,
``- `a.b[].c`: type``, where ``[]`` stands for the elements of an array and the type is one of
``null``, ``boolean``, ``integer``, ``number``, ``string``, ``string(FORMAT)`` (objectid,
datetime, date, color, url), ``array`` or ``object``, with an optional note in parentheses.

The tests walk the reference mechanically, so a field that goes missing from a sample, changes
type or nesting, or loses its elements fails here; and so does a field that the reference lacks.
A sample matches its object when:
- every reference path exists in it, with a compatible type: ``null`` -> the value is null;
  ``integer`` -> an int (not a bool); ``number`` -> an int or a float; ``string(FORMAT)`` -> a
  string in that format; ``array`` -> a list (element paths are checked in *every* element, and an
  array whose element fields the reference lists must have at least one element); ``object`` -> a
  dict;
- it has no path that the reference lacks (an array the reference gives no element fields for
  must be empty; an object it gives no fields for must be ``{}``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from moxiehook import catalog

REFERENCE = Path(__file__).parent / "data" / "MOXIE-EVENTS.md"
DATA = Path(catalog.__file__).parent / "data"

# --- parsing the reference ---------------------------------------------------------------------

# "### Agreement V2 — AgreementSent / AgreementViewed / AgreementSigned  (TRUNCATED ...)"
# The separator may be an em dash, an en dash or a spaced hyphen.
_HEADING = re.compile(r"^###\s+(?P<title>.+?)\s+(?:—|–|--|-)\s+(?P<rest>.+?)\s*$")
_FIELD = re.compile(r"^\s*[-*+]\s+`(?P<path>[^`]+)`\s*:\s*(?P<type>.+?)\s*$")
_EVENT_NAME = re.compile(r"\b[A-Z][A-Za-z0-9]+\b")
_OTHER_HEADING = re.compile(r"^#{1,3}\s")


@dataclass
class Section:
    """One object of the reference: its heading, event names and field lines."""

    title: str  # the heading's text before the dash, e.g. "Client"
    events: list[str]  # e.g. ["ClientCreate", "ClientUpdate", "ClientDelete"]
    truncated: bool  # the heading says the source was cut short
    fields: list[tuple[str, str]] = field(default_factory=list)  # (path, type text)


def parse_sections(text: str) -> list[Section]:
    """Every ``### object — events`` section of the reference, in file order."""
    sections: list[Section] = []
    current: Section | None = None
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            rest = heading["rest"]
            names_part = rest.split("(", 1)[0]  # events come before any "(note)"
            current = Section(
                title=heading["title"].strip(),
                events=_EVENT_NAME.findall(names_part),
                truncated="truncated" in rest.lower(),
            )
            sections.append(current)
            continue
        if _OTHER_HEADING.match(line):
            current = None  # a heading of another form ends the section
            continue
        match = _FIELD.match(line)
        if match and current is not None:
            current.fields.append((match["path"].strip(), match["type"].strip()))
    return [s for s in sections if s.fields]


def parse_event_table(text: str) -> list[tuple[str, str]]:
    """``(event name, source text)`` of the reference's ``X-Event-Type`` table, in order."""
    rows: list[tuple[str, str]] = []
    in_table = False
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and cells and "X-Event-Type" in cells[0]:
            in_table = True
            continue
        if in_table:
            if not line.lstrip().startswith("|"):
                break
            if set(cells[0]) <= set("-: "):
                continue  # the |---| line
            source = cells[-1] if len(cells) > 2 else ""
            rows.extend((name, source) for name in _EVENT_NAME.findall(cells[0]))
    return rows


# --- types ---------------------------------------------------------------------------------

_TYPE = re.compile(r"^(?P<base>[a-z]+)\s*(?:\(\s*(?P<fmt>[a-z-]+)\s*\))?", re.IGNORECASE)
_OBJECTID = re.compile(r"^[0-9a-f]{24}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")
BASE_TYPES = {"null", "boolean", "integer", "number", "string", "array", "object"}


def split_type(type_text: str) -> tuple[str, str | None]:
    """Base type and format: ``"string(objectid)"`` -> ``("string", "objectid")``.

    A note in parentheses is not a format: ``"string (seen: 'X')"`` -> ``("string", None)``.
    """
    match = _TYPE.match(type_text.strip())
    if not match:
        return type_text.strip().lower(), None
    fmt = match["fmt"].lower() if match["fmt"] else None
    return match["base"].lower(), fmt


def _format_problem(value: str, fmt: str) -> str | None:
    if fmt == "objectid":
        return None if _OBJECTID.match(value) else "not 24 lowercase hex characters"
    if fmt == "datetime":
        if not _DATETIME.match(value):
            return "not ISO-8601 UTC with milliseconds and Z (YYYY-MM-DDTHH:MM:SS.mmmZ)"
        try:
            datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")
        except ValueError:
            return "not a real calendar time"
        return None
    if fmt == "date":
        if not _DATE.match(value):
            return "not YYYY-MM-DD"
        try:
            date.fromisoformat(value)
        except ValueError:
            return "not a real calendar date"
        return None
    if fmt == "color":
        return None if _COLOR.match(value) else "not #RRGGBB"
    if fmt == "url":
        parts = urlsplit(value)
        return None if parts.scheme in ("http", "https") and parts.netloc else "not an http(s) URL"
    return f"unknown format {fmt!r} in the reference"


def type_problem(value: Any, type_text: str) -> str | None:
    """Why ``value`` does not fit the reference type, or None when it does."""
    base, fmt = split_type(type_text)
    got = _json_type(value)
    if base not in BASE_TYPES:
        return f"unknown reference type {type_text!r}"
    if base == "null":
        return None if value is None else f"expected null, got {got}"
    if base == "boolean":
        ok = isinstance(value, bool)
    elif base == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif base == "string":
        ok = isinstance(value, str)
    elif base == "array":
        ok = isinstance(value, list)
    else:
        ok = isinstance(value, dict)
    if not ok:
        expected = f"{base}({fmt})" if fmt else base
        return f"expected {expected}, got {got}"
    if base == "string" and fmt:
        problem = _format_problem(value, fmt)
        if problem:
            return f"expected string({fmt}): {value!r} is {problem}"
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# --- checking a sample -----------------------------------------------------------------------


@dataclass
class _Node:
    type_text: str | None = None  # None: an intermediate the reference does not list itself
    ref_path: str = ""
    children: dict[str, _Node] = field(default_factory=dict)
    element: _Node | None = None  # the "[]" node of an array


def _split_path(path: str) -> list[str]:
    """``"a.b[].c"`` -> ``["a", "b", "[]", "c"]``."""
    tokens: list[str] = []
    for part in path.split("."):
        count = 0
        while part.endswith("[]"):
            part = part[:-2]
            count += 1
        if part:
            tokens.append(part)
        tokens.extend(["[]"] * count)
    return tokens


def _build_tree(paths: list[tuple[str, str]]) -> tuple[_Node, list[str]]:
    root = _Node(type_text="object")
    problems: list[str] = []
    for path, type_text in paths:
        node = root
        walked = ""
        for token in _split_path(path):
            if token == "[]":
                walked += "[]"
                if node.element is None:
                    node.element = _Node(ref_path=walked)
                node = node.element
            else:
                walked = f"{walked}.{token}" if walked else token
                node = node.children.setdefault(token, _Node(ref_path=walked))
        if node.type_text is not None:
            problems.append(f"reference lists {path!r} twice")
        node.type_text = type_text
    return root, problems


def _check_node(value: Any, node: _Node, where: str, out: list[str]) -> None:
    if node.type_text is not None:
        problem = type_problem(value, node.type_text)
        if problem:
            out.append(f"{where}: {problem}")
            return
    elif node.element is not None and not isinstance(value, list):
        out.append(f"{where}: expected array, got {_json_type(value)}")
        return
    elif node.children and not isinstance(value, dict):
        out.append(f"{where}: expected object, got {_json_type(value)}")
        return

    if isinstance(value, dict):
        for key, child in node.children.items():
            child_where = f"{where}.{key}" if where else key
            if key not in value:
                out.append(f"{child_where}: missing (reference: {child.type_text})")
            else:
                _check_node(value[key], child, child_where, out)
        for key in value:
            if key not in node.children:
                child_where = f"{where}.{key}" if where else key
                out.append(f"{child_where}: not in the reference")
    elif isinstance(value, list):
        if node.element is None:
            if value:
                out.append(
                    f"{where}[]: not in the reference (it lists no element fields, "
                    "so the array must stay empty)"
                )
            return
        if not value:
            out.append(f"{where}: empty, but the reference lists element fields ({where}[]...)")
        for index, item in enumerate(value):
            _check_node(item, node.element, f"{where}[{index}]", out)


def check(sample: Any, paths: list[tuple[str, str]]) -> list[str]:
    """Every mismatch between ``sample`` and its object's reference ``paths`` (empty: a match)."""
    root, problems = _build_tree(paths)
    if not isinstance(sample, dict):
        return [*problems, f"(root): expected object, got {_json_type(sample)}"]
    _check_node(sample, root, "", problems)
    return problems


# --- the tests ---------------------------------------------------------------------------------

TEXT = REFERENCE.read_text(encoding="utf-8")
SECTIONS = parse_sections(TEXT)
SECTION_OF = {name: section for section in SECTIONS for name in section.events}
TABLE = parse_event_table(TEXT)
NAMES = [event.name for event in catalog.EVENTS]


def test_the_reference_parses_into_its_10_objects_and_28_events() -> None:
    """The walk below sees the reference at all (a parser that finds nothing would pass them all)."""
    assert len(SECTIONS) == 10
    assert sum(len(s.events) for s in SECTIONS) == 28
    assert sum(len(s.fields) for s in SECTIONS) > 600
    assert [name for name, _ in TABLE] == [name for s in SECTIONS for name in s.events] or len(TABLE) == 28
    assert sorted(s.title for s in SECTIONS if s.truncated) == ["Agreement V1 (legacy proposals)", "Agreement V2"]


def test_the_catalog_lists_the_reference_events_in_its_order() -> None:
    assert [name for name, _ in TABLE] == NAMES


@pytest.mark.parametrize("event", catalog.EVENTS, ids=lambda e: e.name)
def test_documented_inferred_and_partial_follow_the_reference(event: catalog.EventType) -> None:
    documented = "help centre" in dict(TABLE)[event.name].lower()
    assert event.source == ("documented" if documented else "inferred")
    assert event.partial is SECTION_OF[event.name].truncated
    assert event.description.strip() and "\n" not in event.description


def test_the_events_of_one_reference_object_share_one_sample_file() -> None:
    keys = {}
    for section in SECTIONS:
        objects = {catalog.get_event(name).object_key for name in section.events}
        assert len(objects) == 1, (section.title, objects)
        keys[section.title] = objects.pop()
    assert len(set(keys.values())) == 10
    assert sorted(p.stem for p in DATA.glob("*.json")) == sorted(keys.values())


@pytest.mark.parametrize("name", NAMES)
def test_every_reference_field_is_in_the_sample_with_its_type(name: str) -> None:
    """Field for field: every path, the same JSON type and format, the same nesting, nothing extra."""
    assert check(catalog.sample(name), SECTION_OF[name].fields) == []


def test_the_walk_sees_a_missing_field_a_wrong_type_an_extra_field_and_an_empty_array() -> None:
    fields = SECTION_OF["ClientCreate"].fields
    client = catalog.sample("ClientCreate")
    del client["paymentTerms"]["whoPaysCardFees"]
    client["contacts"][0]["role"] = "Owner"  # null in Moxie's sample
    client["hourlyAmount"] = "125"
    client["nickname"] = "extra"
    problems = check(client, fields)
    assert any(p.startswith("paymentTerms.whoPaysCardFees: missing") for p in problems)
    assert any(p.startswith("contacts[0].role: expected null") for p in problems)
    assert any(p.startswith("hourlyAmount: expected integer") for p in problems)
    assert any(p.startswith("nickname: not in the reference") for p in problems)
    client = catalog.sample("ClientCreate")
    client["contacts"] = []
    client["id"] = "6543A1F2C9E77B2D4F1A0B3C"
    problems = check(client, fields)
    assert any(p.startswith("contacts: empty") for p in problems)
    assert any(p.startswith("id: expected string(objectid)") for p in problems)


# The reference's format names -> the catalog schema's (moxiehook.catalog.schema.FORMATS).
SCHEMA_FORMAT = {"objectid": "objectid", "datetime": "date-time", "date": "date", "color": "color", "url": "uri"}


def _schema_at(node: dict[str, Any], path: str) -> dict[str, Any]:
    for token in _split_path(path):
        node = node["items"] if token == "[]" else node["properties"][token]
    return node


@pytest.mark.parametrize("name", NAMES)
def test_the_schema_has_the_reference_type_format_and_nullability_of_every_field(name: str) -> None:
    """The schema is derived from the sample; this ties what it derives to the reference."""
    from moxiehook.catalog.schema import FORMATS

    schema = catalog.schema(name)
    patterns = {pattern: fmt for fmt, (pattern, _) in FORMATS.items()}
    json_type = {"boolean": "boolean", "integer": "integer", "number": "number", "string": "string",
                 "array": "array", "object": "object"}
    for path, type_text in SECTION_OF[name].fields:
        base, fmt = split_type(type_text)
        node = _schema_at(schema, path)
        if base == "null":
            assert "type" not in node, path  # nullable, real type unknown: anything goes
            continue
        assert node["type"] == json_type[base], path
        got = patterns.get(node.get("pattern", ""))
        assert got == (SCHEMA_FORMAT[fmt] if fmt else None), (path, type_text, node)
