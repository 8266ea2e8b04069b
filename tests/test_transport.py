"""moxiehook's own HTTP/1.1 client (moxiehook.http) where it could differ from httpx's:
proxies from the environment, TLS, the attempt's deadline, answers that are odd or not HTTP,
keep-alive reuse. Real sockets on 127.0.0.1 only; every server stops after a bounded amount of work.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from moxiehook.http import PLAIN_HTTP, Connections, Proxies, tls_context
from moxiehook.send.delivery import READ_LIMIT, WireSender
from tests.conftest import Receiver
from tests.test_security import https_server, self_signed  # noqa: F401 - fixtures

PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                   "no_proxy", "NO_PROXY", "REQUEST_METHOD")


@pytest.fixture(autouse=True)
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


# ---------------------------------------------------------------------------
# a tiny loopback proxy: forwards absolute-form requests, tunnels CONNECT


def _read_head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    return data


def _shut(sock: socket.socket) -> None:
    """Shut a socket down: wakes a thread blocked in its accept() or recv()."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        _shut(source)
        _shut(target)


class Proxy:
    """An HTTP proxy on 127.0.0.1: one request (or one tunnel) per connection, heads recorded."""

    def __init__(self, answer_connect: bool = True) -> None:
        self.heads: list[bytes] = []
        self.answer_connect = answer_connect
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.open: list[socket.socket] = []  # shut down at the end, so every thread ends at once
        self.accepter = threading.Thread(target=self._accept, daemon=True)
        self.accepter.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.open.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            data = _read_head(conn)
            head, _, rest = data.partition(b"\r\n\r\n")
            self.heads.append(head)
            method, target, _ = head.split(b"\r\n")[0].split(b" ")
            if method == b"CONNECT":
                if not self.answer_connect:
                    self.stopping.wait(10)  # a proxy that never answers: bounded by the test's end
                    return
                host, _, port = target.decode().rpartition(":")
                upstream = socket.create_connection((host, int(port)), timeout=5)
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:  # forward: origin-form to the server, one request, then close
                url = target.decode()
                hostport, _, path = url.split("://", 1)[1].partition("/")
                host, _, port = hostport.rpartition(":")
                upstream = socket.create_connection((host, int(port)), timeout=5)
                lines = head.split(b"\r\n")
                lines[0] = b"POST /" + path.encode() + b" HTTP/1.1"
                lines = [line for line in lines if not line.lower().startswith(b"proxy-authorization:")]
                upstream.sendall(b"\r\n".join(lines) + b"\r\nConnection: close\r\n\r\n" + rest)
            self.open.append(upstream)
            with upstream:
                back = threading.Thread(target=_pipe, args=(upstream, conn), daemon=True)
                back.start()
                _pipe(conn, upstream)
                back.join(5)

    def url(self, auth: str = "") -> str:
        return f"http://{auth}127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.stopping.set()
        for sock in [self.sock, *self.open]:
            _shut(sock)
        self.sock.close()
        self.accepter.join(5)
        for thread in self.threads:
            thread.join(5)


@pytest.fixture
def proxy() -> Iterator[Callable[..., Proxy]]:
    proxies: list[Proxy] = []

    def start(**options: bool) -> Proxy:
        proxies.append(Proxy(**options))
        return proxies[-1]

    yield start
    for started in proxies:
        started.stop()


def test_http_proxy_from_the_environment_forwards_plain_http(
        receiver: Receiver, proxy: Callable[..., Proxy], monkeypatch: pytest.MonkeyPatch) -> None:
    via = proxy()
    monkeypatch.setenv("HTTP_PROXY", via.url("ann:s%40cret@"))
    answer = WireSender(PLAIN_HTTP).post(receiver.url("/hook"), {"X-Event-Type": "ClientCreate"}, b"{}", 5.0)
    assert answer.status == 200, answer.error
    [head] = via.heads
    assert head.startswith(f"POST {receiver.url('/hook')} HTTP/1.1\r\n".encode())  # absolute form
    assert b"Proxy-Authorization: Basic YW5uOnNAY3JldA==" in head  # ann:s@cret, percent-decoded
    [got] = receiver.requests
    assert got.path == "/hook" and got.body == b"{}" and got.headers["x-event-type"] == "ClientCreate"


def test_https_goes_through_a_connect_tunnel_and_tls_is_still_checked(
        https_server: tuple[str, list[dict[str, str]]], self_signed: tuple[Path, Path],  # noqa: F811
        proxy: Callable[..., Proxy], monkeypatch: pytest.MonkeyPatch) -> None:
    url, received = https_server
    via = proxy()
    monkeypatch.setenv("https_proxy", via.url())
    trusted = WireSender(tls_context(str(self_signed[0]))).post(url, {"Authorization": "Bearer t"}, b"{}", 5.0)
    assert trusted.status == 200, trusted.error
    port = url.split(":")[2].split("/")[0]
    assert via.heads[0].startswith(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n".encode())
    assert b"Authorization" not in via.heads[0]  # the proxy sees where to, not the request
    untrusted = WireSender(tls_context(True)).post(url, {"Authorization": "Bearer t"}, b"{}", 5.0)
    assert untrusted.status is None and "certificate" in (untrusted.error or "")
    assert len(received) == 1


def test_no_proxy_sends_directly(receiver: Receiver, proxy: Callable[..., Proxy],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    via = proxy()
    monkeypatch.setenv("HTTP_PROXY", via.url())
    monkeypatch.setenv("NO_PROXY", "example.com, 127.0.0.1")
    answer = WireSender(PLAIN_HTTP).post(receiver.url("/hook"), {}, b"{}", 5.0)
    assert answer.status == 200 and via.heads == [] and len(receiver.requests) == 1


def test_fire_honours_the_proxy_variables(receiver: Receiver, proxy: Callable[..., Proxy],
                                          config_path: Path, tmp_path: Path) -> None:
    """End to end, as a user's shell would run it."""
    via = proxy()
    config_path.write_text(config_path.read_text() + (
        '\n[endpoints.crm]\nauth = { type = "bearer", token = "t0k" }\n'
        f'[[endpoints.crm.mappings]]\nevent = "ClientCreate"\nurl = "{receiver.url("/hook")}"\n'))
    env = {name: value for name, value in os.environ.items() if name not in PROXY_VARIABLES}
    result = subprocess.run([sys.executable, "-m", "moxiehook", "--config", str(config_path), "fire", "ClientCreate"],
                            cwd=tmp_path, env={**env, "HTTP_PROXY": via.url()}, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert len(via.heads) == 1 and len(receiver.requests) == 1
    assert receiver.requests[0].headers["authorization"] == "Bearer t0k"


def test_a_proxy_that_never_answers_is_cut_at_the_deadline(proxy: Callable[..., Proxy],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    via = proxy(answer_connect=False)
    monkeypatch.setenv("HTTPS_PROXY", via.url())
    answer = WireSender(tls_context(True)).post("https://127.0.0.1:9/hook", {}, b"{}", 0.3)
    assert answer.status is None and answer.error == "timeout: no answer within 0.3 s"


def test_an_unsupported_proxy_is_named_and_nothing_is_sent(monkeypatch: pytest.MonkeyPatch,
                                                           receiver: Receiver) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
    answer = WireSender(PLAIN_HTTP).post(receiver.url("/hook"), {}, b"{}", 5.0)
    assert answer.status is None
    assert answer.error == ("connection error: ALL_PROXY='socks5://127.0.0.1:1080' is not supported: "
                            "only http:// proxies are")
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("environ", "url", "proxied"),
    [
        ({"HTTP_PROXY": "p:3128"}, "http://a.test/", True),
        ({"HTTP_PROXY": "p:3128"}, "https://a.test/", False),  # https takes HTTPS_PROXY or ALL_PROXY
        ({"ALL_PROXY": "p:3128"}, "https://a.test/", True),
        ({"HTTP_PROXY": "p:3128", "REQUEST_METHOD": "GET"}, "http://a.test/", False),  # CGI: httpoxy
        ({"http_proxy": "p:3128", "REQUEST_METHOD": "GET"}, "http://a.test/", True),
        ({"HTTP_PROXY": "p", "NO_PROXY": "*"}, "http://a.test/", False),
        ({"HTTP_PROXY": "p", "NO_PROXY": "test"}, "http://a.test/", False),  # a domain covers its subdomains
        ({"HTTP_PROXY": "p", "NO_PROXY": ".a.test"}, "http://a.test/", False),
        ({"HTTP_PROXY": "p", "NO_PROXY": "b.test"}, "http://a.test/", True),
        ({"HTTP_PROXY": "p", "NO_PROXY": "ba.test"}, "http://a.test/", True),  # not a suffix on a dot
        ({"HTTP_PROXY": "p", "NO_PROXY": "a.test:8080"}, "http://a.test:8080/", False),
        ({"HTTP_PROXY": "p", "NO_PROXY": "a.test:8080"}, "http://a.test/", True),
        ({"HTTP_PROXY": "p", "NO_PROXY": "10.0.0.0/8"}, "http://10.1.2.3/", False),
        ({"HTTP_PROXY": "p", "NO_PROXY": "::1"}, "http://[::1]:8080/", False),
        ({"HTTP_PROXY": "p", "no_proxy": "", "NO_PROXY": "a.test"}, "http://a.test/", False),
    ],
)
def test_which_urls_go_through_the_proxy(environ: dict[str, str], url: str, proxied: bool) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    chosen = Proxies.from_environ(environ).for_url(parts.scheme, parts.hostname or "", port)
    assert (chosen is not None) is proxied


# ---------------------------------------------------------------------------
# answers: framing, odd but valid HTTP, keep-alive


class Scripted:
    """A raw server that answers each request on a connection with the next scripted bytes."""

    def __init__(self, *answers: bytes, close_after: bool = False) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self.close_after = close_after
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(5)
                while self.answers:
                    try:
                        request = _read_head(conn)
                    except OSError:
                        break
                    if not request:
                        break
                    self.requests.append(request)
                    conn.sendall(self.answers.pop(0))
                    if self.close_after:
                        break

    def stop(self) -> None:
        self.answers.clear()
        _shut(self.sock)
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def scripted() -> Iterator[Callable[..., Scripted]]:
    servers: list[Scripted] = []

    def start(*answers: bytes, close_after: bool = False) -> Scripted:
        servers.append(Scripted(*answers, close_after=close_after))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def _post(connections: Connections, url: str, limit: int = READ_LIMIT):
    return connections.post(url, {"Content-Type": "application/json"}, b"{}", 5.0, limit)


def test_keep_alive_carries_many_requests_on_one_connection(scripted: Callable[..., Scripted]) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    server = scripted(ok, ok, ok)
    connections = Connections(None, Proxies.from_environ({}))
    assert [_post(connections, server.url).body for _ in range(3)] == [b"ok"] * 3
    assert server.connections == 1
    assert server.requests[0].startswith(b"POST /hook HTTP/1.1\r\nHost: 127.0.0.1:")
    connections.close()


@pytest.mark.parametrize(
    ("answer", "reused"),
    [
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", False),  # more than framed: not trusted
        (b"HTTP/1.1 204 No Content\r\n\r\n", True),
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\n", False),  # a body announced where none can be
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", True),
    ],
)
def test_a_connection_is_reused_only_when_the_answer_allows_it(
        scripted: Callable[..., Scripted], answer: bytes, reused: bool) -> None:
    server = scripted(answer, answer)
    connections = Connections(None, Proxies.from_environ({}))
    first, second = _post(connections, server.url), _post(connections, server.url)
    assert first.status == second.status and first.status in (200, 204)
    assert server.connections == (1 if reused else 2)
    connections.close()


def test_chunked_answers_informational_answers_and_repeated_headers(scripted: Callable[..., Scripted]) -> None:
    server = scripted(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    response = _post(Connections(None, Proxies.from_environ({})), server.url)
    assert response.status == 201 and response.body == b"hello world"
    assert response.headers["set-cookie"] == "a=1, b=2"


@pytest.mark.parametrize("framing", [b"Content-Length: 200000\r\n\r\n", b"Transfer-Encoding: chunked\r\n\r\n30d40\r\n",
                                     b"Connection: close\r\n\r\n"])
def test_a_body_is_read_up_to_the_limit_and_the_connection_is_not_reused(
        scripted: Callable[..., Scripted], framing: bytes) -> None:
    server = scripted(b"HTTP/1.1 200 OK\r\n" + framing + b"x" * 200_000, b"HTTP/1.1 204 No Content\r\n\r\n")
    connections = Connections(None, Proxies.from_environ({}))
    assert _post(connections, server.url, limit=1000).body == b"x" * 1000
    assert _post(connections, server.url).status == 204
    assert server.connections == 2


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"HTTP/2 200\r\n\r\n", "not an HTTP answer: b'HTTP/2 200'"),
        (b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n", "bad header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70_000, "longer than 64 KiB"),
        (b"\x1b[31mred\r\n\r\n", r"not an HTTP answer: b'\x1b[31mred'"),  # escaped: it may reach a terminal
    ],
)
def test_answers_that_are_not_http_are_described(scripted: Callable[..., Scripted], answer: bytes,
                                                 reason: str) -> None:
    server = scripted(answer, close_after=True)
    result = WireSender(None).post(server.url, {}, b"{}", 5.0)
    assert result.status is None and result.error is not None
    assert result.error.startswith("connection error: ") and reason in result.error


def test_a_header_that_would_split_the_request_is_refused_before_sending(scripted: Callable[..., Scripted]) -> None:
    server = scripted(b"HTTP/1.1 204 No Content\r\n\r\n")
    for headers in ({"X-A": "1\r\nX-Injected: 2"}, {"X-A": "1\rX-Injected: 2"}, {"X-A": "snow \u2603"}):
        answer = WireSender(None).post(server.url, headers, b"{}", 5.0)
        assert answer.status is None and "X-A" in (answer.error or "")
    assert server.requests == []


def test_a_server_that_accepts_but_never_speaks_tls_is_cut_at_the_deadline() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts; nobody answers
        port = silent.getsockname()[1]
        answer = WireSender(tls_context(True)).post(f"https://127.0.0.1:{port}/hook", {}, b"{}", 0.3)
    assert answer.status is None and answer.error == "timeout: no answer within 0.3 s"


def test_a_network_run_does_not_import_httpx() -> None:
    """httpx is for in-process apps; a delivery over the network loads only h11 and the small client."""
    code = ("import sys, moxiehook.send.dispatch, moxiehook.http as t; "
            "t.Connections(None, t.Proxies.from_environ()); "
            "print(sorted(m for m in ('httpx', 'httpcore', 'h11', 'ssl') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "['h11']", result.stderr


def test_other_methods_send_what_they_are_given_and_keep_the_answers_headers_as_sent(
        scripted: Callable[..., Scripted]) -> None:
    """What the relay (listen --forward-to) needs: any method, headers in order, raw answer headers."""
    server = scripted(b"HTTP/1.1 200 OK\r\nX-Mixed-Case: a\r\nx-mixed-case: b\r\nContent-Length: 4\r\n\r\nbody",
                      b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n")
    connections = Connections(None, Proxies.none())
    got = connections.request("GET", server.url + "?q=1", [("X-B", "1"), ("X-A", "2"), ("X-B", "3")], b"", 5.0, 100)
    assert server.requests[0].split(b"\r\n")[0] == b"GET /hook?q=1 HTTP/1.1"
    assert b"X-B: 1\r\nX-A: 2\r\nX-B: 3\r\n\r\n" in server.requests[0] and b"Content-Length" not in server.requests[0]
    assert got.raw_headers[:2] == [("X-Mixed-Case", "a"), ("x-mixed-case", "b")] and got.body == b"body"
    head = connections.request("HEAD", server.url, [], b"", 5.0, 100)  # a HEAD answer has no body to wait for
    assert head.status == 200 and head.body == b"" and head.unfinished is None
    connections.close()
