"""The payload of ``fire`` and ``test``: ``--data``, ``--set`` overrides, ``--count`` copies.

Pure data handling (no network): read a JSON document from a file or stdin,
override fields by path (``paymentTerms.paymentDays``, ``contacts[0].email``,
``contacts.0.email``), and produce copies with fresh ids lazily, so
``fire --count 100000`` never holds more than the copies in flight.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

from moxiehook import ids
from moxiehook.errors import DataError, UsageError

# Moxie ids look like MongoDB ObjectIds: 24 lower-case hex characters.
_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")


def read_data(source: str, stdin: IO[bytes] | None = None) -> Any:
    """The JSON document in file ``source``, or on stdin when ``source`` is ``-``.

    Raises ``DataError`` when the file is missing or unreadable, or holds no
    valid UTF-8 JSON, or JSON that cannot be sent as it is (see ``strict_json``),
    so that nothing is sent with a half-understood payload.
    """
    where = "--data -" if source == "-" else f"--data {source}"
    try:
        raw = (stdin or sys.stdin.buffer).read() if source == "-" else Path(source).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{where}: a folder, not a JSON file") from None
    except OSError as exc:
        raise DataError(f"{where}: cannot read it: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")  # tolerate a BOM written by some editors
    except UnicodeDecodeError:
        raise DataError(f"{where}: not UTF-8 text") from None
    return strict_loads(text, where)


class _NotJson:
    """A number JSON cannot carry, as written (``1e999``, ``NaN``), kept in place until ``check_json`` finds it."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _number(text: str) -> Any:
    value = float(text)
    return value if math.isfinite(value) else _NotJson(text)


class DuplicateKey(ValueError):
    """An object of a document the user wrote names one key twice."""


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for key, child in pairs:
        if key in value:
            raise DuplicateKey(f"an object names the key {key!r} twice (a duplicate key: which value would be sent?)")
        value[key] = child
    return value


def strict_loads(text: str, where: str, unique_keys: bool = True) -> Any:
    """``text`` as JSON under RFC 8259, or ``DataError`` naming ``where`` and the place in the document.

    Python's ``json`` reads ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON) and
    ``1e999`` (JSON, but beyond a double: ``inf``), and would write them back as
    bare ``Infinity``, which receivers reject and the log's readers refuse. Lone
    UTF-16 surrogates (``"\\ud800"``) have no UTF-8 form. All are refused here.
    With ``unique_keys`` (a document the user wrote), an object naming a key twice
    is refused too: Python keeps the last value, other readers the first, and one
    of the two would be dropped without a word.
    """
    hook = _unique_pairs if unique_keys else None
    try:
        value = json.loads(text, parse_constant=_NotJson, parse_float=_number, object_pairs_hook=hook)
    except DuplicateKey as exc:
        raise DataError(f"{where}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise DataError(f"{where}: nested too deeply") from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise DataError(f"{where}: not valid JSON: {exc}") from None
    check_json(value, where)
    return value


def check_json(value: Any, where: str, root: str = "the payload") -> None:
    """Raise ``DataError`` when ``value`` holds what strict JSON in UTF-8 cannot carry; name the place.

    Refused: a non-finite float (``inf``, ``nan``, and the numbers ``strict_loads``
    kept as written), a string or key with a lone surrogate, and anything that is
    not a JSON type. Iterative: a deep document does not exhaust the stack.
    """
    pending: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while pending:
        node, path = pending.pop()
        if isinstance(node, dict):
            for key, child in node.items():
                if not isinstance(key, str):
                    raise DataError(f"{where}: {_place(path, root)} has a key {key!r} that is not a string")
                if _has_surrogate(key):
                    raise DataError(f"{where}: {_place(path, root)} has a key with a lone surrogate ({ascii(key)}), "
                                    "which UTF-8 cannot carry")
                pending.append((child, (*path, key)))
        elif isinstance(node, list | tuple):
            pending.extend((child, (*path, index)) for index, child in enumerate(node))
        elif isinstance(node, str):
            if _has_surrogate(node):
                raise DataError(f"{where}: {_place(path, root)} holds a lone surrogate ({ascii(node)[:40]}), "
                                "which UTF-8 cannot carry")
        elif isinstance(node, _NotJson):
            raise DataError(f"{where}: {_place(path, root)} is {node.text}: not JSON "
                            "(a number beyond a double, or not a number)")
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise DataError(f"{where}: {_place(path, root)} is {node!r}: not JSON (not a finite number)")
        elif node is not None and not isinstance(node, bool | int):
            raise DataError(f"{where}: {_place(path, root)} is {type(node).__name__}, not a JSON value")


def _place(path: Sequence[str | int], root: str) -> str:
    return path_text(path) or root


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class Assignment(NamedTuple):
    """One ``--set KEY=VALUE``: the path as keys and indexes, the value, and the text as typed."""

    path: tuple[str | int, ...]  # "contacts[0].email" -> ("contacts", 0, "email")
    value: Any
    text: str


class PathError(DataError):
    """A ``--set`` path that does not fit the payload (exit 2, naming the path).

    ``too_short`` tells that only an array was too short for an index, so a varied copy
    with a longer array would fit (``fire --vary`` draws that copy again).
    """

    def __init__(self, message: str, too_short: bool = False, where: str = "") -> None:
        super().__init__(message)
        self.too_short = too_short
        self.where = where  # the path up to the index that was past the end (when too_short)


# One path segment: a key, then any number of [N] indexes; "[0]" alone indexes the value itself.
_SEGMENT = re.compile(r"(?P<key>[^.\[\]]*)(?P<indexes>(?:\[\d+\])*)")


def parse_path(key: str, text: str) -> tuple[str | int, ...]:
    """``contacts[0].email`` -> ("contacts", 0, "email"); ``contacts.0.email`` -> ("contacts", "0", "email").

    A digit key (``.0.``) indexes an array and names a key in an object, whichever the payload
    has there; a bracketed index (``[0]``) must meet an array.
    """
    path: list[str | int] = []
    for part in key.split("."):
        match = _SEGMENT.fullmatch(part)
        if match is None or not part:
            if not part:
                raise UsageError(f"--set {text!r}: the key has an empty part")
            raise UsageError(f"--set {text!r}: {part!r} is not a key or key[N] (e.g. contacts[0].email=…)")
        if match["key"]:
            path.append(match["key"])
        path.extend(int(index) for index in re.findall(r"\d+", match["indexes"]))
    return tuple(path)


def parse_assignment(text: str, prefix: str = "") -> Assignment:
    """``a.b=1`` -> path ("a", "b") and value 1: the value is JSON when it parses, else the string.

    ``prefix``: what stood before ``text`` in the argument as typed (a scenario's ``STEP:``), so
    that messages quote the whole argument.

    So ``--set archive=true`` gives a boolean, ``--set name=Acme`` a string, and
    ``--set 'name="42"'`` the string "42". A value that is JSON but holds a
    number JSON cannot carry (``1e999``, ``NaN``, ``Infinity``, also inside an
    array) is a ``DataError``: taking it for a string would send what the user
    did not mean, and sending it as a number is not JSON.
    """
    key, sep, raw = text.partition("=")
    if not sep:
        raise UsageError(f"--set {text!r} must look like KEY=VALUE (e.g. --set name=Acme)")
    where = f"--set {prefix + text!r}"
    if _has_surrogate(text):  # bytes that are not UTF-8 in the argument (Python's surrogateescape)
        raise DataError(f"{where}: not UTF-8 text")
    path = parse_path(key, text)
    try:
        value = json.loads(raw, parse_constant=_NotJson, parse_float=_number, object_pairs_hook=_unique_pairs)
    except DuplicateKey as exc:
        raise DataError(f"{where}: {exc}") from None
    except json.JSONDecodeError:  # not JSON: the text itself
        return Assignment(path, raw, text)
    except (ValueError, RecursionError) as exc:
        # JSON that Python will not read (an integer of thousands of digits, nesting past the
        # stack): sending it as a string would change its type behind the user's back.
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise DataError(f"{where}: JSON that cannot be read ({why}); to send it as text, quote it: "
                        f"--set '{key}=\"…\"'") from None
    try:
        check_json(value, where, "the value")
    except DataError as exc:
        if _has_surrogate(raw) or "\\u" in raw.lower():  # a lone surrogate is no text either: no quoting helps
            raise
        raise DataError(f"{exc}; to send it as text, quote it: --set '{prefix}{key}=\"{raw}\"'") from None
    return Assignment(path, value, text)


def path_text(path: Sequence[str | int]) -> str:
    """("contacts", 0, "email") -> ``contacts[0].email``: how error messages name a path."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


def apply_overrides(payload: Any, assignments: Iterable[str | Assignment]) -> Any:
    """``payload`` with each ``KEY=VALUE`` set; ``payload`` itself is left as it was.

    Only the objects and arrays on each path are copied (the rest is shared), so this is cheap
    enough to run on every varied copy. A missing key is created, in an object at any depth
    (missing intermediate objects too); an array is never extended. A path that does not fit
    the payload (an index past an array's end, a key under a string or a null, an index into
    an object) raises ``PathError`` naming it, and nothing is set.
    """
    for item in assignments:
        assignment = parse_assignment(item) if isinstance(item, str) else item
        payload = _set(payload, assignment, 0)
    return payload


def _set(node: Any, assignment: Assignment, depth: int) -> Any:
    """A copy of ``node`` with ``assignment.path[depth:]`` set to its value."""
    path = assignment.path
    if depth == len(path):
        return assignment.value
    step = path[depth]
    if isinstance(node, list):
        index = _index(node, step, assignment, depth)
        items = list(node)
        items[index] = _set(node[index], assignment, depth + 1)
        return items
    if isinstance(node, dict) and isinstance(step, str):
        if step in node:
            child = node[step]
        elif depth + 1 < len(path):  # a missing intermediate object is created, unless an index follows
            if isinstance(path[depth + 1], int) or str(path[depth + 1]).isdigit():
                where = path_text(path[: depth + 1])
                raise PathError(f"--set {assignment.text!r}: {where} is not in the payload, so it has no elements")
            child = {}
        else:
            child = None
        copied = dict(node)
        copied[step] = _set(child, assignment, depth + 1)
        return copied
    raise _misfit(node, assignment, depth)


def _index(items: list[Any], step: str | int, assignment: Assignment, depth: int) -> int:
    if isinstance(step, str) and not step.isdigit():
        raise _misfit(items, assignment, depth)
    index = int(step)
    if index >= len(items):
        where = path_text(assignment.path[: depth + 1])
        size = f"{len(items)} element{'s' if len(items) != 1 else ''}"
        raise PathError(f"--set {assignment.text!r}: {where} is past the end (the array has {size})",
                        too_short=True, where=where)
    return index


def _misfit(node: Any, assignment: Assignment, depth: int) -> PathError:
    """The error for a step that meets the wrong kind of value (a key under a string, ...)."""
    where = path_text(assignment.path[:depth]) or "the payload"
    kind = _KINDS.get(type(node), "a value") if node is not None else "null"
    step = assignment.path[depth]
    wanted = "an array" if isinstance(step, int) else "an object"
    hint = f": set the whole value instead (--set '{where}={{...}}')" if node is None and depth else ""
    return PathError(f"--set {assignment.text!r}: {where} is {kind}, not {wanted}{hint}")


_KINDS = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}


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
