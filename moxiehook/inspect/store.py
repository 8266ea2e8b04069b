"""The inspector's list: what arrived (or was logged), in memory, capped, with live subscribers.

An ``Entry`` is one request as the page shows it, made either from a delivery record of the
log (``from_record``) or from a request ``listen`` received (``from_received``). The ``Store``
keeps at most ``MAX_ENTRIES`` of them and ``MAX_BYTES`` of bodies (the oldest go first), and
hands each new one to every open stream. A stream that cannot keep up (``MAX_PENDING`` entries
waiting) is closed rather than buffered without end: the page reconnects and fetches the list
again, so it misses nothing it is still able to show.

Adding an entry is cheap (no parsing, no schema check): ``listen`` calls ``add`` from the thread
answering the sender. The JSON and schema verdict are worked out on first use, by the thread
that needs them (a stream writer or an API call), and kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from moxiehook import ids
from moxiehook.errors import DataError
from moxiehook.inspect import analysis
from moxiehook.log import DeliveryRecord, sent_bytes, shown_text

if TYPE_CHECKING:
    from moxiehook.receive import ReceivedRequest

MAX_ENTRIES = 10_000
MAX_BYTES = 128 * 1024 * 1024  # bodies kept in all
BODY_KEPT = 1024 * 1024  # of one body; the rest is cut (and the entry says so)
MAX_PENDING = MAX_ENTRIES  # waiting for one stream client (references only): further behind, it is dropped
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


@dataclass
class Entry:
    """One request in the list. ``record`` is the log's delivery record (None: plain ``listen``, a request
    being relayed, or a body cut to ``BODY_KEPT``, whose record a replay reads again from the log)."""

    id: str
    at: str
    method: str
    path: str
    event: str | None
    mode: str
    replay_of: str | None
    status: int | None  # what the sender was answered (None: no answer)
    app_status: int | None
    duration_ms: float | None
    auth_ok: bool | None
    signature_ok: bool | None
    # As logged (a dict, credentials already ***) or as received (pairs, masked on first use by ``hidden``).
    header_pairs: dict[str, str] | tuple[tuple[str, str], ...]
    body: str | bytes  # as received (bytes, decoded on first use) or as text; at most BODY_KEPT bytes of it
    body_size: int  # bytes as received, before any cut
    answer: dict[str, Any] | None
    url: str | None  # where a replay or an export sends it
    record: DeliveryRecord | None = None
    truncated: bool = False  # body is the first BODY_KEPT bytes of a bigger body
    hidden: frozenset[str] = CREDENTIAL_HEADERS
    _text: str | None = field(default=None, repr=False)
    _headers: dict[str, str] | None = field(default=None, repr=False)
    _parsed: analysis.Parsed | None = field(default=None, repr=False)
    _schema: tuple[dict[str, Any] | None] | None = field(default=None, repr=False)
    _summary: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def body_text(self) -> str:
        if self._text is None:
            body = self.body
            errors = "ignore" if self.truncated else "replace"  # a cut may split a character
            self._text = body if isinstance(body, str) else body.decode("utf-8", errors)
        return self._text

    @property
    def headers(self) -> dict[str, str]:
        """The headers to show: credentials as ``***``."""
        if self._headers is None:
            pairs = self.header_pairs
            self._headers = masked(pairs.items() if isinstance(pairs, dict) else pairs, self.hidden)
        return self._headers

    @property
    def parsed(self) -> analysis.Parsed:
        if self._parsed is None:
            if self.truncated:
                self._parsed = analysis.Parsed(False, error={
                    "message": f"the body is {self.body_size:,} bytes: the inspector keeps the first "
                               f"{BODY_KEPT:,} and does not parse it", "line": 1, "column": 1})
            else:
                self._parsed = analysis.parse_body(self.body_text)
        return self._parsed

    @property
    def schema(self) -> dict[str, Any] | None:
        if self._schema is None:
            # A cut body is not parsed, so it has no verdict (and must not share one with its first MiB).
            body = self.body  # as received (bytes) it is hashed as it came, not decoded first
            verdict = None if self.truncated else analysis.cached_verdict(
                self.event, body if isinstance(body, bytes) else self.body_text, lambda: self.parsed)
            self._schema = (verdict,)
        return self._schema[0]

    @property
    def failed(self) -> bool:
        """Any check failed: auth, signature, schema, or the answer (≥ 400, or none)."""
        schema = self.schema
        return (self.auth_ok is False or self.signature_ok is False or (schema is not None and not schema["valid"])
                or self.status is None or self.status >= 400)

    def summary(self) -> dict[str, Any]:
        if self._summary is None:
            schema = self.schema
            self._summary = {
                "id": self.id, "at": self.at, "method": self.method, "path": self.path, "event": self.event,
                "auth_ok": self.auth_ok, "signature_ok": self.signature_ok,
                "schema_ok": None if schema is None else schema["valid"],
                "status": self.status, "app_status": self.app_status, "duration_ms": self.duration_ms,
                "mode": self.mode, "replay_of": self.replay_of,
            }
        return self._summary

    def detail(self) -> dict[str, Any]:
        parsed = self.parsed
        return {
            **self.summary(), "headers": self.headers, "body": self.body_text, "body_size": self.body_size,
            "truncated": self.truncated, "json": parsed.value if parsed.ok else None,
            "json_error": parsed.error, "schema": self.schema, "answer": self.answer, "url": self.url,
        }

    def matches(self, event: str | None, failed: bool, text: str | None) -> bool:
        if event is not None and self.event != event:
            return False
        if text and text not in self.path.lower() and text not in self.body_text.lower():
            return False
        return not failed or self.failed


def _kept(data: bytes) -> tuple[bytes, bool]:
    """The first ``BODY_KEPT`` bytes of ``data`` (the same object when it is smaller), and whether it was cut."""
    return (data, False) if len(data) <= BODY_KEPT else (data[:BODY_KEPT], True)


def masked(headers: Any, hidden: frozenset[str] = CREDENTIAL_HEADERS) -> dict[str, str]:
    """Headers as a dict, credentials (``hidden``, lower-case) as ``***``; repeated names joined."""
    result: dict[str, str] = {}
    for name, value in headers:
        value = analysis.MASK if name.lower() in hidden else value
        result[name] = f"{result[name]}, {value}" if name in result and value != analysis.MASK else value
    return result


def target(url: str) -> str:
    """The path and query of ``url``: what the page shows as the request's path."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def from_record(record: DeliveryRecord) -> Entry:
    """An entry of a delivery record of the log (fire, test, replay, load, app, scenario, forward)."""
    request = record.request or {}
    headers = {str(k): str(v) for k, v in (request.get("headers") or {}).items()}
    forward = record.mode == "forward"
    # A body logged as text or base64 (relayed and not JSON, or edited as text) is kept as the bytes sent
    # (shown with U+FFFD where they are not UTF-8, exported as they are).
    data = _sent(request) if "body" in request else b""
    text, cut = _kept(data)
    status = record.status
    if forward and status is None:  # what listen answered the sender when the app did not
        status = 504 if "timeout" in (record.error or "").lower() else 502
    response = record.response
    # The log keeps an answer's headers as they came (a Set-Cookie too): masked here as a live answer is.
    answer = None if response is None else {
        "status": response.get("status"),
        "headers": masked((str(k), str(v)) for k, v in (response.get("headers") or {}).items()),
        "body": response.get("body")}
    event = record.event or headers.get("X-Event-Type") or None
    return Entry(
        id=record.id, at=record.at, method=str(request.get("method") or "POST"), path=target(record.url),
        event=event, mode=record.mode, replay_of=record.replay_of, status=status,
        app_status=record.status if forward else None, duration_ms=record.duration_ms,
        auth_ok=None, signature_ok=None, header_pairs=headers, body=text, body_size=len(data),
        # A cut body's record (up to 16 MiB of body) is not held: the list holds what it shows, and a
        # replay reads the record again from the log.
        answer=answer, url=record.url, record=None if cut else record, truncated=cut,
    )


def _sent(request: dict[str, Any]) -> bytes:
    try:
        return sent_bytes(request, "the body")
    except DataError:  # base64 that is not: shown as it was logged
        return shown_text(request).encode("utf-8", "replace")


def from_received(request: ReceivedRequest, base_url: str, hidden: frozenset[str] = CREDENTIAL_HEADERS,
                  record: DeliveryRecord | None = None) -> Entry:
    """An entry of a request ``listen`` received; forwarded ones carry their log record's id."""
    forwarded = request.forwarded
    record_id = forwarded.record_id if forwarded is not None else None
    body, cut = _kept(request.body)  # kept as it came: decoded, parsed and masked only when shown
    if forwarded is not None:
        answer: dict[str, Any] | None = None
        if forwarded.app_status is not None:
            answer = {"status": forwarded.app_status, "headers": masked(forwarded.headers, hidden),
                      "body": forwarded.body[:65536].decode("utf-8", "replace")}
        url: str | None = forwarded.url
    else:
        answer = {"status": request.status, "headers": {}, "body": ""}
        url = base_url.rstrip("/") + (request.path if request.path.startswith("/") else "/")
    return Entry(
        id=record_id or ids.delivery_id(), at=request.at, method=request.method, path=request.path,
        event=request.header("X-Event-Type") or None, mode="forward" if forwarded is not None else "listen",
        replay_of=None, status=request.status, app_status=forwarded.app_status if forwarded else None,
        duration_ms=forwarded.duration_ms if forwarded else None, auth_ok=request.check.auth_ok,
        signature_ok=request.check.signature_ok, header_pairs=request.headers, hidden=hidden, body=body,
        body_size=len(request.body), answer=answer, url=url, record=record, truncated=cut,
    )


class Subscriber:
    """One open stream: the entries not yet written to it, bounded."""

    def __init__(self) -> None:
        self.pending: deque[Entry] = deque()
        self.dropped = False  # fell MAX_PENDING behind: the stream ends, the page reconnects
        self.ready = threading.Condition()

    def push(self, entries: list[Entry]) -> None:
        """Queue ``entries`` for this stream: one wake-up for the lot, however many they are."""
        with self.ready:
            if len(self.pending) + len(entries) > MAX_PENDING:
                self.dropped = True
                self.pending.clear()
            else:
                self.pending.extend(entries)
            self.ready.notify()

    def take(self, timeout: float) -> list[Entry] | None:
        """The entries waiting (possibly none after ``timeout``); None once dropped."""
        with self.ready:
            self.ready.wait_for(lambda: self.pending or self.dropped, timeout)
            if self.dropped:
                return None
            batch = list(self.pending)
            self.pending.clear()
            return batch

    def wake(self) -> None:
        with self.ready:
            self.dropped = True
            self.ready.notify()


class Store:
    """The entries, newest last, keyed by id; thread-safe."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._bytes = 0
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._subscribers: set[Subscriber] = set()

    def add(self, entry: Entry) -> bool:
        """Add ``entry`` (False when its id is there already: a record seen twice) and tell the streams."""
        return bool(self.add_many([entry]))

    def add_many(self, entries: list[Entry]) -> list[Entry]:
        """Add ``entries`` in order, each id once, and tell the streams in one go; the ones added.

        ``listen --ui`` hands over what arrived in batches: one lock and one wake-up of each
        stream per batch, not per request.
        """
        added = []
        with self._lock:
            for entry in entries:
                if entry.id in self._entries:
                    continue
                self._entries[entry.id] = entry
                self._bytes += len(entry.body)
                added.append(entry)
            while self._entries and (len(self._entries) > self._max_entries or self._bytes > self._max_bytes):
                _, old = self._entries.popitem(last=False)
                self._bytes -= len(old.body)
            subscribers = list(self._subscribers)
        if added:
            for subscriber in subscribers:
                subscriber.push(added)
        return added

    def get(self, entry_id: str) -> Entry | None:
        with self._lock:
            return self._entries.get(entry_id)

    def newest(self, limit: int, event: str | None = None, failed: bool = False,
               text: str | None = None) -> list[Entry]:
        with self._lock:
            entries = list(self._entries.values())
        found = []
        needle = text.lower() if text else None
        for entry in reversed(entries):
            if entry.matches(event, failed, needle):
                found.append(entry)
                if len(found) >= limit:
                    break
        return found

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def subscribe(self) -> Subscriber:
        subscriber = Subscriber()
        with self._lock:
            self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    def close_streams(self) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber.wake()
