"""The ``listen`` receiver: a local HTTP server that checks webhooks like a real one.

A stdlib ``ThreadingHTTPServer`` (HTTP/1.1 keep-alive, daemon threads) runs in
a background thread. For each request it checks the auth (Moxie's four modes:
none, basic, bearer, custom header) and, when given a signing secret, the
Standard Webhooks signature (5-minute tolerance); it answers 401 with the reason on a mismatch and the configured
status otherwise. Each request is handed to an ``on_request`` callback (the
CLI prints it) and optionally appended to a JSON-lines file.

Nothing here prints or imports typer/rich: ``demo`` runs the same server
in-process and the tests drive it directly.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import io
import json
import math
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from moxiehook.config import MASK, Auth, Endpoint, check_auth, check_signing_secret, expand, expand_checked
from moxiehook.errors import StorageError, UsageError
from moxiehook.http import tokens, wants_close
from moxiehook.ids import now_iso
from moxiehook.send import SignatureMismatch, secret_bytes, verify

if TYPE_CHECKING:
    from moxiehook.receive.forward import Forwarded

UNAUTHORIZED = 401
# A webhook is small; refuse a body that would fill memory rather than read it.
MAX_BODY_BYTES = 16 * 1024 * 1024
# A header line as RFC 9112 §5 has it: a token, then the colon at once (no folded lines).
_FIELD_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:")
# A whole head of such lines, none holding a NUL or a CR but the one ending it, ended by a blank
# line: what nearly every sender sends, checked in one step (anything else is checked line by line).
_PLAIN_HEAD = re.compile(rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\0\r\n]*\r?\n)*(?:\r?\n)?")
_WHITESPACE = re.compile(r"\s")  # what str.isspace calls whitespace
# Headers whose values are credentials: never written by --save.
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


# ---------------------------------------------------------------------------
# the check: what an incoming request must carry


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one request. ``None`` means 'not checked'."""

    ok: bool
    reason: str | None = None
    auth_ok: bool | None = None
    signature_ok: bool | None = None


@dataclass(frozen=True)
class Check:
    """The expected credentials, with every ``${VAR}`` already expanded.

    ``auth`` of type ``none`` accepts anything; ``signing_key`` (the bytes of a
    ``whsec_`` secret) turns on signature verification.
    """

    auth: Auth = field(default_factory=Auth)
    signing_key: bytes | None = None

    @property
    def active(self) -> bool:
        return self.auth.type != "none" or self.signing_key is not None

    def describe(self) -> str:
        """What is checked, for the startup line: ``bearer auth and signature``."""
        parts = [f"{self.auth.type} auth"] if self.auth.type != "none" else []
        if self.signing_key is not None:
            parts.append("Standard Webhooks signature")
        return " and ".join(parts) or "nothing"

    def credential_header(self) -> str | None:
        """The (lower-cased) header carrying the credential, if any."""
        if self.auth.type in ("basic", "bearer"):
            return "authorization"
        if self.auth.type == "custom" and self.auth.header:
            return self.auth.header.lower()
        return None


def build_check(auth: Auth | None = None, signing_secret: str | None = None,
                environ: Mapping[str, str] | None = None, where: str = "auth") -> Check:
    """A ``Check`` from auth settings as written in the config or options.

    ``${VAR}`` references are expanded now, so a missing variable stops
    ``listen`` before it starts (``MissingVariableError``, exit 2).
    """
    auth = auth or Auth()
    check_auth(auth)
    # Checked after expansion as fire checks it: a value no sender could send is refused now.
    expanded = Auth(type=auth.type, **{key: expand_checked(value, f"{where}.{key}", auth.type, key, environ)
                                      for key, value in auth.values().items()})
    key = None
    if signing_secret:
        # Checked after expansion: the value must be a real secret by now.
        secret = check_signing_secret(expand(signing_secret, "signing_secret", environ), "signing secret")
        key = secret_bytes(secret)
    return Check(auth=expanded, signing_key=key)


def check_for_endpoint(endpoint: Endpoint, environ: Mapping[str, str] | None = None) -> Check:
    """Check incoming requests exactly as ``endpoint`` would send them."""
    return build_check(endpoint.auth, endpoint.signing_secret, environ, where=f"endpoints.{endpoint.name}.auth")


def check_request(check: Check, headers: Mapping[str, str], body: bytes,
                  now: float | None = None) -> CheckResult:
    """Judge one request: auth first, then the signature; both are always reported."""
    lowered = {name.lower(): value for name, value in headers.items()}
    auth_reason = _auth_problem(check.auth, lowered) if check.auth.type != "none" else None
    signature_reason = None
    if check.signing_key is not None:
        try:
            verify(check.signing_key, lowered, body, now=now)
        except SignatureMismatch as exc:
            signature_reason = f"signature: {exc}"
        except (TypeError, UnicodeError):
            # A header that is not ASCII cannot be a valid signature; a receiver
            # must answer 401, not drop the connection on a comparison error.
            signature_reason = "signature: webhook headers are not ASCII"
    reasons = [reason for reason in (auth_reason, signature_reason) if reason]
    return CheckResult(
        ok=not reasons,
        reason="; ".join(reasons) or None,
        auth_ok=None if check.auth.type == "none" else auth_reason is None,
        signature_ok=None if check.signing_key is None else signature_reason is None,
    )


def _same(received: str, expected: str) -> bool:
    """Constant-time comparison of a received header value with the expected one.

    http.server decodes header bytes as latin-1, so encoding back with latin-1
    gives the bytes that arrived; the expected value is what a client sends (UTF-8).
    """
    try:
        got = received.encode("latin-1")
    except UnicodeEncodeError:
        got = received.encode("utf-8", "replace")
    return hmac.compare_digest(got, expected.encode("utf-8"))


def _auth_problem(auth: Auth, headers: Mapping[str, str]) -> str | None:
    """Why the request's credentials do not match ``auth``, or None when they do."""
    if auth.type == "custom":
        name = auth.header or ""
        value = headers.get(name.lower())
        if value is None:
            return f"missing {name} header"
        return None if _same(value, auth.value or "") else f"wrong {name} value"
    header = headers.get("authorization")
    if header is None:
        return "missing Authorization header"
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    if auth.type == "bearer":
        if scheme.lower() != "bearer":
            return f"Authorization is not a Bearer token (got scheme {scheme!r})"
        return None if _same(credential, auth.token or "") else "wrong bearer token"
    if scheme.lower() != "basic":
        return f"Authorization is not Basic auth (got scheme {scheme!r})"
    try:
        decoded = base64.b64decode(credential, validate=True)
    except (binascii.Error, ValueError):
        return "Authorization Basic credentials are not valid base64"
    expected = f"{auth.username}:{auth.password}".encode()
    return None if hmac.compare_digest(decoded, expected) else "wrong username or password"


# ---------------------------------------------------------------------------
# what was received


def parse_json(body: bytes) -> tuple[bool, Any]:
    """``(True, value)`` when ``body`` is strict JSON that can be written back as strict JSON, else ``(False, text)``.

    Text, not a value: ``NaN``/``Infinity`` and ``1e999`` (which Python's json reads
    as floats and writes back as bare words no other reader accepts), an escaped lone
    surrogate (``"\\ud800"``, which has no UTF-8 form), an integer too long to convert,
    nesting too deep to parse, and bytes that are not UTF-8. What is parsed is logged,
    saved and replayed, so a sender can make neither the receiver nor its log fail.
    """
    from moxiehook.catalog import strict_loads
    from moxiehook.errors import DataError

    if not body:
        return True, None
    text = body.decode("utf-8", "replace")
    try:
        # A sender's duplicate keys are its business: read as every JSON reader reads them.
        return True, strict_loads(body.decode("utf-8"), "the body", unique_keys=False)
    except (UnicodeDecodeError, DataError):
        return False, text


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the receiver saw it, and what it answered."""

    at: str  # ISO-8601 UTC
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]  # as received, in order
    body: bytes
    check: CheckResult
    status: int
    # --forward-to: what the app answered, None when not forwarded.
    forwarded: Forwarded | None = None
    # What went wrong on our side while handling it (a --save that failed): shown, never fatal.
    problems: tuple[str, ...] = ()

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    def json_body(self) -> tuple[bool, Any]:
        """``(True, value)`` when the body is JSON, else ``(False, text)`` (parsed once)."""
        return self._parsed

    @cached_property
    def _parsed(self) -> tuple[bool, Any]:
        return parse_json(self.body)

    def to_record(self, hidden_headers: frozenset[str] = _CREDENTIAL_HEADERS) -> dict[str, Any]:
        """The JSON line ``--save`` writes; credential headers are shown as ``***``."""
        _, body = self.json_body()
        return {
            "at": self.at,
            "method": self.method,
            "path": self.path,
            "headers": masked_headers(self.headers, hidden_headers),
            "body": body,
            "auth_ok": self.check.auth_ok,
            "signature_ok": self.check.signature_ok,
            "reason": self.check.reason,
            "status": self.status,
        }


def masked_headers(headers: tuple[tuple[str, str], ...], hidden: frozenset[str]) -> dict[str, str]:
    """Received headers as a dict for a record, credential headers (``hidden``, lower-case) as ``***``."""
    return {name: MASK if name.lower() in hidden else value for name, value in headers}


class _SaveFile:
    """``--save``: one JSON line per request, one ``write`` per line, under a lock."""

    def __init__(self, path: Path, hidden_headers: frozenset[str]) -> None:
        self.path = path
        self.hidden = hidden_headers
        self._lock = threading.Lock()
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StorageError(f"cannot open {path} for --save: {exc.strerror}") from None

    def append(self, request: ReceivedRequest) -> str | None:
        """Append one line; on failure (a full disk) return why, leaving only whole lines."""
        try:
            line = json.dumps(request.to_record(self.hidden), ensure_ascii=False, separators=(",", ":"))
        except (ValueError, RecursionError) as exc:  # parse_json only keeps what dumps can write
            return f"--save: cannot encode this request ({exc})"
        data = (line + "\n").encode()
        with self._lock:
            end = os.lseek(self._fd, 0, os.SEEK_END)
            try:
                written = os.write(self._fd, data)
            except OSError as exc:
                return f"--save: cannot write {self.path}: {exc.strerror}"
            if written != len(data):
                os.ftruncate(self._fd, end)  # take the partial line back
                return f"--save: cannot write {self.path}: disk full (short write)"
        return None

    def close(self) -> None:
        os.close(self._fd)


# ---------------------------------------------------------------------------
# the server


@dataclass(frozen=True)
class ReceiverConfig:
    """How the receiver listens and answers."""

    host: str = "127.0.0.1"
    port: int = 8787
    status: int = 204
    delay: float = 0.0
    check: Check = field(default_factory=Check)
    save: Path | None = None
    ready_file: Path | None = None  # written (holding the URL) once the port is bound; removed by stop()
    # A sender silent this long (mid-request, or between keep-alive requests) is dropped: every
    # wait is bounded, and a stalled sender does not hold its connection and thread for ever.
    read_timeout: float = 60.0


OnRequest = Callable[[ReceivedRequest], None]


class Relay(Protocol):
    """What the receiver forwards checked requests to (``listen --forward-to``, see ``forward``)."""

    def forward(self, request: ReceivedRequest) -> ReceivedRequest:
        """Forward ``request``; return it with ``status`` and ``forwarded`` (the app's answer) set."""

    def close(self) -> None: ...


class _Deadlines:
    """Connections whose request must have arrived (or answer been taken) by a time; past it, the socket is shut down.

    A per-read timeout stops a sender that goes silent, not one that sends a byte now
    and then: one watchdog thread (checking four times a second) bounds the whole
    request, head and body, whatever its pace, and the writing of its answer. Shutting
    the socket ends the handler's read or write at once, as if the sender had hung up.
    It is the only bound: the sockets have no timeout of their own (see ``_RequestHandler``).
    """

    CHECK_EVERY = 0.25

    def __init__(self) -> None:
        # Set and popped by the handlers without a lock (each a single dict operation, atomic in
        # CPython): arming costs a request no lock it would contend for with the others.
        self._due: dict[socket.socket, float] = {}
        # The sockets cut off, until their handler is done: to it, a cut looks like the sender hanging up,
        # and the stdlib takes a head that ends there for a whole one (see ``_RequestHandler.parse_request``).
        self.cut: set[socket.socket] = set()
        # The connections accepted and not yet shut, armed or not (one is disarmed while its request is
        # forwarded, or between its requests): the watchdog goes on after ``close`` until none is left.
        self._open: set[socket.socket] = set()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="moxiehook-deadlines", daemon=True)
        self._thread.start()

    def arm(self, sock: socket.socket, seconds: float) -> None:
        self._due[sock] = time.monotonic() + seconds

    def disarm(self, sock: socket.socket) -> None:
        self._due.pop(sock, None)

    def opened(self, sock: socket.socket) -> None:
        self._open.add(sock)

    def ended(self, sock: socket.socket) -> None:
        self._open.discard(sock)
        self._due.pop(sock, None)
        self.cut.discard(sock)

    def close(self) -> None:
        """Stop once no connection is open: one left open after ``stop`` is still bounded (then cut).

        Not once none is armed: a connection whose forward outlives ``stop`` is armed again for its
        answer and its next request, and its socket has no other bound.
        """
        self._closed.set()

    def _run(self) -> None:
        while True:
            if self._closed.is_set():
                if not self._open:
                    return
                time.sleep(self.CHECK_EVERY)
            else:
                self._closed.wait(self.CHECK_EVERY)
            now = time.monotonic()
            for sock, due in list(self._due.items()):  # a copy made in one step
                # Still the same deadline (not disarmed, nor armed again for the next request): cut it.
                if due <= now and self._due.get(sock) == due:
                    self._due.pop(sock, None)
                    self.cut.add(sock)
                    with contextlib.suppress(OSError):  # already closed
                        sock.shutdown(socket.SHUT_RDWR)


class _InFlight:
    """Requests being handled; ``stop`` waits for them so a relay never cuts a forward short."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = threading.Condition()
        self.stopping = False
        self.deadlines = _Deadlines()  # for requests still arriving (not yet in flight)

    def __enter__(self) -> None:
        with self._idle:
            self._count += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._idle:
            self._count -= 1
            if not self._count:
                self._idle.notify_all()

    def wait(self, timeout: float) -> bool:
        """Wait until no request is in flight (at most ``timeout`` s); True when none is."""
        with self._idle:
            return self._idle.wait_for(lambda: self._count == 0, timeout)


class RunningReceiver:
    """A receiver serving in a background thread: ``.port``, ``.url``, ``.stop()``."""

    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread, save: _SaveFile | None,
                 in_flight: _InFlight, relay: Relay | None, ready_file: Path | None) -> None:
        self._server = server
        self._thread = thread
        self._save = save
        self._in_flight = in_flight
        self._relay = relay
        self._ready_file = ready_file
        self.host: str = str(server.server_address[0])
        self.port: int = int(server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, grace: float = 0.0) -> bool:
        """Stop accepting, let requests in flight finish (up to ``grace`` s), then close everything.

        Idempotent. Returns False when some request was still in flight after ``grace``.
        A keep-alive connection that sends another request meanwhile is answered
        503 and closed. The ready file is removed first: a script polling it must
        not take a stopping receiver for a ready one.
        """
        _remove(self._ready_file)
        self._in_flight.stopping = True
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        finished = self._in_flight.wait(grace)
        self._in_flight.deadlines.close()
        self._server.server_close()
        if self._relay is not None:
            self._relay.close()
            self._relay = None
        if self._save is not None:
            self._save.close()
            self._save = None
        return finished


def _remove(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def parse_host(host: str) -> str:
    """The address to bind from ``--host``: ``[::1]`` (the form URLs use) becomes ``::1``.

    An empty host would bind every interface without saying so: refused.
    """
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not bare.strip():
        raise UsageError("--host: give an address (127.0.0.1, ::1, or 0.0.0.0 for every interface)")
    return bare


def start_receiver(config: ReceiverConfig, on_request: OnRequest | None = None,
                   relay: Relay | None = None) -> RunningReceiver:
    """Bind and start serving; raise ``UsageError`` when the address cannot be bound.

    ``on_request`` is called once per request, from the thread serving it,
    after the answer is decided and before it is sent: it must be thread-safe
    and quick (the CLI hands each request to its printing thread). With
    ``relay``, a request that passes the check is forwarded and answered with
    the app's answer (``--status`` and ``--delay`` do not apply).
    """
    if not 200 <= config.status <= 599:
        raise UsageError(f"--status {config.status}: use an HTTP status from 200 to 599")
    # nan and inf pass a plain "< 0" test, then make every request fail in time.sleep.
    if not (math.isfinite(config.delay) and config.delay >= 0):
        raise UsageError(f"--delay {config.delay}: must be a number of seconds, not negative")
    host = parse_host(config.host)
    hidden = _CREDENTIAL_HEADERS | {config.check.credential_header() or "authorization"}
    save = _SaveFile(config.save, frozenset(hidden)) if config.save is not None else None
    in_flight = _InFlight()
    try:
        server = _Server((host, config.port), _Handling(config, save, on_request, relay, in_flight))
    except (OSError, OverflowError) as exc:
        if save is not None:
            save.close()
        detail = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"cannot listen on {config.host}:{config.port}: {detail}") from None
    # A short poll interval makes stop() quick (shutdown waits for the next poll).
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="moxiehook-receiver", daemon=True)
    thread.start()
    running = RunningReceiver(server, thread, save, in_flight, relay, config.ready_file)
    if config.ready_file is not None:
        try:
            _write_ready_file(config.ready_file, running.url)
        except OSError as exc:
            running._ready_file = None  # noqa: SLF001 - not ours to remove
            running.stop()
            raise StorageError(f"cannot write --ready-file {config.ready_file}: {exc.strerror}") from None
    return running


def _write_ready_file(path: Path, url: str) -> None:
    """Write the URL whole, then rename: a script that sees the file can read all of it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(url + "\n")
        os.replace(temporary, path)
    finally:
        _remove(temporary)


@dataclass(frozen=True)
class _Handling:
    """What every request of one receiver is handled with (the server holds it; handlers read it)."""

    config: ReceiverConfig
    save: _SaveFile | None
    on_request: OnRequest | None
    relay: Relay | None
    in_flight: _InFlight


class _Server(ThreadingHTTPServer):
    # Daemon threads: a client holding a keep-alive connection open must not
    # keep the process alive after Ctrl-C. (SO_REUSEADDR, set by the stdlib,
    # still refuses a port another socket listens on: the error we report.)
    daemon_threads = True
    # 200 senders connecting at once must not overflow the accept queue (the default is 5).
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], handling: _Handling) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.handling = handling
        super().__init__(address, _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Counted here, in the accepting thread, so that ``stop`` (which waits for that thread)
        # cannot close the watchdog before a connection accepted just before it is known.
        self.handling.in_flight.deadlines.opened(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        try:
            super().shutdown_request(request)
        finally:
            self.handling.in_flight.deadlines.ended(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-request is routine for a receiver, not a traceback.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _BadRequest(Exception):
    """A request whose framing cannot be read: answered with ``status`` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _LineRecorder:
    """A request's stream that keeps the lines read through it (the header lines, see ``parse_request``)."""

    def __init__(self, stream: io.BufferedIOBase) -> None:
        self.stream = stream
        self.lines: list[bytes] = []

    def readline(self, limit: int = -1) -> bytes:
        line = self.stream.readline(limit)
        self.lines.append(line)
        return line


class _RequestHandler(BaseHTTPRequestHandler):
    """One connection of ``listen``: reads each request, checks it, answers (or relays) it.

    The stdlib reads the request line and headers; the body's framing is
    decided here (RFC 9112 §6.3) and a chunked body is decoded by
    ``moxiehook.http.read_chunked``, the decoder everything that receives shares.
    A request must arrive whole within the read timeout, and its answer must be taken within it:
    a watchdog cuts a silent or dribbling sender off, and one that does not read its answer.
    """

    protocol_version = "HTTP/1.1"  # keep-alive: fire reuses connections
    # The version assumed for a request line without one (the stdlib's is HTTP/0.9, whose answers
    # have no status line): the 400 for a bad request line must be an HTTP answer the sender can read.
    default_request_version = "HTTP/1.0"
    _answered = False
    # The request's headers as (name, value) pairs, read from ``self.headers`` once per request:
    # the email.Message behind it builds a new list on every ``items()``.
    _pairs: tuple[tuple[str, str], ...] = ()
    raw_requestline: bytes  # set by the stdlib (its stub does not declare it)

    @property
    def _handling(self) -> _Handling:
        server = self.server
        assert isinstance(server, _Server)
        return server.handling

    # No timeout on the sender's socket: the watchdog (``_Deadlines``) bounds every read and write
    # instead. A socket with a timeout costs a poll() before each recv and send (and the interpreter
    # lock given up and taken back around it): twice the system calls of a request without one.
    timeout = None

    def handle_one_request(self) -> None:
        """One request, which must arrive whole (head and body) within the read timeout of its first
        byte being awaited: a sender dribbling a byte at a time, or stalling mid-body, is cut off
        (the watchdog is disarmed once the body is read, so a forward is never cut)."""
        deadlines = self._handling.in_flight.deadlines
        deadlines.arm(self.connection, self._handling.config.read_timeout)
        try:
            super().handle_one_request()
        finally:
            deadlines.disarm(self.connection)

    def parse_request(self) -> bool:
        """The stdlib's parse, with what it lets through refused, and ``Connection: X, close`` honoured.

        The stdlib reads header lines up to LF, then hands them to the
        ``email`` parser, which also breaks lines at a bare CR: ``X-A: 1<CR>Authorization: …``
        would become two headers (and be relayed as two). RFC 9110 §5.5: a
        recipient of CR, LF or NUL in a field rejects the message; so does
        listen, with 400, looking at the lines as they arrived. The stdlib
        only sees a lone ``close`` in ``Connection``; the list is read here.
        """
        lines = _LineRecorder(self.rfile)
        self.rfile = lines  # type: ignore[assignment]  # read through it while the headers are parsed
        try:
            parsed = super().parse_request()
        finally:
            self.rfile = lines.stream
        if not parsed:
            return False
        if self.connection in self._handling.in_flight.deadlines.cut or not self._head_ended(lines.lines):
            # Cut off by the watchdog while its head was arriving, or the sender closed its side before
            # the blank line ending it: the stdlib takes what was read for a whole head, but it is an
            # incomplete message, no request (as a body shorter than its Content-Length is none).
            self.close_connection = True
            return False
        if len(self.requestline.split()) != 3:
            # ``GET /path`` with no version: the stdlib would serve it as HTTP/0.9, whose answer has
            # no status line. No webhook sender speaks it; refused with a status line it can read.
            self.close_connection = True
            self._answer(HTTPStatus.BAD_REQUEST, b"bad request line: no HTTP version\n", close=True)
            return False
        self._pairs = tuple(self.headers.items())
        # (The recorder saw the header lines only: the request line was read before it.)
        if not _PLAIN_HEAD.fullmatch(b"".join(lines.lines)) and not self._head_lines_ok(lines.lines):
            return False
        # Exactly one Host (RFC 9112 §3.2): with none or two, which server the sender meant,
        # or a proxy in front acted on, is unknown.
        hosts = len(self.headers.get_all("Host") or ())
        if hosts > 1 or (hosts == 0 and self.request_version == "HTTP/1.1"):
            self.close_connection = True
            self._answer(HTTPStatus.BAD_REQUEST, b"bad request: it needs one Host header\n", close=True)
            return False
        if wants_close(self._pairs):
            self.close_connection = True
        return True

    def _head_ended(self, lines: list[bytes]) -> bool:
        """Whether the request line and the head (its header ``lines`` as read) each ended with their line break."""
        return self.raw_requestline.endswith(b"\n") and bool(lines) and lines[-1] in (b"\r\n", b"\n")

    def _head_lines_ok(self, lines: list[bytes]) -> bool:
        """The header lines one by one: answered 400 (and False) when one holds NUL or a bare CR, or is no field."""
        if any(b"\0" in line or b"\r" in line.removesuffix(b"\n").removesuffix(b"\r") for line in lines):
            self.close_connection = True
            self._answer(HTTPStatus.BAD_REQUEST, b"bad header: NUL or a bare CR\n", close=True)
            return False
        # The email parser behind the stdlib takes a line that is not "name: value" for the
        # start of the body, dropping the headers after it (Content-Length among them) and
        # leaving the body to be read as the next request. Such a line is refused (RFC 9112
        # §5.1: whitespace before the colon is 400), and so is a folded line (obs-fold, §5.2):
        # its CR LF would stay inside the value.
        if not all(_FIELD_LINE.match(line) for line in lines if line not in (b"\r\n", b"\n", b"")):
            self.close_connection = True
            self._answer(HTTPStatus.BAD_REQUEST, b"bad header line: not 'name: value'\n", close=True)
            return False
        return True

    def _serve(self) -> None:
        self._answered = False
        try:
            self._handle()
        except (ConnectionError, TimeoutError):
            raise  # the sender went away, or stalled past the timeout: nothing to answer
        except Exception as exc:  # noqa: BLE001 - every request gets an answer, never a dropped connection
            if not self._answered:
                self._answer(HTTPStatus.INTERNAL_SERVER_ERROR,
                             f"moxiehook listen: {type(exc).__name__}\n".encode(), close=True)

    def _handle(self) -> None:
        in_flight = self._handling.in_flight
        try:
            body = self._read_body()
        except _BadRequest as exc:
            self._answer(exc.status, f"{exc}\n".encode(), close=True)
            return
        in_flight.deadlines.disarm(self.connection)
        # Only a request that has fully arrived is in flight (what stop waits for): a sender still
        # sending at Ctrl-C has nothing forwarded yet, and is not waited for.
        with in_flight:
            if in_flight.stopping:
                self._answer(HTTPStatus.SERVICE_UNAVAILABLE, b"stopping\n", close=True)
                return
            self._respond(body)

    def _respond(self, body: bytes) -> None:
        handling = self._handling
        config = handling.config
        result = check_request(config.check, dict(self._pairs), body)
        status = config.status if result.ok else UNAUTHORIZED
        request = ReceivedRequest(
            at=now_iso(), method=self.command, path=self.path,
            headers=self._pairs, body=body, check=result, status=status,
        )
        if handling.save is not None:
            problem = handling.save.append(request)
            if problem is not None:
                request = replace(request, problems=(problem,))
        if handling.relay is not None and result.ok:
            request = handling.relay.forward(request)  # logged before we answer
            if handling.on_request is not None:
                handling.on_request(request)
            self._answer_forwarded(request)
            return
        if handling.on_request is not None:
            handling.on_request(request)
        if config.delay:
            time.sleep(config.delay)
        answer = f"unauthorized: {result.reason}\n".encode() if not result.ok else b""
        self._answer(status, answer)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET = do_HEAD = _serve  # noqa: N815

    def _read_body(self) -> bytes:
        """The request's body, framed as RFC 9112 §6.3 says; ``_BadRequest`` when it cannot be.

        ``Transfer-Encoding`` wins over ``Content-Length`` (and the connection
        is closed after such a request: one of the two was meant for someone
        else). Only ``chunked`` alone is decoded: a body whose last coding is
        not chunked has no knowable end (400), and a coding before chunked
        (``gzip, chunked``) is not one this receiver undoes (501).
        """
        if self.headers.defects:  # a line that is no header (``Content-Length : 8``, a folded line) ended the head
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "bad header line (whitespace before the colon, or folded?)")
        for name, value in self._pairs:
            if not name or _WHITESPACE.search(name):
                raise _BadRequest(HTTPStatus.BAD_REQUEST, "bad header field name (whitespace before the colon?)")
            if "\r" in value or "\n" in value or "\0" in value:  # obs-fold (RFC 9112 §5.2): refused, as a line break
                raise _BadRequest(HTTPStatus.BAD_REQUEST, f"bad header {name}: a folded line, CR, LF or NUL in it")
        codings = tokens(self._pairs, "transfer-encoding")
        if codings:
            if "content-length" in self.headers:
                self.close_connection = True
            if codings[-1] != "chunked":
                raise _BadRequest(HTTPStatus.BAD_REQUEST, "bad Transfer-Encoding: chunked must come last")
            if codings != ["chunked"]:
                raise _BadRequest(HTTPStatus.NOT_IMPLEMENTED, f"unsupported Transfer-Encoding: {', '.join(codings)}")
            from moxiehook.http import BadChunkedBody, BodyTooLarge, read_chunked  # h11: loaded when first needed

            try:
                return read_chunked(self.rfile, MAX_BODY_BYTES)  # type: ignore[arg-type]  # a BufferedReader
            except BodyTooLarge:
                raise _BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large") from None
            except BadChunkedBody:
                raise _BadRequest(HTTPStatus.BAD_REQUEST, "bad chunked body") from None
        # Only spaces and tabs are optional whitespace around a value: ``<VT>5`` or ``5<FF>`` (which
        # str.strip would take for 5) is no length another reader of the same bytes would agree on.
        lengths = {value.strip(" \t") for value in self.headers.get_all("Content-Length") or ["0"]}
        raw = lengths.pop() if len(lengths) == 1 else ""  # two different lengths: which one ends the body?
        if not (raw.isascii() and raw.isdigit()):  # also refuses "-5", "+5" and "²", which int() would take
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "bad Content-Length")
        length = int(raw)
        if length > MAX_BODY_BYTES:
            raise _BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) != length:  # the sender closed its side early: an incomplete request is none
            raise ConnectionError("the sender closed the connection inside the body")
        return body

    def _writing(self) -> None:
        """Bound the answer's writing as the request's reading is: a sender that never reads it is cut off."""
        self._handling.in_flight.deadlines.arm(self.connection, self._handling.config.read_timeout)

    def _answer_forwarded(self, request: ReceivedRequest) -> None:
        answer = request.forwarded
        assert answer is not None  # a relay always sets it
        self._answered = True
        self._writing()
        # The app's own Date and Server headers are among its headers: add none of ours.
        self.send_response_only(request.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        # The length of the body sent; none for HEAD (it would have to be a GET's length, RFC 9110 §8.6).
        if request.status not in (204, 304) and self.command != "HEAD" and not any(
                name.lower() == "content-length" for name, _ in answer.headers):
            self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD" and request.status not in (204, 304):
            self.wfile.write(answer.body)

    def _answer(self, status: int, body: bytes, close: bool = False) -> None:
        self._answered = True
        self._writing()
        self.send_response(status)
        if status not in (204, 304):  # these carry no body, not even a length
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if status not in (204, 304) and self.command != "HEAD":
            self.wfile.write(body)

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header, formatted once a second (the stdlib formats it anew for every answer)."""
        if timestamp is not None:
            return super().date_time_string(timestamp)
        global _date
        second = int(time.time())
        cached = _date
        if cached[0] != second:
            cached = _date = (second, super().date_time_string(second))
        return cached[1]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the CLI prints each request its own way


_date: tuple[int, str] = (-1, "")  # (Unix second, its Date header value), replaced whole
