"""The payload of ``fire`` and ``test``: ``--data``, ``--set`` overrides, ``--count`` copies.

Pure data handling (no network): read a JSON document from a file or stdin,
override fields by dotted path, and produce copies with fresh ids lazily, so
``fire --count 100000`` never holds more than the copies in flight.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from moxiehook import ids
from moxiehook.errors import DataError, UsageError

# Moxie ids look like MongoDB ObjectIds: 24 lower-case hex characters.
_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")


def read_data(source: str, stdin: IO[bytes] | None = None) -> Any:
    """The JSON document in file ``source``, or on stdin when ``source`` is ``-``.

    Raises ``DataError`` when the file is missing or unreadable, or holds no
    valid UTF-8 JSON, so that nothing is sent with a half-understood payload.
    """
    where = "stdin" if source == "-" else source
    try:
        if source == "-":
            raw = (stdin or sys.stdin.buffer).read()
        else:
            raw = Path(source).read_bytes()
    except FileNotFoundError:
        raise DataError(f"--data: no such file: {source}") from None
    except IsADirectoryError:
        raise DataError(f"--data: {source} is a folder, not a JSON file") from None
    except OSError as exc:
        raise DataError(f"--data: cannot read {where}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")  # tolerate a BOM written by some editors
    except UnicodeDecodeError:
        raise DataError(f"--data: {where} is not UTF-8 text") from None
    try:
        return json.loads(text, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        raise DataError(f"--data: {where} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:  # NaN / Infinity, refused by _not_json
        raise DataError(f"--data: {where} is not valid JSON: {exc}") from None
    except RecursionError:
        raise DataError(f"--data: {where} is nested too deeply") from None


def _not_json(token: str) -> Any:
    """``json`` accepts NaN and Infinity, which are not JSON: a receiver would reject the body."""
    raise ValueError(f"{token} is not a JSON value")


def parse_assignment(text: str) -> tuple[list[str], Any]:
    """``a.b=1`` → (``["a", "b"]``, 1): the value is JSON when it parses, else the string.

    So ``--set archive=true`` gives a boolean, ``--set name=Acme`` a string, and
    ``--set 'name="42"'`` the string "42".
    """
    key, sep, raw = text.partition("=")
    if not sep:
        raise UsageError(f"--set {text!r} must look like KEY=VALUE (e.g. --set name=Acme)")
    path = key.split(".")
    if any(not part for part in path):
        raise UsageError(f"--set {text!r}: the key has an empty part")
    try:
        value = json.loads(raw, parse_constant=_not_json)
    except (ValueError, RecursionError):  # not JSON (NaN, Infinity included): the text itself
        value = raw
    return path, value


def apply_overrides(payload: Any, assignments: Iterable[str]) -> Any:
    """Apply each ``KEY=VALUE`` to ``payload`` in place (and return it).

    Missing intermediate objects are created; a path that runs through a value
    that is not an object (``--set name.first=A`` when ``name`` is a string) is a
    ``DataError`` rather than a silent replacement.
    """
    for text in assignments:
        path, value = parse_assignment(text)
        if not isinstance(payload, dict):
            raise DataError(f"--set {text!r}: the payload is not a JSON object there")
        target = payload
        for depth, part in enumerate(path[:-1]):
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                through = ".".join(path[: depth + 1])
                raise DataError(f"--set {text!r}: {through} is not an object")
        target[path[-1]] = value
    return payload


def fresh_id_like(old: Any) -> str:
    """A new id of the same shape: 24 hex when ``old`` was 24 hex, else a ULID."""
    if isinstance(old, str) and _OBJECT_ID.match(old):
        fresh = os.urandom(12).hex()
        return fresh if old.islower() or old.isdigit() else fresh.upper()
    return ids.ulid()


def copies(payload: Any, count: int) -> Iterator[Any]:
    """``count`` payloads, made one at a time as the caller asks for them.

    With ``count`` > 1 and a top-level ``id``, each copy is a shallow copy with
    a fresh id (nested values are shared: the engine only reads them). With
    ``count`` = 1 the payload is yielded as is: the user asked for that payload.
    """
    if count < 1:
        raise UsageError(f"--count must be at least 1, got {count}")
    if count == 1 or not (isinstance(payload, dict) and "id" in payload):
        for _ in range(count):
            yield payload
        return
    old_id = payload["id"]
    for _ in range(count):
        copy = dict(payload)
        copy["id"] = fresh_id_like(old_id)
        yield copy
