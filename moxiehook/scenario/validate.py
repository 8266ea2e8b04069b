"""``scenario validate``: every rendered step checked against its event's JSON Schema.

The catalog's schemas (``moxiehook.catalog.schema``) use a small part of JSON Schema: ``type``,
``properties``, ``required``, ``items`` and ``pattern`` (formats are spelled as patterns too),
never ``additionalProperties``, ``$ref`` or combinators. Checking that part needs no validator
library at run time; the test suite checks the same payloads with ``jsonschema`` and expects the
same verdicts. A step with a ``data`` file of an event outside the catalog has no schema: it is
reported as not checked, not as valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from moxiehook import catalog
from moxiehook.scenario.render import Rendered

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,), "null": (type(None),),
    "integer": (int, float), "number": (int, float),
}
MAX_PROBLEMS = 20  # per step: a payload of the wrong shape would list every field


@dataclass(frozen=True)
class StepCheck:
    """One step's verdict: ``problems`` (path, message), empty when valid; ``checked`` False without a schema."""

    name: str
    event: str
    checked: bool
    problems: tuple[tuple[str, str], ...] = ()


def validate(rendered: Rendered) -> list[StepCheck]:
    """Each rendered step checked against its event's schema."""
    checks = []
    for item in rendered.steps:
        event = item.step.event
        if not catalog.is_known(event):
            checks.append(StepCheck(item.step.name, event, False))
            continue
        problems = check(catalog.schema(event), item.payload)
        checks.append(StepCheck(item.step.name, event, True, tuple(problems[:MAX_PROBLEMS])))
    return checks


def check(schema: dict[str, Any], value: Any) -> list[tuple[str, str]]:
    """Where ``value`` breaks ``schema``: (path, what is wrong), in document order."""
    problems: list[tuple[str, str]] = []
    _check(schema, value, "", problems)
    return problems


def _check(node: dict[str, Any], value: Any, path: str, problems: list[tuple[str, str]]) -> None:
    where = path or "(the payload)"
    wanted = node.get("type")
    if wanted is not None and not _is(value, wanted):
        problems.append((where, f"expected {wanted}, got {_json_type(value)}"))
        return
    if isinstance(value, str) and "pattern" in node and re.search(node["pattern"], value) is None:
        problems.append((where, f"{_short(value)!r} does not match {node['pattern']}"))
    if isinstance(value, dict):
        for key in node.get("required", ()):
            if key not in value:
                problems.append((f"{path}.{key}" if path else key, "is required but missing"))
        for key, child in node.get("properties", {}).items():
            if key in value:
                _check(child, value[key], f"{path}.{key}" if path else key, problems)
    elif isinstance(value, list) and "items" in node:
        for index, item in enumerate(value):
            _check(node["items"], item, f"{path}[{index}]", problems)


def _is(value: Any, wanted: str) -> bool:
    if isinstance(value, bool):
        return wanted == "boolean"
    if wanted == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    return isinstance(value, _TYPES.get(wanted, (object,)))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {dict: "object", list: "array", str: "string", int: "integer", float: "number"}.get(type(value), "?")


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
