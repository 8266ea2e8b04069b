"""``listen --forward-to``: relay each checked request to the app and log it as a delivery.

The receiver (``server``) checks a request as always; one that passes comes
here. It is forwarded once (the sender's retries are the real ones) to the
app's URL with the received path and query, the same method, body and
end-to-end headers; the app's answer goes back to the sender unchanged, so
Moxie (or ``fire``) sees the real status and disables the endpoint on a 401
exactly as without the relay. No answer is a ``502`` (refused, reset) or a
``504`` (past the timeout).

Every forward is a delivery record (SPEC §6, ``mode = "forward"``), written
to the log BEFORE the sender gets its answer: once a sender has seen the
answer, ``logs``/``replay`` can see the delivery. Credentials that came in
are logged as ``***`` and masked in the logged answer.

Concurrency: each connection has its own thread (the stdlib server); at most
``FORWARD_CONCURRENCY`` forwards are in flight at once, so a slow app holds
that many threads, not the process. A request that cannot get a slot within
the timeout is a ``504``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from moxiehook import ids
from moxiehook.config import check_url
from moxiehook.errors import StorageError, UsageError
from moxiehook.log import LOGGED_BODY_LIMIT, Attempt, DeliveryRecord, LogWriter
from moxiehook.receive.server import Check, ReceivedRequest, masked_headers

FORWARD_CONCURRENCY = 64
BAD_GATEWAY = 502
GATEWAY_TIMEOUT = 504
# The record's endpoint when listen checks no configured endpoint (SPEC §6).
DEFAULT_ENDPOINT = "listen"
_SIGNATURE_HEADERS = frozenset({"webhook-id", "webhook-timestamp", "webhook-signature"})
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


@dataclass(frozen=True)
class Forwarded:
    """What the app answered to one forwarded request (``ReceivedRequest.forwarded``)."""

    url: str  # where it went
    app_status: int | None  # None: no answer (then the sender got 502 or 504)
    headers: list[tuple[str, str]]  # sent back to the sender
    body: bytes
    error: str | None
    duration_ms: float
    record_id: str | None  # the delivery record, None when the log could not be written


@dataclass(frozen=True)
class ForwardConfig:
    """Where and how to forward, and where to log."""

    url: str  # the app's base URL; the received path and query are appended
    log_path: Path
    timeout: float
    endpoint: str = DEFAULT_ENDPOINT
    verify: bool | str = True


def check_forward_url(url: str) -> str:
    """``--forward-to`` must be an http(s) URL with a host and neither query nor fragment."""
    check_url(url, "--forward-to")  # ValidationError: exit 2 naming --forward-to
    parts = urlsplit(url)
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise UsageError(f"--forward-to {url!r}: give a base URL, without credentials, query or fragment "
                         "(the received path and query are appended)")
    return url


def target_url(base: str, received_path: str) -> str:
    """``base`` + the received path and query: ``http://app/hooks`` + ``/a?b=1``."""
    if not received_path.startswith("/"):  # absolute-form (a proxy-style request): keep path and query
        parts = urlsplit(received_path)
        received_path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return base.rstrip("/") + received_path


class Forwarder:
    """The ``Relay`` the receiver calls: forward, log, and hand back the app's answer."""

    def __init__(self, config: ForwardConfig, check: Check) -> None:
        from moxiehook.http import RelayClient

        self.config = config
        self._hidden = _CREDENTIAL_HEADERS | {check.credential_header() or "authorization"}
        # The expected credentials, to mask if the app echoes them (received ones are added per request).
        self._secrets = tuple(value for value in check.auth.values().values() if value)
        self._slots = threading.BoundedSemaphore(FORWARD_CONCURRENCY)
        self._writer = LogWriter(config.log_path)  # opened now: an unwritable log stops listen at start
        verify = config.verify if urlsplit(config.url).scheme == "https" else None
        self._relay = RelayClient(verify)
        self._closed = False

    def forward(self, request: ReceivedRequest) -> ReceivedRequest:
        url = target_url(self.config.url, request.path)
        started = time.perf_counter()
        if self._slots.acquire(timeout=self.config.timeout):
            try:
                answer = self._relay.request(request.method, url, list(request.headers), request.body,
                                             self.config.timeout)
            finally:
                self._slots.release()
        else:
            from moxiehook.http import RelayAnswer

            answer = RelayAnswer(None, [], b"", f"timeout: no forwarding slot free within {self.config.timeout:g} s "
                                 f"({FORWARD_CONCURRENCY} forwards in flight)", timed_out=True)
        duration = round((time.perf_counter() - started) * 10_000) / 10
        if answer.status is None:
            status = GATEWAY_TIMEOUT if answer.timed_out else BAD_GATEWAY
            headers = [("Content-Type", "text/plain; charset=utf-8")]
            body = f"moxiehook listen: the app at {url} did not answer ({answer.error})\n".encode()
        else:
            status, headers, body = answer.status, answer.headers, answer.body
        record = self._record(request, url, answer, duration)
        problems = request.problems
        record_id: str | None = record.id
        try:
            self._writer.append(record)  # before the sender sees any answer
        except StorageError as exc:
            problems += (str(exc),)
            record_id = None
        forwarded = Forwarded(url, answer.status, headers, body, answer.error, duration, record_id)
        return replace(request, status=status, forwarded=forwarded, problems=problems)

    def _record(self, request: ReceivedRequest, url: str, answer: Any, duration: float) -> DeliveryRecord:
        from moxiehook.send import MIN_REDACTED, redact_text, status_text

        delivered = answer.status is not None and 200 <= answer.status <= 299
        received = [value for name, value in request.headers if name.lower() in self._hidden]
        secrets = tuple(sorted({part for value in (*received, *self._secrets)
                                for part in (value, *value.split()) if len(part) >= MIN_REDACTED},
                               key=len, reverse=True))
        response = None
        if answer.status is not None:
            response = {
                "status": answer.status,
                "headers": {name.lower(): redact_text(value, secrets) for name, value in answer.headers},
                "body": redact_text(answer.body[:LOGGED_BODY_LIMIT].decode("utf-8", "replace"), secrets),
            }
        if delivered:
            error = None
        elif answer.status is None:
            error = answer.error
        else:
            error = f"HTTP {status_text(answer.status)}"
        _, body = request.json_body()
        event_id = request.header("webhook-id")
        return DeliveryRecord(
            id=ids.delivery_id(),
            # A signed request keeps its webhook-id, so a replay carries the same id (receivers deduplicate).
            event_id=event_id if _usable_id(event_id) else ids.event_id(),
            event=request.header("X-Event-Type") or "",
            endpoint=self.config.endpoint,
            url=url,
            mode="forward",
            replay_of=None,
            at=request.at,
            outcome="delivered" if delivered else "failed",
            status=answer.status,
            error=redact_text(error, secrets) if error else None,
            duration_ms=duration,
            attempts=[Attempt(request.at, answer.status, answer.error, duration)],
            request={"method": request.method,
                     "headers": masked_headers(request.headers, self._hidden),
                     "body": body},
            response=response,
        )

    def close(self) -> None:
        """Close the connections and the log; idempotent (the receiver and listen may both call it)."""
        if self._closed:
            return
        self._closed = True
        self._relay.close()
        self._writer.close()


def _usable_id(value: str | None) -> bool:
    return bool(value) and len(value or "") <= 128 and (value or "").isascii() and (value or "").isprintable()

