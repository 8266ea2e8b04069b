"""JSON Schemas (draft 2020-12) of the catalog's payloads, derived from the samples.

The sample of an object is written field for field after Moxie's published sample, so it
holds everything the schema needs: every field (all required: Moxie sends them all, null or
not), each field's JSON type, nesting, array element shapes, and the formats Moxie's values
follow. Deriving the schema from the sample means a field is spelled once, and the sample
validates against its schema by construction (a test checks it with a real validator, and
checks the derived formats against the reference, field by field).

What the samples cannot say, and how the schema says it:

- A field that is ``null`` in Moxie's sample is nullable, but its real type is unknown (Moxie
  never showed a value there). Its schema allows any JSON value, and says so in its
  ``description``.
- An array that is empty in Moxie's sample has an unknown element shape: any elements.
- Objects are open (no ``additionalProperties: false``): Moxie adds fields over time, and the
  two agreement objects are known only up to the point where the published sample was cut.

Formats are recognised from the value (the way Moxie writes them): ``objectid`` (24 lowercase
hex, MongoDB's ObjectId) as a pattern; ``date-time`` (ISO-8601 UTC with milliseconds and
``Z``) and ``date`` (``YYYY-MM-DD``) as a format and a pattern, since validators do not check
formats unless asked; ``#RRGGBB`` colours and http(s) URLs likewise. A few fields hold such
values in the samples but are plain strings in Moxie's reference (``FREE_TEXT``: a client's
website as a person typed it, a project's ``hexColor``), so they get no format.

Stdlib only, computed on demand (a few microseconds per object).
"""

from __future__ import annotations

import re
from typing import Any

from moxiehook.catalog.events import get_event, sample

__all__ = ["DIALECT", "FORMATS", "FREE_TEXT", "format_of", "schema", "schema_of"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"

# name -> (pattern, JSON Schema "format" or None), in the order they are tried.
FORMATS: dict[str, tuple[str, str | None]] = {
    "objectid": (r"^[0-9a-f]{24}$", None),
    "date-time": (r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$", "date-time"),
    "date": (r"^\d{4}-\d{2}-\d{2}$", "date"),
    "color": (r"^#[0-9A-Fa-f]{6}$", None),
    "uri": (r"^https?://[^\s/?#]+[^\s]*$", "uri"),
}
# Fields (object key -> paths, "[]" for array elements) whose sample values look like a format
# but which Moxie's reference types as plain text.
FREE_TEXT: dict[str, frozenset[str]] = {
    "client": frozenset({"website"}),
    "opportunity": frozenset({"formData.website"}),
    "project": frozenset({"hexColor"}),
    "deliverable": frozenset({"project.hexColor"}),
}
_MATCHERS = [(name, re.compile(pattern)) for name, (pattern, _) in FORMATS.items()]

UNKNOWN_NULLABLE = "null in Moxie's sample: nullable, its real type unknown, so any JSON value is allowed"
UNKNOWN_ELEMENTS = "empty in Moxie's sample: its element shape is unknown"
_SOURCES = {"documented": "Moxie's help centre", "inferred": "from third-party integrations of Moxie"}


def format_of(value: str) -> str | None:
    """The name of the ``FORMATS`` entry that ``value`` is written in, or None for free text."""
    for name, matcher in _MATCHERS:
        if matcher.match(value):
            return name
    return None


def schema_of(value: Any, free_text: frozenset[str] = frozenset(), path: str = "") -> dict[str, Any]:
    """The schema of one sample value at ``path`` (no ``$schema``): what a payload must hold there.

    ``free_text``: the paths whose strings get no format whatever they look like.
    """
    if value is None:
        return {"description": UNKNOWN_NULLABLE}
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        node: dict[str, Any] = {"type": "string"}
        name = None if path in free_text else format_of(value)
        if name is not None:
            pattern, fmt = FORMATS[name]
            if fmt:
                node["format"] = fmt
            node["pattern"] = pattern
        return node
    if isinstance(value, list):
        if not value:
            return {"type": "array", "description": UNKNOWN_ELEMENTS}
        return {"type": "array", "items": schema_of(value[0], free_text, f"{path}[]")}
    if isinstance(value, dict):
        return {
            "type": "object",
            "properties": {
                key: schema_of(item, free_text, f"{path}.{key}" if path else key) for key, item in value.items()
            },
            "required": list(value),
        }
    raise TypeError(f"not a JSON value: {type(value).__name__}")  # the samples are parsed JSON


def schema(event: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``event``'s payload, a fresh dict.

    Raises:
        NotFoundError: ``event`` is not in the catalog.
    """
    info = get_event(event)
    partial = " Moxie's published sample was cut short: fields after the cut are unknown." if info.partial else ""
    return {
        "$schema": DIALECT,
        "title": f"{info.name}: {info.object}",
        "description": f"{info.description} Shape {info.source} ({_SOURCES[info.source]}).{partial}",
        **schema_of(sample(event), FREE_TEXT.get(info.object_key, frozenset())),
    }
