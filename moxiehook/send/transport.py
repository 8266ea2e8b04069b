"""The network side of a delivery: HTTP/1.1 POSTs over keep-alive sockets, TLS, proxies, deadlines.

Why moxiehook carries its own client here: profiled, ``fire --count 2000
--concurrency 1`` spent more time inside httpx, httpcore and h11 (request and
response objects, URL and header models, h11's state machine, a pool per
client) than in everything moxiehook itself does per delivery, and importing
them was a third of a short run (see bench/README.md). A delivery needs a
small part of an HTTP client, always the same: one POST of known bytes, one
answer read up to a cap, nothing followed, decoded or stored. This module is
that part, and keeps every guarantee the httpx path had:

- An attempt ends by its deadline (``time.monotonic()``): connect, TLS
  handshake, proxy tunnel, write and every read get what is left of it, so a
  server dribbling a byte at a time cannot hold an attempt past its timeout.
- At most ``limit`` bytes of an answer's body are read; a connection whose body
  was not read to its end is closed, never reused.
- Redirects are never followed: a 3xx is returned like any other answer.
- TLS uses the context the endpoint's ``verify_tls`` asks for (``tls_context``),
  with SNI and the host name checked.
- ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` and ``NO_PROXY`` are read from the
  environment as curl reads them (``Proxies``).
- Answers are parsed strictly: anything that is not HTTP/1.x (a banner, binary
  bytes, a bad status line or ``Content-Length``) is a ``TransportError``.

httpx stays where users see it: ``HttpxSender`` carries requests into
in-process WSGI/ASGI apps (``fire --app``, the pytest fixture).
"""

from __future__ import annotations

import base64
import os
import re
import select
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

if TYPE_CHECKING:  # ssl is imported only by runs that need TLS (~6 ms)
    import ssl

PLAIN_HTTP = None  # the ``verify`` of the sender for http:// URLs: it has no TLS context, so it cannot do TLS
MAX_HEAD = 64 * 1024  # bytes of status line and headers accepted in an answer
MAX_INFORMATIONAL = 8  # 1xx answers skipped before the real one
RECV_SIZE = 65536
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: [^\r\n]*)?")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class TransportError(Exception):
    """No usable answer; the message says why (``connection refused``, ``not an HTTP answer: …``)."""


class AttemptTimeout(TransportError):
    """The attempt's deadline passed before an answer's status and headers arrived."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # names in lower case; repeated headers joined with ", "
    raw_headers: list[tuple[str, str]]  # as the server sent them: case, order and repeats kept
    body: bytes  # at most ``limit`` bytes; shorter when the server cut it short or time ran out
    # Why the body was not read to its end, or None: "limit" (longer than the limit),
    # "timeout" (the deadline came first), "closed" (the server stopped or framed it badly).
    unfinished: str | None = None


def uses_tls(url: str) -> bool:
    """Whether ``url`` needs TLS: anything but a plain ``http://`` URL is treated as needing it."""
    return url[:7].lower() != "http://"


def tls_context(verify: bool | str) -> ssl.SSLContext:
    """The TLS context for an endpoint's ``verify`` setting.

    ``True`` trusts certifi's CA bundle, as httpx did for moxiehook (the
    system's store and ``SSL_CERT_FILE`` are not read); a string is the path of
    a CA bundle; ``False`` checks nothing. Loading a CA store takes ~45 ms: a
    run builds each context once and shares it, and builds none for http://
    URLs (nor imports ``ssl``).
    """
    import ssl

    if verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        if verify is True:
            import certifi

            verify = certifi.where()
        context = ssl.create_default_context(cafile=verify)
    context.set_alpn_protocols(["http/1.1"])
    return context


# ---------------------------------------------------------------------------
# proxies from the environment


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    authorization: str | None  # the Proxy-Authorization value, from the proxy URL's user:password


@dataclass(frozen=True)
class Proxies:
    """The proxies the environment asks for, read once per run.

    As curl and httpx read them: ``http_proxy``/``HTTP_PROXY`` for http://
    URLs, ``https_proxy``/``HTTPS_PROXY`` for https:// ones, ``all_proxy``/
    ``ALL_PROXY`` for both (the lower-case name wins; ``HTTP_PROXY`` is ignored
    when ``REQUEST_METHOD`` is set, i.e. under CGI, where a client's
    ``Proxy:`` header would become it). ``no_proxy``/``NO_PROXY`` lists hosts
    sent to directly: ``*`` (all), a name (also its subdomains; a leading dot is
    optional), an IP address or a CIDR block, each optionally with ``:port``.
    Only ``http://`` proxies are supported (plain forwarding for http:// URLs,
    a ``CONNECT`` tunnel for https:// ones); a URL that would need another kind
    fails with a message naming the variable.
    """

    by_scheme: Mapping[str, tuple[str, str]]  # scheme -> (variable, proxy URL)
    no_proxy: tuple[str, ...] = ()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Proxies:
        env = os.environ if environ is None else environ
        by_scheme: dict[str, tuple[str, str]] = {}
        for scheme in ("http", "https"):
            names = [f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY"]
            if scheme == "http" and "REQUEST_METHOD" in env:
                names.remove("HTTP_PROXY")
            for name in names:
                if env.get(name, "").strip():
                    by_scheme[scheme] = (name, env[name].strip())
                    break
        no_proxy = env.get("no_proxy") or env.get("NO_PROXY") or ""
        entries = tuple(entry.strip().lower() for entry in no_proxy.split(",") if entry.strip())
        return cls(by_scheme, entries)

    @classmethod
    def none(cls) -> Proxies:
        """No proxy whatever the environment says (``listen --forward-to`` relays to a local app)."""
        return cls({})

    def for_url(self, scheme: str, host: str, port: int) -> Proxy | None:
        """The proxy for a URL, None to connect directly; ``TransportError`` for an unusable one."""
        chosen = self.by_scheme.get(scheme)
        if chosen is None or self._bypassed(host, port):
            return None
        name, url = chosen
        if "://" not in url:
            url = "http://" + url
        parts = urlsplit(url)
        try:
            proxy_port = parts.port or 80
        except ValueError:
            raise TransportError(f"{name}={url!r} is not a usable proxy URL (bad port)") from None
        if parts.scheme.lower() != "http" or not parts.hostname:
            raise TransportError(f"{name}={url!r} is not supported: only http:// proxies are")
        authorization = None
        if parts.username is not None:
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(credentials.encode()).decode()
        return Proxy(parts.hostname, proxy_port, authorization)

    def _bypassed(self, host: str, port: int) -> bool:
        for entry in self.no_proxy:
            if entry == "*":
                return True
            entry_host, entry_port = _split_host_port(entry)
            if entry_port is not None and entry_port != port:
                continue
            if "/" in entry_host:
                import ipaddress

                try:
                    if ipaddress.ip_address(host) in ipaddress.ip_network(entry_host, strict=False):
                        return True
                except ValueError:
                    pass
                continue
            name = entry_host.lstrip(".")
            if name and (host == name or host.endswith("." + name)):
                return True
        return False


def _split_host_port(entry: str) -> tuple[str, int | None]:
    """``example.com:8080`` -> (``example.com``, 8080); IPv6 may be bracketed; no port -> None."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
    else:  # a name, an IPv4 address, a bare IPv6 address or CIDR block
        host, port = entry, ""
    return host, int(port) if port.isdigit() else None


# ---------------------------------------------------------------------------
# routes: how a URL is reached (worked out once per URL)


@dataclass(frozen=True)
class _Route:
    key: tuple[str, str, int, str | None]  # the connection this route uses
    connect: tuple[str, int]  # where the TCP connection goes (the server, or the proxy)
    tls_host: str | None  # server_hostname for TLS with the server, None for plain HTTP
    tunnel: bytes | None  # the CONNECT request to send first (https:// through a proxy)
    target: bytes  # the request line's target: origin form, or the absolute URL for a forwarding proxy
    host_lines: bytes  # Host, and Proxy-Authorization for a forwarding proxy


def _route(url: str, proxies: Proxies) -> _Route:
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
        host = (parts.hostname or "").encode("idna").decode("ascii")
    except (ValueError, UnicodeError) as exc:
        raise TransportError(f"not a usable URL: {exc}") from None
    if scheme not in _DEFAULT_PORTS or not host:
        raise TransportError(f"not an http:// or https:// URL with a host: {url}")
    bracketed = f"[{host}]" if ":" in host else host
    authority = bracketed if port == _DEFAULT_PORTS[scheme] else f"{bracketed}:{port}"
    target = quote(parts.path or "/", safe="!$%&'()*+,/:;=@[]~") + (
        "?" + quote(parts.query, safe="!$%&'()*+,/:;=?@[]~") if parts.query else "")
    host_line = f"Host: {authority}\r\n".encode()
    proxy = proxies.for_url(scheme, host, port)
    tls_host = host if scheme == "https" else None
    if proxy is None:
        return _Route((scheme, host, port, None), (host, port), tls_host, None, target.encode(), host_line)
    via = f"{proxy.host}:{proxy.port}"
    auth_line = f"Proxy-Authorization: {proxy.authorization}\r\n" if proxy.authorization else ""
    if scheme == "https":  # a tunnel: the proxy sees only where to, never the request
        tunnel = f"CONNECT {bracketed}:{port} HTTP/1.1\r\nHost: {bracketed}:{port}\r\n{auth_line}\r\n".encode()
        return _Route((scheme, host, port, via), (proxy.host, proxy.port), tls_host, tunnel, target.encode(),
                      host_line)
    # Forwarding: the request line carries the absolute URL.
    return _Route((scheme, host, port, via), (proxy.host, proxy.port), None, None,
                  f"{scheme}://{authority}{target}".encode(), host_line + auth_line.encode())


# ---------------------------------------------------------------------------
# one connection


class _Connection:
    """A socket and the bytes read from it but not yet used."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def send(self, data: bytes, deadline: float) -> None:
        self.sock.settimeout(_left(deadline))
        self.sock.sendall(data)

    def fill(self, deadline: float) -> bool:
        """Read what the server sent next into the buffer; False at the end of the stream."""
        self.sock.settimeout(_left(deadline))
        data = self.sock.recv(RECV_SIZE)
        self.buffer += data
        return bool(data)

    def take(self, size: int) -> bytes:
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def idle_and_open(self) -> bool:
        """Whether a kept-alive connection can carry another request.

        Nothing may be waiting to be read on an idle connection: something
        there is the server's close (or garbage), as httpcore checks too.
        """
        if self.buffer:
            return False
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        return not poller.poll(0)

    def close(self) -> None:
        """Close the socket; also cuts an attempt in flight on another thread (shutdown wakes its read)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
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
        self._routes: dict[str, _Route] = {}
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
        route = self._routes.get(url)
        if route is None:
            route = self._routes[url] = _route(url, self.proxies)
        sends_length = body or method not in ("GET", "HEAD", "DELETE", "OPTIONS")
        request = b"".join((method.encode("ascii"), b" ", route.target, b" HTTP/1.1\r\n", route.host_lines,
                            _header_block(headers, len(body) if sends_length else None), body))
        connection = self._take(route.key)
        try:
            if connection is None:
                connection = self._connect(route, deadline)
            self._busy.add(connection)
            connection.send(request, deadline)
            status, raw_headers, keep_alive = _read_head(connection, deadline)
            answer_headers = _joined(raw_headers)
            body_bytes, unfinished = _read_body(connection, method, status, answer_headers, limit, deadline)
        except BaseException as exc:
            if connection is not None:
                self._busy.discard(connection)
                connection.close()
            if isinstance(exc, TimeoutError):
                raise AttemptTimeout(str(exc)) from None
            if isinstance(exc, OSError):
                raise TransportError(_describe(exc)) from None
            raise
        self._busy.discard(connection)
        if keep_alive and unfinished is None and not connection.buffer:
            self._idle.setdefault(route.key, []).append(connection)
        else:
            connection.close()
        return Response(status, answer_headers, raw_headers, body_bytes, unfinished)

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

    def _connect(self, route: _Route, deadline: float) -> _Connection:
        host, port = route.connect
        sock = socket.create_connection((host, port), timeout=_left(deadline))
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = _Connection(sock)
            if route.tunnel is not None:
                connection.send(route.tunnel, deadline)
                status, _, _ = _read_head(connection, deadline, through_proxy=True)
                if not 200 <= status <= 299:
                    raise TransportError(f"the proxy {host}:{port} refused the tunnel: HTTP {status}")
                if connection.buffer:
                    raise TransportError(f"the proxy {host}:{port} sent bytes after accepting the tunnel")
            if route.tls_host is not None:
                if self.tls is None:  # the PLAIN_HTTP sender: never a TLS connection without a check
                    raise TransportError("this sender has no TLS settings for an https:// URL")
                sock.settimeout(_left(deadline))
                connection.sock = self.tls.wrap_socket(sock, server_hostname=route.tls_host)
            return connection
        except BaseException:
            sock.close()
            raise

    def close(self) -> None:
        """Close every connection (safe from another thread: an attempt in flight is cut)."""
        for connection in [*self._busy, *(c for idle in list(self._idle.values()) for c in list(idle))]:
            connection.close()
        self._idle.clear()


def _header_block(headers: Mapping[str, str] | Iterable[tuple[str, str]], length: int | None) -> bytes:
    items = list(headers.items() if isinstance(headers, dict) else headers)
    text = "".join([f"{name}: {value}\r\n" for name, value in items])
    # Names and values were checked when the config was read (the relay passes on what
    # http.server parsed); a line break here would still split the request, so it is
    # refused rather than sent. Values go out as the bytes they came from (latin-1).
    if text.count("\n") != len(items) or text.count("\r") != len(items):
        raise TransportError(f"header {_bad_header(items)!r} cannot be sent: it holds a line break")
    if length is not None:
        text += f"Content-Length: {length}\r\n"
    try:
        return (text + "\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise TransportError(f"header {_bad_header(items)!r} cannot be sent: it holds text outside latin-1") from None


def _bad_header(items: list[tuple[str, str]]) -> str:
    for name, value in items:
        text = f"{name}{value}"
        if "\r" in text or "\n" in text:
            return name
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            return name
    return "?"


def _read_head(connection: _Connection, deadline: float,
               through_proxy: bool = False) -> tuple[int, list[tuple[str, str]], bool]:
    """The next final answer's status, headers and whether the connection stays usable.

    Informational answers (1xx but 101) are skipped. Anything that does not
    parse as HTTP/1.x is a ``TransportError`` saying what came.
    """
    for _ in range(MAX_INFORMATIONAL + 1):
        while True:
            end = _HEAD_END.search(connection.buffer)
            if end is not None:
                break
            if len(connection.buffer) > MAX_HEAD:
                raise TransportError(f"the answer's headers are longer than {MAX_HEAD // 1024} KiB")
            if not connection.fill(deadline):
                if connection.buffer:
                    raise TransportError(f"not an HTTP answer: {_shown(connection.buffer)}")
                raise TransportError("the server closed the connection without answering")
        head = connection.take(end.end())[: end.start()]
        lines = head.split(b"\n")
        match = _STATUS_LINE.fullmatch(lines[0].rstrip(b"\r"))
        if match is None:
            raise TransportError(f"not an HTTP answer: {_shown(lines[0])}")
        status = int(match.group(2))
        headers = _parse_headers(lines[1:])
        if 100 <= status <= 199 and status != 101 and not through_proxy:
            continue
        tokens = {token.strip().lower() for name, value in headers if name.lower() == "connection"
                  for token in value.split(",")}
        keep_alive = match.group(1) == b"1" and "close" not in tokens and status != 101
        return status, headers, keep_alive
    raise TransportError(f"more than {MAX_INFORMATIONAL} informational (1xx) answers")


def _parse_headers(lines: list[bytes]) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for raw in lines:
        line = raw.rstrip(b"\r")
        if line[:1] in (b" ", b"\t") and headers:  # obsolete line folding: part of the previous value
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {_text(line.strip())}")
            continue
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip() or b" " in name:
            raise TransportError(f"not an HTTP answer: bad header line {_shown(line)}")
        headers.append((_text(name), _text(value.strip())))
    return headers


def _joined(raw: list[tuple[str, str]]) -> dict[str, str]:
    """Headers by lower-case name, repeats joined with ", " (as httpx's ``dict(response.headers)``)."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _read_body(connection: _Connection, method: str, status: int, headers: dict[str, str], limit: int,
               deadline: float) -> tuple[bytes, str | None]:
    """Up to ``limit`` bytes of the body, and why it was not read to its end (None: it was).

    A problem while reading (the server closing early, bad chunk framing, the
    deadline) ends the body where it is: the connection is then not reused.
    Framing that makes no sense (a bad ``Content-Length``) is a ``TransportError``.
    """
    if method == "HEAD" or status in (204, 304) or 100 <= status <= 199:
        # No body, whatever the headers say (a HEAD or 304 may give the length of one). A 204
        # cannot have one; a server that announces one anyway may still send it after we
        # stopped reading: then this connection is not reused.
        announced = status == 204 and (headers.get("content-length", "0").strip() not in ("0", "")
                                       or "transfer-encoding" in headers)
        return b"", "closed" if announced else None
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _read_chunked(connection, limit, deadline)
    length_text = headers.get("content-length")
    length = None
    if length_text is not None:
        lengths = {part.strip() for part in length_text.split(",")}
        if len(lengths) != 1 or not next(iter(lengths)).isdigit():
            raise TransportError(f"not an HTTP answer: bad Content-Length {length_text!r}")
        length = int(next(iter(lengths)))
    wanted = limit if length is None else min(length, limit)  # no length: the body ends at the close
    try:
        while len(connection.buffer) < wanted and connection.fill(deadline):
            pass
    except TimeoutError:
        return connection.take(wanted), "timeout"
    except OSError:
        return connection.take(wanted), "closed"
    body = connection.take(wanted)
    if length is None:
        return body, "limit" if len(body) >= limit else "closed"  # either way, not reusable
    if len(body) < wanted:
        return body, "closed"
    return body, "limit" if length > limit else None


def _read_chunked(connection: _Connection, limit: int, deadline: float) -> tuple[bytes, str | None]:
    body = bytearray()
    try:
        while len(body) < limit:
            line = _read_line(connection, deadline)
            match = _CHUNK_SIZE.fullmatch(line)
            if match is None:
                return bytes(body), "closed"
            size = int(match.group(1), 16)
            if size == 0:
                while _read_line(connection, deadline):  # trailers, up to the blank line
                    pass
                return bytes(body), None
            wanted = min(size, limit - len(body))
            while len(connection.buffer) < wanted and connection.fill(deadline):
                pass
            chunk = connection.take(wanted)
            body += chunk
            if len(chunk) < wanted:
                return bytes(body), "closed"
            if wanted < size:
                break
            if _read_line(connection, deadline):
                return bytes(body), "closed"
        return bytes(body), "limit"
    except TimeoutError:
        return bytes(body), "timeout"
    except (OSError, TransportError):
        return bytes(body), "closed"


def _read_line(connection: _Connection, deadline: float) -> bytes:
    while True:
        end = connection.buffer.find(b"\n")
        if end >= 0:
            return connection.take(end + 1).rstrip(b"\r\n")
        if len(connection.buffer) > MAX_HEAD or not connection.fill(deadline):
            raise TransportError("bad chunked body")


def _text(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _shown(raw: bytes | bytearray) -> str:
    """The start of what the server sent, escaped (it may reach a terminal)."""
    return repr(bytes(raw[:60]))


def _describe(exc: OSError) -> str:
    """A short reason: the OS or TLS message when there is one."""
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
