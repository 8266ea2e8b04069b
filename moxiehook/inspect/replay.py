"""Replay and edit-and-replay from the page, through the code ``moxiehook replay ID`` uses.

A replay is a ``send.Job`` with ``mode = "replay"`` and ``replay_of`` = the entry's id, run by
``send.dispatch.run_jobs`` (the one request builder, the one sender, the log's locked append,
and the endpoint disabled on a 401 as for any delivery). What it resends follows the record:

- a delivery of the log (``moxiehook ui``): to the record's URL, with the endpoint's current
  auth and headers, as ``replay ID`` does;
- a relayed one (``listen --forward-to``): to the app again (the record's URL is the app's);
- an in-process one (``mode = "app"``): refused, it never went to the network and only
  ``replay ID --app MODULE:ATTR`` resends it;
- a request a plain ``listen`` received: refused (409), there is nowhere to resend it to.

An edit (``{"path", "headers", "body"}``, each optional) replaces those parts: ``path`` the
URL's path and query (never its host), ``headers`` merged over the endpoint's (a ``***`` value
keeps the credential; credentials themselves cannot be typed in, since the log would then show
them; ``webhook-*`` signature headers are made afresh), ``body`` the JSON value to send, or, when it is a
string, the text to send as it is (a malformed body on purpose, say), with the original's Content-Type
unless the edit changes it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from moxiehook import log as logquery
from moxiehook.config import Config, Endpoint, check_header_value
from moxiehook.errors import MoxiehookError, NotFoundError, UsageError
from moxiehook.inspect import analysis
from moxiehook.inspect.store import CREDENTIAL_HEADERS, Entry
from moxiehook.log import DeliveryRecord, check_nesting

MAX_REPLAYS_AT_ONCE = 4
_BASE_HEADERS = {"content-type": "Content-Type", "user-agent": "User-Agent", "x-event-origin": "X-Event-Origin"}
_IGNORED_HEADERS = frozenset({"host", "content-length", "connection", "transfer-encoding", "keep-alive", "te",
                              "expect", "upgrade", "accept-encoding"}) | analysis.SIGNATURE_HEADERS


class Conflict(MoxiehookError):
    """The entry cannot be resent from here (nothing to resend to, or only in-process)."""


class Busy(MoxiehookError):
    """Too many replays are running at once."""


@dataclass(frozen=True)
class ReplayTarget:
    """Where replays log and which config gives their endpoints: the same as ``replay``'s."""

    config_path: Path
    load_config: Callable[[], Config]
    forward_mode: bool = False  # listen --forward-to: relayed records go back to the app
    can_resend: bool = True  # False for a plain listen without --forward-to


@dataclass(frozen=True)
class Edit:
    """What the page changed before resending; None: keep the original's."""

    path: str | None = None
    headers: dict[str, str] | None = None
    body: Any = None
    has_body: bool = False

    @classmethod
    def from_json(cls, data: Any) -> Edit:
        if data is None:
            return cls()
        if not isinstance(data, dict) or set(data) - {"path", "headers", "body"}:
            raise UsageError('the edit must be a JSON object with "path", "headers" and/or "body"')
        path = data.get("path")
        if path is not None and not isinstance(path, str):
            raise UsageError('"path" must be a string')
        headers = data.get("headers")
        if headers is not None and (not isinstance(headers, dict)
                                    or not all(isinstance(v, str) for v in headers.values())):
            raise UsageError('"headers" must be an object of strings')
        if "body" in data:
            check_nesting(data["body"], "the edited body")
        return cls(path, headers, data.get("body"), "body" in data)


_slots = threading.BoundedSemaphore(MAX_REPLAYS_AT_ONCE)


def whole_body(entry: Entry, where: ReplayTarget) -> str | bytes:
    """The body an export sends: the entry's, or all of it, read again from the log, when the list keeps
    only its first MiB (a request a plain listen received is in no log: its first MiB is all there is)."""
    if not entry.truncated or entry.mode == "listen":
        return entry.body
    try:
        config = where.load_config()
        record = logquery.find(config.log_path(where.config_path), entry.id).record
        if not isinstance(record, DeliveryRecord) or "body" not in record.request:
            return entry.body
        return logquery.sent_bytes(record.request, "the body")
    except MoxiehookError:  # no longer in the log, or unreadable: what the list keeps
        return entry.body


def check_path(path: str) -> str:
    """An origin-form request target: ``/hooks?x=1``. Never a host, a scheme or a fragment."""
    if not path.startswith("/") or path.startswith("//") or len(path) > 8192:
        raise UsageError(f"path {path[:80]!r}: give a path starting with a single '/', e.g. /hooks/moxie")
    if any(not ("!" <= ch <= "~") for ch in path) or "#" in path or "\\" in path:
        raise UsageError("path: only visible ASCII without spaces, '#' or '\\' (percent-encode the rest)")
    return path


def replay(entry: Entry, edit: Edit, where: ReplayTarget) -> DeliveryRecord:
    """Resend ``entry`` (edited); the new record, already logged. Raises a MoxiehookError when it cannot."""
    if entry.mode == "listen" or not where.can_resend:
        raise Conflict("this request came to listen without --forward-to: there is nothing to resend it to "
                       "(run listen --forward-to URL, or resend it with the copied curl command)")
    if entry.mode == "app":
        raise Conflict(f"{entry.id} was delivered in-process (fire --app, the moxie fixture): it never went to "
                       f"the network; resend it with: moxiehook replay {entry.id} --app MODULE:ATTR")
    config = where.load_config()
    record = entry.record or logquery.find(config.log_path(where.config_path), entry.id).record
    if not isinstance(record, DeliveryRecord):
        raise NotFoundError(f"{entry.id} is not a delivery")
    endpoint = config.endpoints.get(record.endpoint)
    if endpoint is None:
        if record.mode != "forward":
            raise Conflict(f"endpoint {record.endpoint!r} is no longer in the config; nothing was sent")
        endpoint = Endpoint(name=record.endpoint)  # relayed without a configured endpoint: no auth to add
    if "body" not in (record.request or {}) and not edit.has_body:
        raise Conflict(f"{entry.id} has no logged body, so it cannot be replayed")
    event = record.event
    url = record.url
    if edit.path is not None:
        parts = urlsplit(url)
        target = urlsplit(check_path(edit.path))
        url = urlunsplit((parts.scheme, parts.netloc, target.path, target.query, ""))
    if edit.headers:
        headers, event = _merged_headers(endpoint, edit.headers, event, entry.headers)
        endpoint = replace(endpoint, headers=headers)
    config.endpoints[endpoint.name] = endpoint
    if edit.has_body:
        body, text = edit.body, isinstance(edit.body, str)
        # Typed as text: sent as these bytes, with the Content-Type a replay of the original sends.
        content_type = logquery.text_content_type(record.request) if text else None
        if text:
            logquery.text_bytes(body, "the edited body")
    else:
        body, text, content_type = logquery.body_to_resend(record.request, f"the body of {record.id}")
    typed = next((value for name, value in (edit.headers or {}).items() if name.lower() == "content-type"), None)
    if typed is not None and typed != logquery.logged_content_type(record.request):
        content_type = None  # the edit's own Content-Type, merged into the endpoint's headers above

    from moxiehook.send import dispatch

    job = dispatch.Job(endpoint=endpoint.name, event=event, url=url, body=body, event_id=record.event_id,
                       mode="replay", replay_of=record.id, text=text, content_type=content_type)
    if not _slots.acquire(blocking=False):
        raise Busy(f"{MAX_REPLAYS_AT_ONCE} replays are running already; try again when one has ended")
    try:
        summary = dispatch.run_jobs(where.config_path, config, [job],
                                    dispatch.RunOptions(concurrency=1, keep_records=True, endpoints=[endpoint.name]))
    finally:
        _slots.release()
    if not summary.records:
        raise Conflict("nothing was sent")
    return summary.records[0]


def _merged_headers(endpoint: Endpoint, edited: dict[str, str], event: str,
                    original: dict[str, str]) -> tuple[dict[str, str], str]:
    """The endpoint's custom headers with the page's changes, and the event type (``X-Event-Type``)."""
    headers = dict(endpoint.headers)
    hidden = CREDENTIAL_HEADERS | ({endpoint.auth.header.lower()} if endpoint.auth.header else set())
    unchanged = {name.lower(): value for name, value in original.items()}
    for name, value in edited.items():
        lowered = name.lower()
        if value == analysis.MASK or lowered in _IGNORED_HEADERS or unchanged.get(lowered) == value:
            continue  # a kept credential, a header of the connection, a signature made afresh, or no change
        if not name or any(not ("!" <= ch <= "~") or ch in '()<>@,;:\\"/[]?={}' for ch in name):
            raise UsageError(f"header name {name[:60]!r} is not a valid HTTP header name")
        if lowered in hidden:
            raise UsageError(f"{name}: credentials are not typed in here (the log would show them); leave it as "
                             "*** to send the endpoint's own, or change the endpoint's auth in the config")
        check_header_value(value, f"header {name}")
        if "${" in value:
            raise UsageError(f"{name}: ${{…}} is not expanded here; type the value itself")
        if lowered == "x-event-type":
            event = value
            continue
        canonical = _BASE_HEADERS.get(lowered, name)
        for existing in [key for key in headers if key.lower() == lowered and key != canonical]:
            del headers[existing]
        headers[canonical] = value
    return headers, event
