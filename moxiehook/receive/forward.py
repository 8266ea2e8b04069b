"""``listen --forward-to``: relay each checked request to the app and log it as a delivery.

The receiver (``server``) checks a request as always; one that passes comes
here. It is forwarded once (the sender's retries are the real ones) to the
app's URL with the received path and query, the same method, body and
end-to-end headers; the app's answer goes back to the sender unchanged, so
Moxie (or ``fire``) sees the real status and disables the endpoint on a 401
exactly as without the relay. No answer is a ``502`` (refused, reset) or a
``504`` (past the timeout).

Every forward is a delivery record (``mode = "forward"``), written
to the log BEFORE the sender gets its answer: once a sender has seen the
answer, ``logs``/``replay`` can see the delivery. Credentials that came in
are logged as ``***`` and masked in the logged answer.

Concurrency: each connection has its own thread (the stdlib server); at most
``FORWARD_CONCURRENCY`` forwards are in flight at once, so a slow app holds
that many threads, not the process. A request that cannot get a slot within
the timeout is a ``504``.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from secrets import token_hex
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from moxiehook import ids
from moxiehook.config import check_url
from moxiehook.errors import StorageError, UsageError, ValidationError
from moxiehook.log import LOGGED_BODY_LIMIT, Attempt, DeliveryRecord, LogWriter, raw_fields
from moxiehook.receive.server import Check, ReceivedRequest, masked_headers

FORWARD_CONCURRENCY = 64
BAD_REQUEST = 400
BAD_GATEWAY = 502
GATEWAY_TIMEOUT = 504
LOOP_DETECTED = 508  # RFC 5842: the request came back to a relay it had already passed
# Each relay names itself in the ``Via`` header it adds (RFC 9110 §7.6.3): ``1.1 moxiehook-3f9a0c1e``.
# A request whose Via already holds this relay's name has gone round a loop.
VIA_PREFIX = "moxiehook-"
# The record's endpoint when listen checks no configured endpoint (replayed without auth, with a warning).
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

    @property
    def sent(self) -> bool:
        """False when the relay refused the request itself (a bad target, a loop): nothing went to the app."""
        return bool(self.url)


@dataclass(frozen=True)
class ForwardConfig:
    """Where and how to forward, and where to log."""

    url: str  # the app's base URL; the received path and query are appended
    log_path: Path
    timeout: float
    endpoint: str = DEFAULT_ENDPOINT
    verify: bool | str = True


def check_forward_url(url: str, host: str | None = None, port: int | None = None) -> str:
    """``--forward-to`` must be an http(s) URL with a host and a port, neither query nor fragment.

    With ``host`` and ``port`` (where listen binds, or is bound), a URL leading
    back to that listener is refused: every request would be forwarded to itself.
    """
    check_url(url, "--forward-to")  # ValidationError: exit 2 naming --forward-to (credentials included)
    parts = urlsplit(url)
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise UsageError(f"--forward-to {url!r}: give a base URL, without credentials, query or fragment "
                         "(the received path and query are appended)")
    if parts.port == 0:
        raise UsageError(f"--forward-to {url!r}: port 0 is no place to connect to; give your app's port")
    if host is not None and port is not None and port != 0 and is_self_forward(url, host, port):
        raise UsageError(f"--forward-to {url!r} is this listen's own address ({host}:{port}): each request would "
                         "be forwarded to itself; give your app's address (another port)")
    return url


def is_self_forward(url: str, host: str, port: int) -> bool:
    """Whether ``url`` leads back to a listener bound to ``host``:``port`` (``listen --forward-to`` itself).

    Compared by address, not by spelling: ``localhost`` and ``127.0.0.1`` are one
    place, and a listener bound to ``0.0.0.0`` (or ``::``) is reached through every
    local address (``127.0.0.2``, the machine's own IPs; ``0.0.0.0`` itself connects
    to this machine). Another port, or a loopback address it is not bound to, is
    another socket. A host that does not resolve cannot be this listener. What this
    cannot see (a proxy or a second relay in between) the ``Via`` check catches.
    """
    parts = urlsplit(url)
    try:
        target_port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    if target_port != port:
        return False
    bound = _addresses(host, port)
    wildcard = any(address.is_unspecified for address in bound)
    for address in _addresses(parts.hostname or "", port):
        if address in bound or address.is_unspecified:
            return True
        if wildcard and (address.version == 4 or any(b.version == 6 for b in bound)) and _is_local(address):
            return True
    return False


def _addresses(host: str, port: int) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The IP addresses ``host`` stands for (IPv4-mapped IPv6 ones as IPv4); empty when it does not resolve."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return set()
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for info in infos:
        try:
            address = ipaddress.ip_address(str(info[4][0]).partition("%")[0])
        except ValueError:
            continue
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        found.add(address)
    return found


def _is_local(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether ``address`` belongs to this machine: a socket can be bound to it."""
    if address.is_loopback:
        return True
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((str(address), 0))
    except OSError:
        return False
    return True


class BadTarget(ValueError):
    """A request target the relay will not forward: answered ``400``, nothing is sent or logged."""


_ABSOLUTE_FORM = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def relay_target(target: str) -> str:
    """The path and query to forward for a received request target; ``BadTarget`` when there is none.

    Only origin-form (``/path?query``, RFC 9112 §3.2.1) is relayed. Absolute-form
    (``http://host/path?query``, what a client talking to a proxy sends) is reduced
    to its path and query: its host is never used, so a sender cannot pick where
    the relay sends. Everything else is refused: authority-form (``host:port``),
    asterisk-form (``*``), a bare ``@host:port/x`` or ``0/x`` (which glued to the
    base URL as text would change its host or port), and dot segments (``..``,
    ``%2e%2e``), which would climb out of the ``--forward-to`` path once the app
    normalises them. A fragment, a backslash, or a byte that is not printable
    ASCII has no place in a request target either.
    """
    if not target or not target.isascii() or not target.isprintable() or " " in target:
        raise BadTarget("the request target is not printable ASCII")
    if "#" in target or "\\" in target:
        raise BadTarget("the request target holds a fragment or a backslash")
    if not target.startswith("/"):
        if not _ABSOLUTE_FORM.match(target):
            raise BadTarget("the request target is not a path (origin-form, /path?query)")
        try:
            parts = urlsplit(target)
        except ValueError:
            raise BadTarget("the request target is not a valid absolute URL") from None
        if parts.scheme.lower() not in ("http", "https"):
            raise BadTarget("the request target is an absolute URL that is not http(s)")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if not target.startswith("/"):
            raise BadTarget("the request target is not a path (origin-form, /path?query)")
    # Decoded as far as an app might decode it (%2e is '.', %2f is '/', %252e is '%2e'...).
    path = target.partition("?")[0]
    for _ in range(4):
        if "\\" in path:
            raise BadTarget("the request target holds a fragment or a backslash")
        if any(segment in (".", "..") for segment in path.split("/")):
            raise BadTarget("the request target has a dot segment (. or ..)")
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    return target


def target_url(base: str, received_target: str) -> str:
    """The URL to forward to: ``base``'s scheme and host, its path + the received path, the received query.

    Built from parts (never by gluing text to the base URL), then checked: the
    result has the base URL's scheme and host:port, whatever was received.
    Raises ``BadTarget`` for a target ``relay_target`` refuses.
    """
    relayed = relay_target(received_target)
    base_parts = urlsplit(base)
    path, _, query = relayed.partition("?")
    url = urlunsplit((base_parts.scheme, base_parts.netloc, base_parts.path.rstrip("/") + path, query, ""))
    parts = urlsplit(url)
    if (parts.scheme, parts.netloc) != (base_parts.scheme, base_parts.netloc):  # cannot happen; never send if it does
        raise BadTarget("the request target would change where the relay sends")
    return url


def relayed_url_problem(url: str) -> str | None:
    """Why a logged forward record's URL must not be replayed as it is, or None.

    The relay only ever logs ``--forward-to`` + an origin-form path; a log line
    holding credentials, a fragment or dot segments in its URL was written by an
    older relay that a sender could steer, or edited by hand: its URL is not the
    app the user named, so ``replay`` does not send there (``--to`` still can).
    """
    try:
        check_url(url)
        parts = urlsplit(url)
        if parts.fragment or "#" in url:
            return "it has a fragment"
        relay_target(urlunsplit(("", "", parts.path or "/", parts.query, "")))
    except (ValidationError, ValueError, BadTarget) as exc:
        return str(exc)
    return None


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
        # This relay's name in Via: random per process, so two relays never share one.
        self.via = f"{VIA_PREFIX}{token_hex(4)}"

    def forward(self, request: ReceivedRequest) -> ReceivedRequest:
        try:
            url = target_url(self.config.url, request.path)
        except BadTarget as exc:
            return _refused(request, BAD_REQUEST, f"{exc}; only /path?query is relayed")
        vias = [value for name, value in request.headers if name.lower() == "via"]
        if self.via in _via_names(vias):
            return _refused(request, LOOP_DETECTED, "loop detected: this request has already passed this relay "
                            "(--forward-to leads back to listen)")
        headers = [(name, value) for name, value in request.headers if name.lower() != "via"]
        headers.append(("Via", ", ".join([*vias, f"1.1 {self.via}"])))
        started = time.perf_counter()
        if self._slots.acquire(timeout=self.config.timeout):
            try:
                answer = self._relay.request(request.method, url, headers, request.body, self.config.timeout)
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
            # The sender is told why, never where: the app's URL is the user's business, not the sender's.
            body = f"moxiehook listen: the app did not answer ({_without_place(answer.error, url)})\n".encode()
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
        is_json, body = request.json_body()
        logged_request = {"method": request.method, "headers": masked_headers(request.headers, self._hidden),
                          "body": body}
        # Not JSON (or JSON the log cannot carry), or nothing at all: the bytes as they came (text, or
        # base64 when not UTF-8), replayed as these bytes, never as a JSON value (an empty body as null).
        if not is_json or not request.body:
            logged_request.update(raw_fields(request.body))
        event_id = request.header("webhook-id")
        return DeliveryRecord(
            id=ids.delivery_id(),
            # A signed request keeps its webhook-id, so a replay carries the same id (receivers deduplicate).
            event_id=event_id if event_id is not None and _usable_id(event_id) else ids.event_id(),
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
            request=logged_request,
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



def _refused(request: ReceivedRequest, status: int, reason: str) -> ReceivedRequest:
    """The relay's own answer to a request it does not forward: nothing is sent to the app or logged."""
    body = f"moxiehook listen: {reason}\n".encode()
    forwarded = Forwarded("", None, [("Content-Type", "text/plain; charset=utf-8")], body, reason, 0.0, None)
    return replace(request, status=status, forwarded=forwarded)


def _via_names(values: list[str]) -> set[str]:
    """The relays named in ``Via`` header values: ``1.1 moxiehook-ab12, 1.0 proxy`` -> {moxiehook-ab12, proxy}."""
    names = set()
    for value in values:
        for hop in value.split(","):
            words = hop.split()
            if len(words) >= 2:
                names.add(words[1])
    return names


def _without_place(error: str | None, url: str) -> str:
    """``error`` for the sender: only its kind (``connection error``) when it names the app's host or port."""
    if not error:
        return "no answer"
    parts = urlsplit(url)
    places = [place for place in (parts.netloc, parts.hostname) if place]
    if any(place in error for place in places):
        return error.partition(":")[0]
    return error
