"""The JSONL delivery log: record types, appending, and opening it to read.

Each record is one JSON object on one line. Appends take an exclusive
``flock`` on the log's sibling lock file and write the whole line with a single ``write``,
so concurrent runs never interleave. Readers skip a line that is not valid
JSON (a torn write, a hand edit) and report its line number through a
callback, then go on. Unknown fields are kept, so newer logs stay readable.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import IO, Any

from moxiehook.errors import DataError, StorageError

OUTCOMES: tuple[str, ...] = ("delivered", "failed", "skipped")

# Kept in the log: the first 4 KiB of a response body (enough to see why a delivery failed).
LOGGED_BODY_LIMIT = 4 * 1024

# How deep arrays and objects may nest in a payload that is sent and logged. The
# readers use json.loads, whose limit is the interpreter's recursion limit (about
# 1,000) minus however deep the reader already is: a payload that passed at 990
# became a log line that `logs` and `replay` could not read. Refusing deeper
# payloads before sending keeps every line written well inside what is read back
# (the record adds 2 levels: the record and its "request").
MAX_NESTING = 256


@dataclass
class Attempt:
    """One try of a delivery."""

    at: str
    status: int | None
    error: str | None
    duration_ms: float


@dataclass
class DeliveryRecord:
    """``kind = "delivery"``: one event sent (or skipped) to one URL."""

    id: str
    event_id: str
    event: str
    endpoint: str
    url: str
    mode: str
    replay_of: str | None
    at: str
    outcome: str
    status: int | None
    error: str | None
    duration_ms: float | None
    attempts: list[Attempt] = field(default_factory=list)
    # {"headers": {...redacted...}, "body": <the JSON payload>}, plus "body_format": "text" when the
    # body is text sent as its UTF-8 bytes (a relayed body that was not JSON, an edited one), or
    # "base64" when it is bytes that are not UTF-8, base64-encoded: see `text_body`
    request: dict[str, Any] = field(default_factory=dict)
    # {"status": int, "headers": {...}, "body": str} or None when no answer came
    response: dict[str, Any] | None = None
    kind: str = "delivery"
    # A scenario step's delivery: {"name", "run", "step"}; absent (None) for every other mode.
    scenario: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as the log stores it (``kind`` first, so a person reading the file sees
        what each line is).

        Shallow: ``request`` and ``response`` are the record's own dicts, not copies
        (``dataclasses.asdict`` would deep-copy the whole payload, ~150 µs a record);
        callers encode the result and never change it.
        """
        data: dict[str, Any] = {"kind": self.kind}
        for name in _DELIVERY_FIELDS:
            data[name] = getattr(self, name)
        data["attempts"] = [vars(attempt).copy() for attempt in self.attempts]
        if self.scenario is None:  # written only by scenario runs: other records keep their shape
            del data["scenario"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeliveryRecord:
        """The record on a parsed line; ValueError when a field has the wrong JSON type."""
        _check_types(data, _DELIVERY_TYPES)
        for index, attempt in enumerate(data.get("attempts") or []):
            if not isinstance(attempt, dict):
                raise ValueError(f"attempts[{index}]: expected an object")
            _check_types(attempt, _ATTEMPT_TYPES, f"attempts[{index}].")
        _check_types(data.get("request") or {}, _REQUEST_TYPES, "request.")
        _check_types(data.get("response") or {}, _RESPONSE_TYPES, "response.")
        attempts = [Attempt(**_known(Attempt, a)) for a in data.get("attempts") or []]
        values = _known(cls, data)
        values["attempts"] = attempts
        return cls(**values)


# DeliveryRecord's fields in log order, without kind (written first).
_DELIVERY_FIELDS = tuple(f.name for f in fields(DeliveryRecord) if f.name != "kind")


@dataclass
class EndpointRecord:
    """``kind = "endpoint"``: an endpoint was disabled or enabled."""

    at: str
    endpoint: str
    action: str  # "disabled" or "enabled"
    reason: str | None = None
    kind: str = "endpoint"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {"kind": data.pop("kind"), **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EndpointRecord:
        """The record on a parsed line; ValueError when a field has the wrong JSON type."""
        _check_types(data, _ENDPOINT_TYPES)
        return cls(**_known(cls, data))


Record = DeliveryRecord | EndpointRecord

# The JSON type each known field must have when present and not null, checked as the
# config's keys are: a hand-edited `"duration_ms": "x"` or `"request": "x"` makes the
# line a bad line (skipped with a warning), never a crash in whatever reads it later.
# A field that is missing or null is tolerated (older or partial records).
_Types = dict[str, type | tuple[type, ...]]
_NUMBER = (int, float)
_DELIVERY_TYPES: _Types = {
    "id": str, "event_id": str, "event": str, "endpoint": str, "url": str, "mode": str, "replay_of": str,
    "at": str, "outcome": str, "status": int, "error": str, "duration_ms": _NUMBER, "attempts": list,
    "request": dict, "response": dict, "scenario": dict,
}
_ATTEMPT_TYPES: _Types = {"at": str, "status": int, "error": str, "duration_ms": _NUMBER}
_REQUEST_TYPES: _Types = {"headers": dict, "body_format": str}
_RESPONSE_TYPES: _Types = {"status": int, "headers": dict, "body": str}
_ENDPOINT_TYPES: _Types = {"at": str, "endpoint": str, "action": str, "reason": str}


def _check_types(data: dict[str, Any], types: _Types, where: str = "") -> None:
    for name, wanted in types.items():
        value = data.get(name)
        if value is None:
            continue
        allowed = wanted if isinstance(wanted, tuple) else (wanted,)
        # bool is an int subclass in Python, not in JSON: true is no status code.
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise ValueError(f"{where}{name}: expected {' or '.join(t.__name__ for t in allowed)}, "
                             f"got {type(value).__name__}")


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``data`` that ``cls`` knows; a missing field without a default gets None
    (so a line lacking one still loads), one with a default is left to it."""
    names = cls.__dataclass_fields__  # type: ignore[attr-defined]
    values = {name: data.get(name) for name in names if name in data}
    for name, spec in names.items():
        if name not in values and spec.default is spec.default_factory:  # no default at all
            values[name] = None
    return values


def record_from_dict(data: dict[str, Any]) -> Record:
    """A record object from one parsed line (``kind`` decides the type)."""
    if data.get("kind") == "endpoint":
        return EndpointRecord.from_dict(data)
    return DeliveryRecord.from_dict(data)


# A logged request's "body_format" when its "body" is text that went on the wire as its UTF-8
# bytes, not a JSON value: without it, the text `plain text` and the JSON string `"plain text"`
# would be the same line, and a replay could not send what was received.
TEXT_BODY = "text"
# ... and when the bytes were not UTF-8 (Latin-1 text, binary): the body is their base64 (RFC 4648),
# since a JSON string can hold only text; a replay sends the bytes themselves.
BASE64_BODY = "base64"
_RAW_FORMATS = (TEXT_BODY, BASE64_BODY)


def text_body(request: dict[str, Any] | None) -> bool:
    """Whether a logged request's body is raw bytes (``body_format`` "text" or "base64") rather than a JSON value."""
    return (request is not None and request.get("body_format") in _RAW_FORMATS
            and isinstance(request.get("body"), str))


def raw_fields(data: bytes) -> dict[str, str]:
    """How body bytes that are not a JSON value are logged: ``body`` and ``body_format``.

    Their text when they are UTF-8, else their base64: either way a replay sends these bytes.
    """
    try:
        return {"body": data.decode("utf-8"), "body_format": TEXT_BODY}
    except UnicodeDecodeError:
        return {"body": base64.b64encode(data).decode("ascii"), "body_format": BASE64_BODY}


def raw_bytes(request: dict[str, Any], what: str) -> bytes:
    """The bytes a logged raw body (``text_body``) went out as; ``DataError`` (exit 2) when they cannot be told."""
    body = str(request.get("body"))
    if request.get("body_format") == BASE64_BODY:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise DataError(f"{what} is logged as base64 but is not base64; nothing was sent") from None
    return text_bytes(body, what)


def sent_bytes(request: dict[str, Any], what: str) -> bytes:
    """The bytes a logged request's body went out as: a raw body's own (``raw_bytes``), else its JSON."""
    return raw_bytes(request, what) if text_body(request) else encode_body(request.get("body"))


def shown_text(request: dict[str, Any]) -> str:
    """A raw body (``text_body``) as text to show: bytes that are not UTF-8 as U+FFFD."""
    try:
        return raw_bytes(request, "the body").decode("utf-8", "replace")
    except DataError:
        return str(request.get("body"))


def logged_content_type(request: dict[str, Any] | None) -> str | None:
    """The ``Content-Type`` a logged request was sent with (any case of the name), or None."""
    headers = (request or {}).get("headers")
    if not isinstance(headers, dict):
        return None
    found = next((value for name, value in headers.items()
                  if isinstance(name, str) and name.lower() == "content-type"), None)
    return found if isinstance(found, str) and found and found.isprintable() else None


TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"  # a text body's, when it was logged without one


def text_content_type(request: dict[str, Any] | None) -> str | None:
    """The Content-Type text resent in place of a logged request's body goes with: the one logged, else
    ``text/plain`` when that body was raw too (None: the endpoint's, a JSON body's)."""
    return logged_content_type(request) or (TEXT_CONTENT_TYPE if text_body(request) else None)


def body_to_resend(request: dict[str, Any], what: str) -> tuple[Any, bool, str | None]:
    """What a replay sends of a logged request: its body, whether that is raw bytes, and the Content-Type.

    A JSON body is sent as JSON with the endpoint's Content-Type (None). A raw body (a
    relayed one that was not JSON) is sent as its bytes (the text's UTF-8, or the base64's
    bytes) with the Content-Type it was logged with, else ``text/plain``. ``DataError`` (exit 2)
    names ``what`` when the bytes cannot be told (a lone surrogate, base64 that is not), and when
    ``body_format`` is one this version does not know (or a raw format on a body that is not a
    string): the bytes that were sent cannot be told, so none are guessed.
    """
    body = request.get("body")
    body_format = request.get("body_format")
    if body_format is None:
        return body, False, None
    if not text_body(request):  # a newer moxiehook's format, or a line edited by hand: never guessed at
        raise DataError(f"{what} is logged with \"body_format\": {json.dumps(body_format)[:40]}"
                        f"{'' if isinstance(body, str) else ' and a body that is not text'}, which this moxiehook "
                        f"cannot resend as it was sent (it knows \"{TEXT_BODY}\" and \"{BASE64_BODY}\" with a "
                        "string body); nothing was sent")
    return raw_bytes(request, what), True, text_content_type(request)


def text_bytes(text: str | bytes, what: str = "the body") -> bytes:
    """``text`` as the UTF-8 bytes sent (bytes as they are); ``DataError`` (exit 2) for a lone surrogate,
    which has no UTF-8 form."""
    if isinstance(text, bytes):
        return text
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DataError(f"{what} holds a lone surrogate (\\u{ord(text[exc.start]):04x}), which has no UTF-8 form "
                        "and cannot be sent; nothing was sent") from None


def check_nesting(body: Any, what: str = "the payload") -> None:
    """Raise ``DataError`` (exit 2) when ``body`` nests deeper than ``MAX_NESTING``.

    Called before anything is sent, so what the log would hold is readable back.
    Walks the containers only (iteratively: a deep payload must not crash the check).
    """
    pending: list[tuple[Any, int]] = [(body, 1)]
    while pending:
        value, depth = pending.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > MAX_NESTING:
            raise DataError(
                f"{what} nests arrays and objects more than {MAX_NESTING} deep, more than the delivery log "
                "can hold and read back; nothing was sent"
            )
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


# Made once: json.dumps with options builds a new encoder on every call.
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode  # strict JSON only


def encode(record: Record) -> bytes:
    """One log line: compact JSON, non-ASCII kept as is, ending in a newline."""
    return (_dumps(record.to_dict()) + "\n").encode()


def encode_body(body: Any) -> bytes:
    """A payload as sent and logged: compact JSON, UTF-8, non-ASCII kept as is.

    ``DataError`` (exit 2) for a string holding a lone surrogate (``"\\ud800"`` in JSON text a
    user typed or edited), which has no UTF-8 form: it can be neither sent nor logged.
    """
    text = _dumps(body)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return text_bytes(text, "the payload")  # raises, naming the character


def encode_record(record: DeliveryRecord, body_bytes: bytes, headers_json: bytes | None = None) -> bytes:
    """The log line of ``record``, same as ``encode``, without re-encoding what is already bytes.

    ``body_bytes`` (the payload as sent) and ``headers_json`` (the JSON of
    ``record.request["headers"]``, when the caller has it encoded already) are
    spliced in as they are, and the record is not copied. A raw body (``text_body``)
    is sent as its bytes but logged as a JSON string, with its ``body_format``.
    """
    head: dict[str, Any] = {
        "kind": "delivery", "id": record.id, "event_id": record.event_id, "event": record.event,
        "endpoint": record.endpoint, "url": record.url, "mode": record.mode,
        "replay_of": record.replay_of, "at": record.at, "outcome": record.outcome,
        "status": record.status, "error": record.error, "duration_ms": record.duration_ms,
        "attempts": [{"at": a.at, "status": a.status, "error": a.error, "duration_ms": a.duration_ms}
                     for a in record.attempts],
    }
    if record.scenario is not None:
        head["scenario"] = record.scenario
    if headers_json is None:
        headers_json = _dumps(record.request.get("headers", {})).encode()
    body_end = b"}"
    if text_body(record.request):
        body_bytes = _dumps(record.request["body"]).encode()
        body_end = b',"body_format":' + _dumps(record.request["body_format"]).encode() + b"}"
    return b"".join((
        _dumps(head)[:-1].encode(), b',"request":{"headers":', headers_json, b',"body":', body_bytes,
        body_end, b',"response":', _dumps(record.response).encode(), b"}\n",
    ))


def check_log_file_kind(path: Path, mode: int, verb: str = "read") -> None:
    """Refuse a log that is a folder, a FIFO or a socket (``StorageError``, exit 2, naming it).

    A regular file is a log; a device (``/dev/null`` to log nothing) is allowed too. A FIFO
    would make every reader and writer wait for ever for the other side.
    """
    kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else None)
    if kind is not None:
        raise StorageError(
            f"cannot {verb} the delivery log {path}: it is {kind}, not a regular file "
            "(point settings.log_file at a file)"
        )


def lock_path(path: Path) -> Path:
    """The log's lock file, beside it (``moxiehook-log.jsonl.lock``); never deleted."""
    return path.with_name(path.name + ".lock")


def replay_lock_path(path: Path) -> Path:
    """The lock that makes ``replay`` runs on one log take turns (``moxiehook-log.jsonl.replay.lock``)."""
    return path.with_name(path.name + ".replay.lock")


def open_lock(path: Path) -> int:
    """An open descriptor of the lock file ``path`` (created if need be), for ``flock``."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StorageError(f"cannot lock the delivery log: {path}: {exc.strerror}") from None


@contextlib.contextmanager
def exclusive(path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the lock file ``path`` (one of the two above).

    ``on_wait`` is called once when another process holds it, before waiting.
    Closing the descriptor releases the lock, also when the process dies.
    """
    fd = open_lock(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class LogWriter:
    """An open log file that appends whole lines under an exclusive lock.

    Opened once per run and shared by the delivery threads; ``append`` is
    safe to call from several threads and several processes at once.

    The lock is a sibling lock file, not the log itself, because ``logs prune``
    replaces the log (a new file renamed over it) while holding the same lock:
    a writer that had the old file open sees, under the lock, that the path now
    names another file and reopens it, so no record goes to the file pruned away.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._threads = threading.Lock()  # flock is per open file: the run's threads take turns here
        self._fd = self._open()
        try:
            self._lock_fd = open_lock(lock_path(path))
        except StorageError:
            os.close(self._fd)
            raise

    def _open(self) -> int:
        """The log opened for appending; a FIFO is refused, never waited on.

        Without ``O_NONBLOCK`` opening a FIFO waits for ever for a reader (and
        with one, records would go into a pipe, not a log); non-blocking, it
        fails at once or opens, and is then refused by kind.
        """
        try:
            check_log_file_kind(self.path, os.stat(self.path).st_mode, verb="open")
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"cannot open the delivery log {self.path}: {exc.strerror}") from None
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o600)
        except OSError as exc:
            raise StorageError(f"cannot open the delivery log {self.path}: {exc.strerror}") from None
        try:
            mode = os.fstat(fd).st_mode
            check_log_file_kind(self.path, mode, verb="open")
            os.set_blocking(fd, True)  # a device (/dev/null, /dev/full) is written as usual
        except BaseException:
            os.close(fd)
            raise
        return fd

    def append(self, record: Record, then: Callable[[], None] | None = None) -> None:
        self.append_line(encode(record), then)

    def append_line(self, line: bytes, then: Callable[[], None] | None = None) -> None:
        """Append ``line``; then, still under the lock, call ``then`` (if given).

        When ``then`` raises, the line is taken back before the error goes on:
        the pair is all or nothing. ``endpoint enable``/``disable`` write their
        record this way, then the config, so a log that cannot be written
        leaves the config unchanged, and a config that cannot be written leaves
        no record of a change that did not happen.
        """
        with self._threads:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                self._follow_replacement()
                end = os.fstat(self._fd).st_size  # under the lock: where this line starts
                try:
                    written = os.write(self._fd, line)
                except OSError as exc:
                    raise StorageError(f"cannot write the delivery log {self.path}: {exc.strerror}") from None
                if written != len(line):  # a full disk (or file size limit) wrote part of the line:
                    self._cut(end)  # take it back, so no reader ever sees half a record
                    raise StorageError(f"cannot write the delivery log {self.path}: disk full (short write)")
                if then is not None:
                    try:
                        then()
                    except BaseException:
                        self._cut(end)
                        raise
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def check_writable(self) -> None:
        """Raise ``StorageError`` now if records cannot be written, so a run sends nothing.

        A delivery's record is written after it was sent: without this, a run
        against a full disk or ``/dev/full`` would send one delivery and then
        fail. A regular file is checked without writing (free space, the file
        size limit): a probe written and taken back could be seen by ``logs
        --follow``. A device gets a newline, which readers skip: ``/dev/full``
        refuses it, ``/dev/null`` takes it. (A FIFO or a folder never gets this
        far: it is refused when the log is opened.)
        """
        with self._threads:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                self._follow_replacement()
                status = os.fstat(self._fd)
                if stat.S_ISREG(status.st_mode):
                    problem = _no_room(self._fd, status.st_size)
                    if problem:
                        raise StorageError(f"cannot write the delivery log {self.path}: {problem}")
                    return
                if os.isatty(self._fd):
                    return  # a terminal takes what it is given; no blank line on it
                try:
                    os.write(self._fd, b"\n")
                except OSError as exc:
                    raise StorageError(f"cannot write the delivery log {self.path}: {exc.strerror}") from None
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _follow_replacement(self) -> None:
        """Reopen the log when its path names another file than the one open (a prune replaced it)."""
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            now = None  # removed by hand: append to a new log, as a fresh run would
        except OSError:
            return  # the write below reports what is wrong
        opened = os.fstat(self._fd)
        if now is None or (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino):
            fd = self._open()
            os.close(self._fd)
            self._fd = fd

    def _cut(self, size: int) -> None:
        with contextlib.suppress(OSError):  # readers skip a torn line anyway (with a warning)
            os.ftruncate(self._fd, size)

    def close(self) -> None:
        os.close(self._fd)
        os.close(self._lock_fd)

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _no_room(fd: int, size: int) -> str | None:
    """Why a regular file at ``size`` bytes cannot grow, or None."""
    import resource  # only runs that log need it

    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and size >= limit:
        return "the file size limit (ulimit -f) is reached"
    try:
        space = os.fstatvfs(fd)
    except OSError:
        return None  # no answer: the first write will tell
    free = space.f_bfree if os.geteuid() == 0 else space.f_bavail  # root may use the reserved blocks
    return "no space left on device" if free == 0 and space.f_blocks else None


BadLineCallback = Callable[[int], None]


def open_log(path: Path) -> IO[bytes] | None:
    """The log opened for reading, or None when there is nothing to read (an empty log).

    Opened without blocking, then checked: a FIFO (which a blocking open would wait on for ever)
    or a folder is a ``StorageError`` naming it, as for the writers. A device reads as an empty
    log: ``/dev/null`` logs nothing, and ``/dev/zero`` would be one endless line.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read the delivery log {path}: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        check_log_file_kind(path, mode)
        if not stat.S_ISREG(mode):
            os.close(fd)
            return None
        os.set_blocking(fd, True)  # read as usual from here on
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(line number, raw line)`` for every non-empty line; a missing file is empty."""
    handle = open_log(path)
    if handle is None:
        return
    with handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line


def parse_line(line: bytes) -> dict[str, Any] | None:
    """The JSON object on ``line``, or None when it is not one."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested arrays/objects
        return None
    if not isinstance(data, dict) or has_lone_surrogate(line, data):
        return None
    return data


def has_lone_surrogate(line: bytes, data: Any) -> bool:
    """True when the parsed ``line`` holds a lone surrogate (``"\\ud800"``), which no UTF-8 text can carry.

    moxiehook never writes one (a body holding one is refused before it is sent), but a hand-edited
    line or another tool's may: such a line is not a record, as a line that is not JSON is not, so
    no reader sends, shows or copies a string it cannot encode. Only lines that spell a surrogate
    (an escape ``\\uD…``, or the bytes ``0xED 0xA0-0xBF``) are checked in full.
    """
    if b"\\ud" not in line and b"\\uD" not in line and b"\xed" not in line:
        return False
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return True
    return False


def iter_records(path: Path, on_bad_line: BadLineCallback | None = None) -> Iterator[Record]:
    """Stream every record from the oldest; bad lines (not JSON, or wrong field types) are reported and skipped."""
    for number, line in iter_lines(path):
        data = parse_line(line)
        try:
            record = None if data is None else record_from_dict(data)
        except (TypeError, ValueError):
            record = None
        if record is None:
            if on_bad_line is not None:
                on_bad_line(number)
            continue
        yield record
