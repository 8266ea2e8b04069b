"""The inspector's HTTP app: the page, its JSON API, the event stream, and the guard around them.

It is served by the stdlib's ``ThreadingHTTPServer`` (one thread per connection; the HTTP
parsing is the stdlib's), bound to loopback. Because the page can resend webhooks, it is
guarded like a local admin page:

- ``Host`` must be the inspector's own (``127.0.0.1:PORT``, ``localhost:PORT``, ``[::1]:PORT``,
  or the address it was told to bind): anything else is ``403``, so a DNS-rebinding page whose
  name now points at 127.0.0.1 gets nothing;
- a request carrying an ``Origin`` other than the inspector's own is ``403`` (another page in
  the same browser may send requests, but not these);
- every ``POST`` and ``DELETE`` must carry ``X-Moxiehook-Token``, a random per-run token the page
  reads from its ``<meta name="moxiehook-token">``; without it, ``403`` and nothing happens;
- credentials are shown as ``***`` (they were never kept), and every answer forbids framing,
  sniffing and any script, style or connection that is not the inspector's own.

Bounded: request bodies (``MAX_REQUEST_BYTES``), the list (see ``store``), the number of open
streams (``MAX_STREAMS``), and each stream's backlog; a stream whose client has gone is closed
at its next write or keep-alive.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from moxiehook import catalog
from moxiehook.errors import MoxiehookError, NotFoundError, UsageError
from moxiehook.inspect import analysis
from moxiehook.inspect.replay import Busy, Conflict, Edit, ReplayTarget, replay, whole_body
from moxiehook.inspect.store import Entry, Store, from_record

MAX_REQUEST_BYTES = 2 * 1024 * 1024  # an edited body; webhooks are far smaller
MAX_STREAMS = 32
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1_000
KEEPALIVE_S = 15.0
STREAM_BATCHES_PER_S = 20  # a person sees no difference; a flood costs 20 wake-ups a second
STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
}
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class AppState:
    """What the handlers share: the list, the token, the allowed hosts, where replays go."""

    store: Store
    token: str
    target: ReplayTarget
    allowed_hosts: frozenset[str] = frozenset()
    keepalive_s: float = KEEPALIVE_S
    on_replayed: Callable[[Entry], None] | None = None
    streams: int = 0
    stopping: bool = False
    port: int = 0
    any_address: bool = False  # bound to 0.0.0.0 or ::: every address of the machine is its own

    def __post_init__(self) -> None:
        self.lock = threading.Lock()

    def allow(self, host: str, port: int) -> None:
        names = {*LOOPBACK, host if ":" not in host or host.startswith("[") else f"[{host}]"}
        self.allowed_hosts = frozenset(f"{name}:{port}".lower() for name in names)
        self.port = port
        self.any_address = host.strip("[]") in ("0.0.0.0", "::")

    def is_own(self, authority: str) -> bool:
        """Whether ``host:port`` (a Host header, an Origin's or a target's) names this inspector.

        Its loopback names and the address it was told to bind; listening on every address (0.0.0.0,
        ::), any IP address with its port too. Never another name: a DNS-rebinding page sends its own
        name, and an address cannot be rebound.
        """
        authority = authority.strip().lower()
        if authority in self.allowed_hosts:
            return True
        host, colon, port = authority.rpartition(":")
        if not self.any_address or not colon or port != str(self.port):
            return False
        bracketed = host.startswith("[") and host.endswith("]")
        try:
            address = ipaddress.ip_address(host[1:-1] if bracketed else host)
        except ValueError:
            return False
        return bracketed == (address.version == 6)


def page_html(token: str) -> bytes:
    text = resources.files("moxiehook.inspect").joinpath("static/index.html").read_text(encoding="utf-8")
    return text.replace("{{TOKEN}}", token).encode()


def _static(name: str) -> bytes:
    return resources.files("moxiehook.inspect").joinpath(f"static/{name}").read_bytes()


class InspectorServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], state: AppState) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.state = state
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a browser closing a tab mid-answer is routine, not a traceback


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: InspectorServer
    server_version = "moxiehook-inspector"
    sys_version = ""
    timeout = 60  # a connection that sends nothing for a minute is closed (streams write every 15 s)
    body_unread = False

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- dispatch ----------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._run(self._get)

    def do_HEAD(self) -> None:  # noqa: N802
        self._run(lambda *_: (_ for _ in ()).throw(HttpError(405, "HEAD is not served")))

    def do_POST(self) -> None:  # noqa: N802
        self._run(self._post, state_changing=True)

    def do_DELETE(self) -> None:  # noqa: N802
        self._run(self._delete, state_changing=True)

    def do_PUT(self) -> None:  # noqa: N802
        self._run(lambda *_: (_ for _ in ()).throw(HttpError(405, f"{self.command} is not served")))

    do_PATCH = do_OPTIONS = do_PUT  # noqa: N815

    def _run(self, handler: Callable[[str, dict[str, list[str]]], None], state_changing: bool = False) -> None:
        state = self.server.state
        # A body that is never read (the request refused, or a route that takes none) would be read as the
        # start of the next request on this connection: such a connection is closed after the answer.
        self.body_unread = bool(self.headers.get("Transfer-Encoding")) or (
            (self.headers.get("Content-Length") or "0").strip() not in ("", "0"))
        try:
            self._guard(state, state_changing)
            parts = urlsplit(self.path)
            handler(unquote(parts.path), parse_qs(parts.query))
        except HttpError as exc:
            self._json(exc.status, {"error": str(exc)})
        except (Conflict, NotFoundError, Busy, UsageError, MoxiehookError) as exc:
            status = {Conflict: 409, NotFoundError: 404, Busy: 429}.get(type(exc), 400)
            self._json(status, {"error": str(exc)})
        except (BrokenPipeError, ConnectionError):
            self.close_connection = True

    def _guard(self, state: AppState, state_changing: bool) -> None:
        """Host, Origin and (for POST/DELETE) token: refuse before anything is read or done."""
        hosts = self.headers.get_all("Host") or []
        # A request target in absolute form (``http://name/path``) names the host itself, and HTTP/1.1 then
        # ignores the Host header: that name must be the inspector's own too.
        target = urlsplit(self.path) if not self.path.startswith("/") else None
        if (len(hosts) != 1 or not state.is_own(hosts[0])
                or (target is not None and (target.scheme.lower() != "http" or not state.is_own(target.netloc)))):
            self.close_connection = True
            raise HttpError(403, "this inspector answers only to its own address (Host); "
                                 "open it at the URL it printed")
        origins = self.headers.get_all("Origin") or []
        if any(not origin.strip().lower().startswith("http://") or not state.is_own(origin.strip()[7:])
               for origin in origins):
            self.close_connection = True
            raise HttpError(403, "requests from another origin are refused")
        if state_changing:
            token = self.headers.get("X-Moxiehook-Token") or ""
            if not hmac.compare_digest(token.encode("utf-8", "replace"), state.token.encode()):
                self.close_connection = True
                raise HttpError(403, "missing or wrong X-Moxiehook-Token (the page's <meta name=moxiehook-token>)")

    # -- answers ------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        if self.body_unread:
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":  # an answer to HEAD is its headers only
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        # ASCII with \u escapes: a body may hold a lone surrogate ("\ud800" is valid JSON text), which
        # UTF-8 cannot encode.
        body = _compact(data).encode()
        self._send(status, body, "application/json; charset=utf-8")

    def _text(self, text: str, filename: str | None = None) -> None:
        extra = {"Content-Disposition": f'inline; filename="{filename}"'} if filename else None
        self._send(200, text.encode(), "text/plain; charset=utf-8", extra)

    def _read_json(self) -> Any:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise HttpError(411, "send the body with a Content-Length")
        raw_length = self.headers.get("Content-Length") or "0"
        if not raw_length.isascii() or not raw_length.isdigit():
            self.close_connection = True
            raise HttpError(400, "bad Content-Length")
        length = int(raw_length)
        if length > MAX_REQUEST_BYTES:
            self.close_connection = True
            raise HttpError(413, f"the body is over {MAX_REQUEST_BYTES // 1024 // 1024} MiB")
        data = self.rfile.read(length) if length else b""
        self.body_unread = False
        if not data.strip():
            return None
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise HttpError(415, "send the edit as application/json")
        parsed = analysis.parse_body(data.decode("utf-8", "replace"))
        if not parsed.ok:
            error = parsed.error or {}
            raise HttpError(400, f"the edit is not JSON: {error.get('message')} at line {error.get('line')}, "
                                 f"column {error.get('column')}")
        return parsed.value

    # -- routes -------------------------------------------------------------

    def _entry(self, entry_id: str) -> Entry:
        entry = self.server.state.store.get(entry_id)
        if entry is None:
            raise HttpError(404, f"no request {entry_id[:80]!r} in the inspector's list")
        return entry

    def _get(self, path: str, query: dict[str, list[str]]) -> None:
        state = self.server.state
        parts = path.strip("/").split("/")
        if path == "/":
            self._send(200, page_html(state.token), "text/html; charset=utf-8")
        elif len(parts) == 2 and parts[0] == "static" and parts[1] in STATIC:
            self._send(200, _static(parts[1]), STATIC[parts[1]])
        elif path == "/api/requests":
            limit = _int(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
            entries = state.store.newest(limit, _one(query, "event"), _one(query, "failed") in ("1", "true"),
                                         _one(query, "q"))
            self._json(200, {"requests": [entry.summary() for entry in entries]})
        elif path == "/api/stream":
            self._stream(state)
        elif path == "/api/events":
            self._json(200, {"events": catalog.names()})
        elif path == "/api/diff":
            self._diff(state, query)
        elif len(parts) == 3 and parts[:2] == ["api", "requests"]:
            self._json(200, self._entry(parts[2]).detail())
        elif len(parts) == 4 and parts[:2] == ["api", "requests"] and parts[3] in ("curl", "pytest"):
            entry = self._entry(parts[2])
            if parts[3] == "curl":
                self._text(analysis.curl_command(entry.url or "http://127.0.0.1/", entry.method, entry.headers,
                                                 whole_body(entry, state.target)))
            else:
                content_type = next((value for name, value in entry.headers.items()
                                     if name.lower() == "content-type"), None)
                self._text(analysis.pytest_test(entry.event, entry.body_text, entry.parsed,
                                                entry.url or "http://127.0.0.1/", entry.id, content_type))
        else:
            raise HttpError(404, "not found")

    def _diff(self, state: AppState, query: dict[str, list[str]]) -> None:
        a = self._entry(_one(query, "a") or "")
        if not a.parsed.ok:
            raise HttpError(422, f"{a.id}'s body is not JSON")
        if _one(query, "sample") in ("1", "true"):
            if not a.event or not catalog.is_known(a.event):
                raise HttpError(422, f"{a.event or 'this request'} has no sample in the catalog")
            other: Any = catalog.sample(a.event)
        else:
            b = self._entry(_one(query, "b") or "")
            if not b.parsed.ok:
                raise HttpError(422, f"{b.id}'s body is not JSON")
            other = b.parsed.value
        ignore = _one(query, "ignore_volatile") in ("1", "true")
        try:
            changes = analysis.diff(a.parsed.value, other, ignore)
        except RecursionError:
            raise HttpError(422, "the bodies are nested too deeply to compare") from None
        self._json(200, {"changes": changes})

    def _post(self, path: str, query: dict[str, list[str]]) -> None:
        parts = path.strip("/").split("/")
        if not (len(parts) == 4 and parts[:2] == ["api", "requests"] and parts[3] == "replay"):
            raise HttpError(404, "not found")
        state = self.server.state
        entry = self._entry(parts[2])
        edit = Edit.from_json(self._read_json())
        record = replay(entry, edit, state.target)
        new = from_record(record)
        state.store.add(new)
        if state.on_replayed is not None:
            state.on_replayed(new)
        self._json(200, {"id": new.id})

    def _delete(self, path: str, query: dict[str, list[str]]) -> None:
        if path != "/api/requests":
            raise HttpError(404, "not found")
        self.server.state.store.clear()
        self._json(200, {"cleared": True})

    def _stream(self, state: AppState) -> None:
        with state.lock:
            if state.streams >= MAX_STREAMS:
                raise HttpError(503, f"{MAX_STREAMS} streams are open already")
            state.streams += 1
        subscriber = state.store.subscribe()
        self.close_connection = True
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            for name, value in SECURITY_HEADERS.items():
                self.send_header(name, value)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"retry: 1000\n: open\n\n")
            self.wfile.flush()
            while not state.stopping:
                batch = subscriber.take(state.keepalive_s)
                if batch is None:
                    return  # fell behind, or the inspector stops: the page reconnects and refetches
                if not batch:
                    self.wfile.write(b": keep-alive\n\n")
                started = time.perf_counter()
                # json.dumps escapes every line break, so one data line holds one event whatever the body.
                self.wfile.write("".join(f"event: request\ndata: {_compact(entry.summary())}\n\n"
                                         for entry in batch).encode())
                self.wfile.flush()
                # At most a quarter of the time working, and at most STREAM_BATCHES_PER_S wake-ups a
                # second: under a flood the receiver answers first and the stream lags (bounded, see
                # store.MAX_PENDING), written in few large batches, instead of waking on every request.
                time.sleep(min(max(3 * (time.perf_counter() - started), 1 / STREAM_BATCHES_PER_S), 1.0))
        except (OSError, ValueError):
            return  # the page went away
        finally:
            state.store.unsubscribe(subscriber)
            with state.lock:
                state.streams -= 1


_compact = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _int(query: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    text = _one(query, name)
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()):
        raise HttpError(400, f"{name} must be a whole number")
    return max(low, min(high, int(text)))


def new_token() -> str:
    return secrets.token_urlsafe(32)
