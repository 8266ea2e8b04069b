"""What the inspector says about one body: its JSON, the schema verdict, drift, diffs, exports.

Everything here is a pure function of a body (and the catalog), so the API, the page and the
tests agree on it. Schemas are checked with ``jsonschema`` (a well-kept validator, imported on
first use, by the inspector only): moxiehook's own schema code derives the schema, a validator
someone else keeps judges the body against it. Pointers are RFC 6901 (``/contacts/0/email``,
``~0`` for ``~`` and ``~1`` for ``/``), counted from the body's root (``""``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shlex
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moxiehook import catalog

# At most this many schema errors, drift pointers and diff changes are listed for one body:
# a hostile body of 100,000 wrong fields must not make a 50 MB answer.
MAX_LISTED = 200
# Headers that are a property of one connection (or recomputed when sending), never exported.
_HOP_HEADERS = frozenset({"host", "content-length", "connection", "transfer-encoding", "keep-alive",
                          "accept-encoding", "expect", "te", "upgrade", "proxy-connection"})
# A signature is valid for one timestamp only: an export that repeats it would be refused.
SIGNATURE_HEADERS = frozenset({"webhook-id", "webhook-timestamp", "webhook-signature"})
MASK = "***"
# Keys whose values differ on every delivery of the same event: ids and timestamps.
_VOLATILE_KEYS = re.compile(r"^(?:_?id|uuid|.*(?:Id|_id|At|_at|Date|_date|Time|_time)|created|updated|"
                            r"modified|timestamp|date|time)$")
_VOLATILE_VALUE = re.compile(r"^(?:[0-9a-f]{24}|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?|"
                             r"(?:evt|dlv)_[0-9A-Z]{26})$")


def pointer(parts: Any) -> str:
    """The RFC 6901 pointer of a path of keys and indexes: ``("a/b", 0)`` → ``/a~1b/0``."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


class _NotJson(ValueError):
    def __init__(self, message: str, literal: str) -> None:
        super().__init__(message)
        self.literal = literal


def _no_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not allowed in JSON", name)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotJson(f"the number {text[:40]} is too large for JSON (it would be Infinity)", text)
    return value


# Python refuses to turn longer digit strings into an int (a guard against quadratic work), so a
# body holding one cannot be read here: it is reported at its place, as a number that is too long.
MAX_INT_DIGITS = 4300


def _whole(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _NotJson(f"the number {text[:20]}… has {len(text.lstrip('-')):,} digits: more than "
                       f"{MAX_INT_DIGITS:,}, which this reader cannot take", text)
    return int(text)


def _bare_position(text: str, literal: str) -> int:
    """Where ``literal`` first stands as a value of its own: outside every string, not inside a longer number.

    The parser reads left to right and stops at the first number or word it refuses, so this is the place
    it stopped at (its own error carries no position).
    """
    in_string = escaped = False
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif (text.startswith(literal, index) and (index == 0 or text[index - 1] not in _NUMBER_CHARS)
              and text[index + len(literal):index + len(literal) + 1] not in _NUMBER_CHARS):
            return index
    return 0


_NUMBER_CHARS = frozenset("0123456789+-.eE")  # a literal next to one of these is part of a longer number


@dataclass(frozen=True)
class Parsed:
    """A body read as JSON: ``ok`` and its ``value``, or the syntax error's place."""

    ok: bool
    value: Any = None
    error: dict[str, Any] | None = None  # {"message", "line", "column"}, both from 1


def parse_body(text: str) -> Parsed:
    """Parse strict JSON (no ``NaN``/``Infinity``, RFC 8259); locate the first error.

    An empty body is not JSON either: Moxie always sends an object, so the page says so.
    """
    if not text.strip():
        return Parsed(False, error={"message": "empty body: no JSON value", "line": 1, "column": 1})
    try:
        return Parsed(True, json.loads(text, parse_constant=_no_constant, parse_float=_finite, parse_int=_whole))
    except json.JSONDecodeError as exc:
        return Parsed(False, error={"message": exc.msg, "line": exc.lineno, "column": exc.colno})
    except _NotJson as exc:  # NaN, Infinity, 1e999, 5,000 digits: json's own error has no position
        start = _bare_position(text, exc.literal)
        line = text.count("\n", 0, start) + 1
        column = start - (text.rfind("\n", 0, start) + 1) + 1
        return Parsed(False, error={"message": str(exc), "line": line, "column": column})
    except RecursionError:
        return Parsed(False, error={"message": "nested too deeply to read", "line": 1, "column": 1})


# ---------------------------------------------------------------------------
# schema verdict and drift

_validators: dict[str, Any] = {}
_validators_lock = threading.Lock()


def _validator(event: str) -> Any:
    """A draft 2020-12 validator of ``event``'s schema, with formats checked; built once per event."""
    with _validators_lock:
        found = _validators.get(event)
        if found is None:
            import jsonschema  # loaded by the inspector only, on the first body it judges

            found = _validators[event] = jsonschema.Draft202012Validator(
                catalog.schema(event), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        return found


def schema_verdict(event: str | None, parsed: Parsed) -> dict[str, Any] | None:
    """``{"event", "valid", "errors": [{"pointer", "message"}], "unknown": [POINTER]}``.

    None for an event outside the catalog (there is no schema to judge by) or a body that is not
    JSON. ``errors`` are JSON Schema violations; ``unknown`` is drift: fields the body has that
    Moxie's sample of the event does not (objects are open, so drift is not an error, but it is
    what a receiver written against the sample will not read).
    """
    if not event or not catalog.is_known(event) or not parsed.ok:
        return None
    errors = []
    try:
        for error in _validator(event).iter_errors(parsed.value):
            errors.append({"pointer": pointer(error.absolute_path), "message": _short(error.message)})
            if len(errors) >= MAX_LISTED:
                break
    except RecursionError:
        errors.append({"pointer": "", "message": "nested too deeply to check"})
    errors.sort(key=lambda item: item["pointer"])
    unknown: list[str] = []
    drift(catalog.sample(event), parsed.value, [], unknown)
    return {"event": event, "valid": not errors, "errors": errors, "unknown": unknown}


_verdicts: OrderedDict[tuple[str, bytes], dict[str, Any] | None] = OrderedDict()
VERDICTS_KEPT = 512


def cached_verdict(event: str | None, text: str | bytes, parse: Callable[[], Parsed]) -> dict[str, Any] | None:
    """``schema_verdict``, remembered for the last ``VERDICTS_KEPT`` (event, body) pairs.

    A sender's retries, ``fire --count`` without ``--vary`` and load tools send one body again and
    again; jsonschema takes about half a millisecond per Moxie object, which at thousands of
    requests a second would be more than the receiver itself. The key is a hash of the body (its
    UTF-8 bytes; a body as received is hashed as it came, without decoding it first); ``parse`` is
    called only when the verdict is not known yet.
    """
    if not event or not catalog.is_known(event):
        return None
    key = (event, hashlib.blake2b(text if isinstance(text, bytes) else text.encode(), digest_size=16).digest())
    with _validators_lock:
        if key in _verdicts:
            _verdicts.move_to_end(key)
            return _verdicts[key]
    verdict = schema_verdict(event, parse())
    with _validators_lock:
        _verdicts[key] = verdict
        while len(_verdicts) > VERDICTS_KEPT:
            _verdicts.popitem(last=False)
    return verdict


def _short(message: str, limit: int = 300) -> str:
    """jsonschema quotes the offending value whole: a 1 MB string must not come back whole."""
    return message if len(message) <= limit else message[: limit - 1] + "…"


def drift(sample: Any, body: Any, path: list[Any], found: list[str]) -> None:
    """Add to ``found`` the pointers of fields in ``body`` absent from ``sample`` at the same place.

    Arrays are compared element by element with the sample's first element (the sample's shape
    of an element); an empty array or a null in the sample has no known shape, so nothing under
    it is called drift.
    """
    if len(found) >= MAX_LISTED or len(path) > 64:
        return
    if isinstance(sample, dict) and isinstance(body, dict):
        for key, value in body.items():
            if key not in sample:
                found.append(pointer([*path, key]))
                if len(found) >= MAX_LISTED:
                    return
            else:
                drift(sample[key], value, [*path, key], found)
    elif isinstance(sample, list) and sample and isinstance(body, list):
        for index, value in enumerate(body):
            drift(sample[0], value, [*path, index], found)


def schema_ok(event: str | None, parsed: Parsed) -> bool | None:
    verdict = schema_verdict(event, parsed)
    return None if verdict is None else bool(verdict["valid"])


# ---------------------------------------------------------------------------
# diff


def diff(a: Any, b: Any, ignore_volatile: bool = False) -> list[dict[str, Any]]:
    """``[{"pointer", "op": "added"|"removed"|"changed", "a", "b"}]`` from ``a`` to ``b``.

    Objects are compared key by key, arrays index by index; ``1`` and ``1.0`` are equal (JSON
    has one number type), ``1`` and ``true`` are not. ``ignore_volatile`` leaves out ids and
    timestamps: keys named like ``id``, ``clientId``, ``createdAt``, ``dueDate``, and values
    that are ObjectIds, event/delivery ids or ISO-8601 times.
    """
    changes: list[dict[str, Any]] = []
    _diff(a, b, [], changes, ignore_volatile)
    return changes


def _volatile(path: list[Any], a: Any, b: Any) -> bool:
    key = next((part for part in reversed(path) if isinstance(part, str)), "")
    if _VOLATILE_KEYS.match(key):
        return True
    values = [value for value in (a, b) if value is not None]
    return bool(values) and all(isinstance(v, str) and _VOLATILE_VALUE.match(v) for v in values)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def _diff(a: Any, b: Any, path: list[Any], changes: list[dict[str, Any]], ignore: bool) -> None:
    if len(changes) >= MAX_LISTED:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [key for key in b if key not in a]:
            here = [*path, key]
            if key not in b:
                if not (ignore and _volatile(here, a[key], None)):
                    changes.append({"pointer": pointer(here), "op": "removed", "a": a[key], "b": None})
            elif key not in a:
                if not (ignore and _volatile(here, None, b[key])):
                    changes.append({"pointer": pointer(here), "op": "added", "a": None, "b": b[key]})
            else:
                _diff(a[key], b[key], here, changes, ignore)
        return
    if isinstance(a, list) and isinstance(b, list):
        for index in range(max(len(a), len(b))):
            here = [*path, index]
            if index >= len(b):
                changes.append({"pointer": pointer(here), "op": "removed", "a": a[index], "b": None})
            elif index >= len(a):
                changes.append({"pointer": pointer(here), "op": "added", "a": None, "b": b[index]})
            else:
                _diff(a[index], b[index], here, changes, ignore)
        return
    if not _same(a, b) and not (ignore and _volatile(path, a, b)):
        changes.append({"pointer": pointer(path), "op": "changed", "a": a, "b": b})


# ---------------------------------------------------------------------------
# exports


def variable_name(header: str) -> str:
    """The shell variable a masked header's value is read from: ``X-Api-Key`` → ``X_API_KEY``."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", header).strip("_").upper() or "CREDENTIAL"
    return name if not name[0].isdigit() else f"H_{name}"


def exportable_headers(headers: dict[str, str]) -> list[tuple[str, str]]:
    """Headers worth repeating: not hop-by-hop, not a stale signature."""
    return [(name, value) for name, value in headers.items()
            if name.lower() not in _HOP_HEADERS and name.lower() not in SIGNATURE_HEADERS]


# A body up to this size that is UTF-8 without NUL is one argument of curl, as typed; a bigger one
# would pass Linux's 128 KiB limit on one argument (the shell could not run curl), so it is piped in.
CURL_ARGUMENT_MAX = 64 * 1024


def curl_command(url: str, method: str, headers: dict[str, str], body: str | bytes) -> str:
    """A ``curl`` command resending one request; a ``***`` credential becomes ``"$VAR"``.

    Everything else is single-quoted for a POSIX shell (``shlex.quote``), so a body holding
    quotes, ``$`` or backticks is sent as it is and never run. ``body`` is sent byte for byte: a
    big one, one that is not UTF-8 or one holding NUL goes through the shell's own ``printf``
    (no limit on its size), its other bytes as octal escapes, into ``curl --data-binary @-``.
    """
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    text = data.decode("utf-8", "surrogateescape")
    piped = len(data) > CURL_ARGUMENT_MAX or "\0" in text or any("\udc80" <= ch <= "\udcff" for ch in text)
    lines = [f"curl -X {shlex.quote(method)} {shlex.quote(url)}"]
    needed = []
    for name, value in exportable_headers(headers):
        if value == MASK:
            variable = variable_name(name)
            needed.append(variable)
            # Only the name is quoted by shlex; the variable is expanded by the shell in double quotes.
            lines.append(f'-H "{_double_quoted(name)}: ${variable}"')
        else:
            lines.append(f"-H {shlex.quote(f'{name}: {value}')}")
    if not piped:
        lines.append(f"--data-binary {shlex.quote(text)}")
    else:
        lines.append("--data-binary @-")
    head = "".join(f"# set {variable} to the credential first (it is never shown)\n" for variable in needed)
    command = " \\\n  ".join(lines) + "\n"
    return head + (f"printf {shlex.quote(_printf_format(text))} | " + command if piped else command)


def _printf_format(text: str) -> str:
    """A ``printf`` format that prints ``text`` (decoded with ``surrogateescape``) as its bytes."""
    out = []
    for ch in text:
        if ch == "%":
            out.append("%%")
        elif ch == "\\":
            out.append("\\\\")
        elif "\udc80" <= ch <= "\udcff":  # a byte that is not UTF-8
            out.append(f"\\{ord(ch) - 0xDC00:03o}")
        elif ch < " " and ch not in "\n\t" or ch == "\x7f":
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)
    return "".join(out)


def _double_quoted(text: str) -> str:
    return re.sub(r'(["\\$`])', r"\\\1", text)


def pytest_test(event: str | None, body_text: str, parsed: Parsed, url: str, record_id: str,
                content_type: str | None = None) -> str:
    """A test function using the ``moxie`` fixture that fires the same body to the same URL.

    A body that is not JSON cannot go through ``moxie.fire`` (it sends a JSON value: the text
    would arrive as a JSON string), so that test posts the text itself with httpx, with the
    ``content_type`` it came with. Every value is embedded as a Python literal (``repr``), so
    no body, URL or header can break out of it.
    """
    name = re.sub(r"[^a-z0-9]+", "_", (event or "webhook").lower()).strip("_") or "webhook"
    suffix = re.sub(r"[^a-z0-9]+", "", record_id.lower())[-8:]
    event_name = event if event else "Webhook"
    head = f"# Made by moxiehook's inspector from request {re.sub(r'[^A-Za-z0-9_]', '', record_id)}.\n\n"
    if not parsed.ok:
        headers = {"Content-Type": content_type or "text/plain; charset=utf-8", "X-Event-Type": event_name}
        return (
            head + "import httpx\n\n"
            f"BODY = {body_text!r}  # not JSON: posted as this text (moxie.fire sends a JSON value)\n\n\n"
            f"def test_{name}_{suffix}():\n"
            f"    response = httpx.post({url!r}, content=BODY.encode(), headers={headers!r})\n"
            "    assert response.status_code < 300, response.text\n"
        )
    return (
        head + "import json\n\n"
        f"BODY = json.loads({body_text!r})\n\n\n"
        f"def test_{name}_{suffix}(moxie):\n"
        f"    # To call your app in-process instead: moxie.fire(..., app=app) with `from yourapp import app`.\n"
        f"    response = moxie.fire({event_name!r}, url={url!r}, data=BODY)\n"
        "    assert response.status_code < 300, response.text\n"
    )
