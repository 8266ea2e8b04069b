"""References inside scenario values: ``${STEP:PATH}``, ``${vars:NAME}``, ``${oid}``, ``${now}``.

A string is read once into text pieces and references (``parse_template``). A string that is
exactly one reference takes that value with its JSON type (``"${vars:rate}"`` is the number
150); references inside longer strings are written into it as text (a string as it is,
anything else as compact JSON). ``$${`` is a literal ``${``. A ``${`` with no ``}`` after it, an
empty reference, a path that is not a ``fire --set`` path, or a name that is none of the four
kinds is a ``ScenarioError`` naming the step and key where it was written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from moxiehook import catalog
from moxiehook.errors import UsageError
from moxiehook.scenario.model import ScenarioError
from moxiehook.suggest import did_you_mean

KINDS = ("oid", "now")
MAX_REFERENCE = 512  # characters between ${ and }: longer is a missing } swallowing the text


@dataclass(frozen=True)
class Ref:
    """One ``${…}``: ``kind`` is ``step``, ``var``, ``oid`` or ``now``."""

    kind: str
    name: str = ""  # the step or var named
    path: tuple[str | int, ...] = ()
    text: str = ""  # as written, ``${client:id}``


Template = tuple[str | Ref, ...]


def parse_template(text: str, where: str) -> Template:
    """``"Invoice for ${client:name}"`` -> ("Invoice for ", Ref("step", "client", ("name",)))."""
    if "$" not in text:
        return (text,)
    pieces: list[str | Ref] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$${", i):
            literal.append("${")
            i += 3
            continue
        if not text.startswith("${", i):
            literal.append(text[i])
            i += 1
            continue
        end = text.find("}", i + 2)
        if end < 0 or end - i > MAX_REFERENCE:
            raise ScenarioError(f"{where}: {_cut(text[i:])!r} starts a reference with '${{' but has no closing "
                                "'}' (write '$${' for a literal '${')")
        if literal:
            pieces.append("".join(literal))
            literal = []
        pieces.append(parse_reference(text[i:end + 1], where))
        i = end + 1
    if literal:
        pieces.append("".join(literal))
    return tuple(pieces)


def parse_reference(text: str, where: str) -> Ref:
    """One ``${…}`` (braces included)."""
    inner = text[2:-1].strip()
    if inner in KINDS:
        return Ref(inner, text=text)
    name, sep, path_text = inner.partition(":")
    name, path_text = name.strip(), path_text.strip()
    if not sep:
        hint = did_you_mean(inner, KINDS, quote=True)
        raise ScenarioError(f"{where}: {text} is not a reference{hint}: use ${{STEP:PATH}}, ${{vars:NAME}}, "
                            "${oid} or ${now} (and '$${' for a literal '${')")
    if not name:
        raise ScenarioError(f"{where}: {text} names no step before ':' (e.g. ${{client:id}})")
    if not path_text:
        raise ScenarioError(f"{where}: {text} names no field after ':' (e.g. ${{{name}:id}})")
    if name == "vars":
        return Ref("var", path_text, text=text)
    try:
        path = catalog.parse_path(path_text, path_text)
    except UsageError as exc:
        reason = str(exc).split(": ", 1)[-1]
        raise ScenarioError(f"{where}: {text}: {reason}") from None
    return Ref("step", name, path, text)


def references(value: Any, where: str) -> list[Ref]:
    """Every reference in ``value`` (strings inside tables and arrays too)."""
    found: list[Ref] = []
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            found.extend(p for p in parse_template(item, where) if isinstance(p, Ref))
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


def as_text(value: Any) -> str:
    """How a referenced value reads inside a longer string: a string as is, the rest as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _cut(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
