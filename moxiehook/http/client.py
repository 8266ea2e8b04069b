"""moxiehook's HTTP/1.1 client: keep-alive sockets under one deadline per attempt, around h11.

A delivery needs a small part of an HTTP client, always the same: one request
of known bytes, one answer read up to a cap, nothing followed, decoded or
stored. This module is that part; h11 reads every answer (status line,
headers, ``Content-Length``, chunked framing, keep-alive), so no byte of what a
server sends is interpreted here. What the module adds is what h11 leaves to
its caller, and what httpx does not give (see docs/performance.md):

- An attempt ends by its deadline (``time.monotonic()``): connect, TLS
  handshake, proxy tunnel, write and every read get what is left of it, so a
  server dribbling a byte a second cannot hold an attempt past its timeout.
- At most ``limit`` bytes of an answer's body are kept, and at most
  ``MAX_HEAD`` bytes of status lines and headers are read, however many reads
  they arrive in. A connection whose answer was not read to its end, or that
  holds bytes past it, is closed, never reused.
- The request's head and body leave in one write (one ``sendall``): the
  kernel's loopback path is most of a delivery's cost, and two writes doubled it.
- A server that answers before reading the whole request and closes (an early
  ``413``, RFC 9112 §9.5) is heard: when the write fails, the answer already
  sent is still read and returned.
- Redirects are never followed: a 3xx is returned like any other answer.
- A kept-alive connection is checked before reuse (the server may have closed
  it while idle); a request is never sent twice by this module: a failed
  attempt is the caller's to retry, on a fresh connection.
- TLS uses the context given (``tls_context``), with SNI and the host name
  checked; proxies come from ``Proxies``, https:// through a ``CONNECT`` tunnel.

Every error of h11, ``ssl`` and the OS becomes a ``TransportError`` in
``errors.failure``.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import h11

from moxiehook.http.errors import ParserError, TransportError, failure
from moxiehook.http.limits import MAX_HEAD, MAX_INFORMATIONAL, RECV_SIZE
from moxiehook.http.proxies import Proxies, Route, route

if TYPE_CHECKING:
    import ssl

# What h11 is told of the request: only the method shapes how an answer is framed (a HEAD
# answer has no body; a 2xx to CONNECT opens a tunnel). The bytes sent are built below.
_PARSER_HEADERS = [("Host", "moxiehook")]
_WIRE_ERRORS = (OSError, ParserError, TransportError)
_REQUEST_EVENTS: dict[tuple[str, str], h11.Request] = {}
_END = h11.EndOfMessage()


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # names in lower case; repeated headers joined with ", "
    raw_headers: list[tuple[str, str]]  # as the server sent them: case, order and repeats kept
    body: bytes  # at most ``limit`` bytes; shorter when the server cut it short or time ran out
    # Why the body was not read to its end, or None: "limit" (longer than the limit),
    # "timeout" (the deadline came first), "closed" (the server stopped early or framed it badly).
    unfinished: str | None = None


# ---------------------------------------------------------------------------
# one connection


class _Connection:
    """A socket; every operation on it gets what is left of the attempt's time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, data: bytes, deadline: float) -> None:
        self.sock.settimeout(_left(deadline))
        self.sock.sendall(data)

    def recv(self, deadline: float) -> bytes:
        """What the server sent next; ``b""`` at the end of the stream."""
        self.sock.settimeout(_left(deadline))
        return self.sock.recv(RECV_SIZE)

    def idle_and_open(self) -> bool:
        """Whether a kept-alive connection can carry another request.

        Nothing may be waiting to be read on an idle connection: something
        there is the server's close (or garbage), as httpcore checks too.
        """
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        return not poller.poll(0)

    def close(self) -> None:
        """Close the socket; also cuts an attempt in flight on another thread (shutdown wakes its read)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the attempt's time is up")
    return left


# ---------------------------------------------------------------------------
# the client


class Connections:
    """Keep-alive connections, one or more per server (or proxy route), reused as answers allow.

    A sending thread of a run has its own (none waits for another's); the
    relay shares one between the receiver's threads: taking and returning an
    idle connection are single list operations, atomic in CPython. ``close``
    may be called from another thread to cut what is in flight.
    """

    def __init__(self, tls: ssl.SSLContext | None, proxies: Proxies) -> None:
        self.tls = tls
        self.proxies = proxies
        self._routes: dict[str, Route] = {}
        self._idle: dict[tuple[str, str, int, str | None], list[_Connection]] = {}
        self._busy: set[_Connection] = set()

    def post(self, url: str, headers: Mapping[str, str], body: bytes, timeout: float, limit: int) -> Response:
        """``request("POST", …)``: a delivery."""
        return self.request("POST", url, headers, body, timeout, limit)

    def request(self, method: str, url: str, headers: Mapping[str, str] | Iterable[tuple[str, str]],
                body: bytes, timeout: float, limit: int) -> Response:
        """Send one request and read the answer; the whole attempt ends within ``timeout``.

        Raises ``AttemptTimeout`` when the status and headers did not arrive in
        time, ``TransportError`` for any other failure to get them. Once they
        are in, a body cut short (by the server, the deadline or ``limit``) is
        returned as far as it came, with ``unfinished`` saying why.
        """
        deadline = time.monotonic() + timeout
        found = self._routes.get(url)
        if found is None:
            found = self._routes[url] = route(url, self.proxies)
        sends_length = body or method not in ("GET", "HEAD", "DELETE", "OPTIONS")
        request = b"".join((method.encode("ascii"), b" ", found.target, b" HTTP/1.1\r\n", found.host_lines,
                            _header_block(headers, len(body) if sends_length else None), body))
        connection = self._take(found.key)
        try:
            if connection is None:
                connection = self._connect(found, deadline)
            self._busy.add(connection)
            response, reusable = _exchange(connection, method, request, limit, deadline)
        except BaseException as exc:
            if connection is not None:
                self._busy.discard(connection)
                connection.close()
            if isinstance(exc, _WIRE_ERRORS):
                raise failure(exc) from None
            raise
        self._busy.discard(connection)
        if reusable:
            self._idle.setdefault(found.key, []).append(connection)
        else:
            connection.close()
        return response

    def _take(self, key: tuple[str, str, int, str | None]) -> _Connection | None:
        """An idle connection to ``key`` that can carry a request, or None; dead ones are closed."""
        idle = self._idle.get(key)
        while idle:
            try:
                connection = idle.pop()
            except IndexError:  # another thread took the last one
                return None
            if connection.idle_and_open():
                return connection
            connection.close()
        return None

    def _connect(self, found: Route, deadline: float) -> _Connection:
        host, port = found.connect
        sock = _open_socket(host, port, deadline)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = _Connection(sock)
            if found.tunnel is not None:
                _open_tunnel(connection, found, deadline)
            if found.tls_host is not None:
                if self.tls is None:  # the PLAIN_HTTP client: never a TLS connection without a check
                    raise TransportError("this sender has no TLS settings for an https:// URL")
                sock.settimeout(_left(deadline))
                connection.sock = self.tls.wrap_socket(sock, server_hostname=found.tls_host)
            return connection
        except BaseException:
            sock.close()
            raise

    def close(self) -> None:
        """Close every connection (safe from another thread: an attempt in flight is cut)."""
        for connection in [*self._busy, *(c for idle in list(self._idle.values()) for c in list(idle))]:
            connection.close()
        self._idle.clear()


def _open_socket(host: str, port: int, deadline: float) -> socket.socket:
    """A TCP connection to the first of ``host``'s addresses that answers, all within the deadline.

    ``socket.create_connection`` gives each address the whole timeout: a name with three
    unreachable addresses held an attempt three times its time. Here the addresses share
    what is left of it, and none is tried once it is up. (Resolving the name is the OS's
    and is not cut by the deadline.)
    """
    error: OSError | None = None
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        left = _left(deadline)  # TimeoutError once the attempt's time is up: no further address
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(left)
            sock.connect(address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise error if error is not None else OSError(f"no address for {host}")


def _open_tunnel(connection: _Connection, found: Route, deadline: float) -> None:
    """``CONNECT`` through the proxy; h11 reads its answer, which must be a 2xx and nothing after it."""
    assert found.tunnel is not None
    host, port = found.connect
    head = f"CONNECT {found.tunnel} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in found.tunnel_headers)
    parser = _parser("CONNECT", found.tunnel)
    connection.send((head + "\r\n").encode("latin-1"), deadline)
    status = _read_head(connection, parser, deadline).status_code
    if not 200 <= status <= 299:
        raise TransportError(f"the proxy {host}:{port} refused the tunnel: HTTP {status}")
    if parser.trailing_data[0]:
        raise TransportError(f"the proxy {host}:{port} sent bytes after accepting the tunnel")


def _parser(method: str, target: str = "/") -> h11.Connection:
    """An h11 client connection that has 'sent' a request of ``method``: ready to read its answer.

    h11's events are immutable, so the request event for a method is built
    (and validated) once and reused: that halves what h11 costs a delivery.
    """
    request = _REQUEST_EVENTS.get((method, target))
    if request is None:
        request = h11.Request(method=method, target=target, headers=_PARSER_HEADERS)
        if len(_REQUEST_EVENTS) < 64:  # a relay sees a handful of methods; CONNECT targets vary
            _REQUEST_EVENTS[method, target] = request
    parser = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
    parser.send(request)
    parser.send(_END)
    return parser


def _exchange(connection: _Connection, method: str, request: bytes, limit: int,
              deadline: float) -> tuple[Response, bool]:
    """Write ``request`` and read its answer: the ``Response`` and whether the connection can be reused."""
    parser = _parser(method)
    try:
        connection.send(request, deadline)
    except TimeoutError:
        raise
    except OSError as send_error:
        # The server may have answered before reading the whole request, then closed
        # (an early 413, RFC 9112 §9.5): that answer is the outcome, not the reset.
        try:
            head = _read_head(connection, parser, deadline)
        except _WIRE_ERRORS:
            raise send_error from None
        body, unfinished = _read_body(connection, parser, limit, deadline)
        return _response(head, body, unfinished), False
    head = _read_head(connection, parser, deadline)
    body, unfinished = _read_body(connection, parser, limit, deadline)
    response = _response(head, body, unfinished)
    reusable = (unfinished is None and parser.our_state is h11.DONE and parser.their_state is h11.DONE
                and not parser.trailing_data[0] and not _announces_body(response))
    return response, reusable


def _read_head(connection: _Connection, parser: h11.Connection, deadline: float) -> h11.Response:
    """The next final answer's status line and headers, informational (1xx) answers skipped.

    h11 refuses a head longer than ``MAX_HEAD`` while it is incomplete; one
    that arrived complete in a single read is measured here, so the cap holds
    however the bytes were split.
    """
    fed = 0
    first = b""
    informational = 0
    while True:
        try:
            event = parser.next_event()
        except ParserError as exc:
            raise failure(exc, first) from None
        if event is h11.NEED_DATA:
            data = connection.recv(deadline)
            if not first:
                first = data[:200]
            fed += len(data)
            parser.receive_data(data)
            continue
        if type(event) is h11.Response:
            if fed > MAX_HEAD and fed - len(parser.trailing_data[0]) > MAX_HEAD:
                raise TransportError(f"the answer's headers are longer than {MAX_HEAD // 1024} KiB")
            return event
        if type(event) is h11.InformationalResponse:
            informational += 1
            if informational > MAX_INFORMATIONAL:
                raise TransportError(f"more than {MAX_INFORMATIONAL} informational (1xx) answers")
            continue
        raise TransportError(f"not an HTTP answer: {type(event).__name__}")  # pragma: no cover - h11 gives none


def _read_body(connection: _Connection, parser: h11.Connection, limit: int,
               deadline: float) -> tuple[bytes, str | None]:
    """Up to ``limit`` bytes of the body, and why it was not read to its end (None: it was).

    A problem while reading (the server closing early, bad chunk framing, the
    deadline) ends the body where it is: the connection is then not reused.
    """
    body = bytearray()
    while True:
        try:
            event = parser.next_event()
        except ParserError:
            return bytes(body), "closed"
        if event is h11.NEED_DATA:
            try:
                data = connection.recv(deadline)
            except TimeoutError:
                return bytes(body), "timeout"
            except OSError:
                return bytes(body), "closed"
            parser.receive_data(data)
            continue
        if isinstance(event, h11.Data):
            body += event.data
            if len(body) >= limit:
                return _at_limit(parser, body, limit)
            continue
        # EndOfMessage, or PAUSED (the end of a tunnel's answer): the body is whole.
        return bytes(body), None


def _at_limit(parser: h11.Connection, body: bytearray, limit: int) -> tuple[bytes, str | None]:
    """``limit`` bytes are in: whole if the answer ends exactly there (known without waiting), else cut."""
    if len(body) == limit:
        try:
            if type(parser.next_event()) is h11.EndOfMessage:
                return bytes(body), None
        except ParserError:
            pass
    return bytes(body[:limit]), "limit"


def _response(head: h11.Response, body: bytes, unfinished: str | None) -> Response:
    raw_headers = [(_text(name), _text(value)) for name, value in head.headers.raw_items()]
    return Response(head.status_code, _joined(raw_headers), raw_headers, body, unfinished)


def _announces_body(response: Response) -> bool:
    """A 204 that announces a body anyway: the server may still send it after we stopped reading."""
    if response.status != 204:
        return False
    return response.headers.get("content-length", "0") != "0" or "transfer-encoding" in response.headers


def _joined(raw: list[tuple[str, str]]) -> dict[str, str]:
    """Headers by lower-case name, repeats joined with ", " (as httpx's ``dict(response.headers)``)."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _text(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _header_block(headers: Mapping[str, str] | Iterable[tuple[str, str]], length: int | None) -> bytes:
    items: list[tuple[str, str]] = list(headers.items() if isinstance(headers, Mapping) else headers)
    text = "".join([f"{name}: {value}\r\n" for name, value in items])
    # Names and values were checked when the config was read (the relay passes on what
    # http.server parsed); a line break or NUL here would still split or truncate the
    # request, so it is refused rather than sent. Values go out as the bytes they came from (latin-1).
    if text.count("\n") != len(items) or text.count("\r") != len(items) or "\0" in text:
        raise TransportError(f"header {_bad_header(items)!r} cannot be sent: it holds a line break or NUL")
    if length is not None:
        text += f"Content-Length: {length}\r\n"
    try:
        return (text + "\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise TransportError(f"header {_bad_header(items)!r} cannot be sent: it holds text outside latin-1") from None


def _bad_header(items: list[tuple[str, str]]) -> str:
    for name, value in items:
        text = f"{name}{value}"
        if "\r" in text or "\n" in text or "\0" in text:
            return name
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            return name
    return "?"
