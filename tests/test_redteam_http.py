"""Red team of the HTTP layer: what a hostile server or sender found, each as the user would see it.

The client side plays a misbehaving server (raw sockets on 127.0.0.1) against a delivery and
against httpx; the receiving side plays a hostile sender against ``listen``'s server and
against h11 reading the same bytes as a server. Every difference is explained by RFC 9110/9112
in the test's docstring.
"""

from __future__ import annotations

import contextlib
import select
import socket
from collections.abc import Callable, Iterator

import h11
import httpx
import pytest

from moxiehook.config import Settings
from moxiehook.receive.server import ReceivedRequest, ReceiverConfig, RunningReceiver, start_receiver
from moxiehook.send.delivery import Delivery, PreparedEndpoint, WireSender, send
from tests.test_http_wire import RawServer, answering, httpx_reading


@pytest.fixture
def serve() -> Iterator[Callable[..., RawServer]]:
    """Raw servers (see tests/test_http_wire.py), stopped after the test."""
    servers: list[RawServer] = []

    def start(behaviour: Callable[[socket.socket], None], limit: int = 8) -> RawServer:
        servers.append(RawServer(behaviour, limit))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


# ---------------------------------------------------------------------------
# the client: how an answer is judged and logged


def deliver(url: str, max_attempts: int = 3) -> tuple[object, int]:
    """One delivery to ``url`` through the wire (no real waits): the record and how many attempts it took."""
    endpoint = PreparedEndpoint("crm", {}, {}, None, 5.0, True)
    record, _ = send(WireSender(None), endpoint, Delivery("ClientCreate", url, {}, b"{}", "evt_1"),
                     Settings(max_attempts=max_attempts, backoff=0.01), sleep=lambda seconds: None)
    return record, len(record.attempts)


@pytest.mark.parametrize("status", [b"600", b"999"])
def test_a_status_beyond_599_is_retried_like_a_5xx(serve: Callable[..., RawServer], status: bytes) -> None:
    """A server answering ``HTTP/1.1 999`` (a proxy's or library's internal error leaking out).

    The user saw: ``failed`` at once, no retry, as if it were a 4xx the receiver meant.
    They should see: retried like a 5xx. RFC 9110 §15: values outside 100–599 are invalid, and
    "a client that receives a response with an invalid status code SHOULD process the response
    as if it had a 5xx (Server Error) status code". httpx reads the same status (it does not
    judge answers); the difference is moxiehook's classification.
    """
    # "Connection: close": the server closes after each answer, and says so (a kept-alive
    # connection closed just as the next attempt starts would make that attempt a connection error).
    answer = b"HTTP/1.1 " + status + b" Weird\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    server = serve(answering(answer))
    assert httpx_reading(server.url)[:2] == ("answer", int(status))
    record, attempts = deliver(server.url)
    assert record.outcome == "failed" and record.status == int(status)  # type: ignore[attr-defined]
    assert attempts == 3


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nabc",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc",
], ids=["short-length", "short-chunk", "bad-chunk-size"])
def test_a_body_cut_short_is_logged_as_incomplete(serve: Callable[..., RawServer], answer: bytes) -> None:
    """A server announces 10 bytes (or a chunk), sends 3, and closes.

    The user saw: ``delivered`` with ``"body": "abc"`` in the log, nothing saying the body is not
    what the server announced. httpx refuses the answer (``RemoteProtocolError``). RFC 9112 §8:
    "A client that receives an incomplete response message [...] MUST record the message as
    incomplete." The status still decides the outcome (the server did answer 200); the logged
    response must say its body is incomplete.
    """
    server = serve(answering(answer))
    assert httpx_reading(server.url)[0] == "no answer"
    record, _ = deliver(server.url)
    response = record.response  # type: ignore[attr-defined]
    assert record.outcome == "delivered"  # type: ignore[attr-defined]
    assert response["incomplete"] == "the server closed the connection before the body's end"


def test_a_whole_body_is_not_called_incomplete(serve: Callable[..., RawServer]) -> None:
    """The control: a body read to its announced end carries no ``incomplete`` key."""
    server = serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"))
    record, _ = deliver(server.url)
    assert record.response == {"status": 200, "headers": {"content-length": "3"}, "body": "abc"}  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------
# listen: what a hostile sender can do to the receiver


@pytest.fixture
def receiver() -> Iterator[tuple[RunningReceiver, list[ReceivedRequest]]]:
    received: list[ReceivedRequest] = []
    running = start_receiver(ReceiverConfig(port=0), on_request=received.append)
    yield running, received
    running.stop()


def exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw`` on one connection and read until the server closes it (or 5 s of silence)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        out = b""
        with contextlib.suppress(TimeoutError, ConnectionError):
            while chunk := sock.recv(65536):
                out += chunk
    return out


def h11_refuses(raw: bytes) -> bool:
    """Whether h11, reading ``raw`` as a server, refuses the request's head."""
    parser = h11.Connection(h11.SERVER)
    parser.receive_data(raw)
    try:
        parser.next_event()
    except h11.RemoteProtocolError:
        return True
    return False


HEAD = b"POST /hook HTTP/1.1\r\nHost: x\r\n"
NEXT = b"POST /smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize("line", [
    b"Content-Length : 5\r\n",
    b"Transfer-Encoding : chunked\r\nContent-Length: 5\r\n",
    b"X-Junk\r\nContent-Length: 5\r\n",
], ids=["space-before-colon-CL", "space-before-colon-TE", "no-colon"])
def test_a_malformed_header_line_is_refused_not_turned_into_a_body(
        receiver: tuple[RunningReceiver, list[ReceivedRequest]], line: bytes) -> None:
    """A sender writes ``Content-Length : 5`` (space before the colon) or a line with no colon.

    The user saw: the stdlib's header parser stops at that line and takes everything after it
    for the body, so ``Content-Length`` (and ``Authorization``, ``X-Event-Type``…) vanished; the
    request was accepted with an empty body, and the 5 body bytes were read as the start of the
    next request on the connection — request smuggling. They should see a 400 and the
    connection closed: RFC 9112 §5.1 "A server MUST reject, with a response status code of
    400 (Bad Request), any received request message that contains whitespace between a header
    field name and colon"; a line without a colon is no field line at all (§5). h11 refuses both.
    """
    running, received = receiver
    raw = HEAD + line + b"\r\nhello" + NEXT
    assert h11_refuses(raw)
    out = exchange(running.port, raw)
    assert out.startswith(b"HTTP/1.1 400 ")
    assert out.count(b"HTTP/1.1 ") == 1 and not received


def test_an_obsolete_line_folding_never_reaches_a_header_value(
        receiver: tuple[RunningReceiver, list[ReceivedRequest]]) -> None:
    """A sender folds a header over two lines (``X-A: 1`` CRLF `` 2``, obs-fold).

    The user saw: the value ``1\\r\\n 2`` — a CR LF inside a header value, printed, saved and
    relayed as such (the relay then refuses to send it). RFC 9112 §5.2: a server that receives
    an obs-fold "MUST either reject the message by sending a 400 (Bad Request) [...] or replace
    each received obs-fold with one or more SP octets". h11 replaces it. listen refuses it,
    as it refuses a bare CR.
    """
    running, received = receiver
    out = exchange(running.port, HEAD + b"X-A: 1\r\n 2\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 ") and not received


@pytest.mark.parametrize("space", [b"\x0b", b"\x0c", b"\x1c"])
def test_a_transfer_coding_padded_with_other_whitespace_is_not_chunked(
        receiver: tuple[RunningReceiver, list[ReceivedRequest]], space: bytes) -> None:
    """A sender writes ``Transfer-Encoding: <VT>chunked`` beside a ``Content-Length``.

    The user saw: listen strips the vertical tab (Python's ``str.strip`` takes it for
    whitespace), decodes the body as chunked, and waits for chunks that never come — while
    a proxy in front that follows the RFC reads the same request by its Content-Length.
    RFC 9110 §5.6.1: list elements are separated by OWS, which is SP and HTAB only (§5.6.3);
    ``<VT>chunked`` is not ``chunked``, so the last coding is not chunked and the request is
    400 (RFC 9112 §6.3). h11 refuses the header outright.
    """
    running, received = receiver
    raw = HEAD + b"Transfer-Encoding: " + space + b"chunked\r\nContent-Length: 5\r\n\r\nhello"
    assert h11_refuses(raw)
    out = exchange(running.port, raw)
    assert out.startswith(b"HTTP/1.1 400 ") and not received


@pytest.mark.parametrize("hosts", [b"", b"Host: a\r\nHost: b\r\n"], ids=["no-host", "two-hosts"])
def test_an_http_1_1_request_needs_exactly_one_host(
        receiver: tuple[RunningReceiver, list[ReceivedRequest]], hosts: bytes) -> None:
    """A sender's HTTP/1.1 request carries no ``Host``, or two different ones.

    The user saw: the request accepted, printed and forwarded (the relay sets its own Host, so
    the app never learns which one a proxy in front acted on). RFC 9112 §3.2: "A server MUST
    respond with a 400 (Bad Request) status code to any HTTP/1.1 request message that lacks a
    Host header field and to any request message that contains more than one Host header field
    line". h11 refuses both.
    """
    running, received = receiver
    raw = b"POST /hook HTTP/1.1\r\n" + hosts + b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    assert h11_refuses(raw)
    out = exchange(running.port, raw)
    assert out.startswith(b"HTTP/1.1 400 ") and not received


@pytest.fixture
def guarded() -> Iterator[tuple[RunningReceiver, list[ReceivedRequest]]]:
    """A receiver whose read timeout (``settings.timeout`` in forward mode, 60 s otherwise) is 1 s."""
    received: list[ReceivedRequest] = []
    running = start_receiver(ReceiverConfig(port=0, read_timeout=1.0), on_request=received.append)
    yield running, received
    running.stop()


def test_a_sender_that_goes_silent_mid_request_is_cut_off(
        guarded: tuple[RunningReceiver, list[ReceivedRequest]]) -> None:
    """A sender opens a connection, sends half a request's head, then nothing.

    The user saw: listen kept the connection (and a thread) forever; a thousand such senders
    hold a thousand threads. They should see the connection closed once the sender has been
    silent for the idle timeout (as nginx's ``client_header_timeout``). Meanwhile other senders
    are answered. (Timeouts are shortened for the test.)
    """
    running, received = guarded
    with socket.create_connection(("127.0.0.1", running.port), timeout=30) as slow:
        slow.sendall(b"POST /hook HTTP/1.1\r\nHost: x\r\n")
        assert exchange(running.port, HEAD + b"Content-Length: 0\r\nConnection: close\r\n\r\n").startswith(
            b"HTTP/1.1 204 ")
        assert slow.recv(65536) == b""  # the server closed it (the 30 s socket timeout is only a safety net)
    assert len(received) == 1


def test_a_sender_dribbling_its_request_is_cut_off(
        guarded: tuple[RunningReceiver, list[ReceivedRequest]]) -> None:
    """A sender dribbles its head a byte at a time, never silent long enough for the idle timeout.

    The user saw: no bound at all (a per-read timeout never fires for a byte every 0.1 s). They
    should see the request cut once it has taken longer than the time a request may take to
    arrive. The sender offers 400 bytes at 0.1 s each (40 s); the server must close first.
    """
    running, received = guarded
    cut = False
    with socket.create_connection(("127.0.0.1", running.port), timeout=30) as slow:
        slow.sendall(b"POST /hook HTTP/1.1\r\nX-Dribble: ")
        for _ in range(400):
            try:
                slow.sendall(b"x")
            except OSError:
                cut = True
                break
            readable, _, _ = select.select([slow], [], [], 0.1)
            if readable:  # the server closed the connection (or answered, which it must not)
                cut = slow.recv(65536) == b""
                break
    assert cut and not received


# ---------------------------------------------------------------------------
# what reaches the terminal


def test_logs_show_escapes_what_a_server_sent(serve: Callable[..., RawServer], cli, config_path) -> None:  # type: ignore[no-untyped-def]
    """A server answers a 302 whose ``Location``, another header and body hold terminal escapes
    (``ESC [2J`` clears the screen, ``ESC ]0;…BEL`` retitles the window).

    The user saw: ``fire`` shows them escaped (``\\x1b[2J``), but ``logs show ID`` wrote the raw
    bytes, and the terminal acted on them. They should see them as text, as ``fire`` shows them
    (the log keeps the bytes as they came, JSON-escaped).
    """
    answer = (b"HTTP/1.1 302 Found\r\nLocation: http://x/\x1b[2J\x1b]0;pwned\x07\r\nX-A: \x1b[31mred\r\n"
              b"Content-Length: 9\r\n\r\n\x1b[2Jhello")
    server = serve(answering(answer))
    config_path.write_text(config_path.read_text() + (
        f'\n[endpoints.e]\n[[endpoints.e.mappings]]\nevent = "ClientCreate"\nurl = "{server.url}"\n'))
    fired = cli("fire", "ClientCreate")
    assert fired.exit_code == 1 and "\x1b" not in fired.stderr
    log = (config_path.parent / "log.jsonl").read_text().splitlines()
    shown = cli("logs", "show", __import__("json").loads(log[-1])["id"])
    assert shown.exit_code == 0
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    assert "http://x/\\x1b[2J" in shown.stdout and "\\x1b[2Jhello" in shown.stdout


# ---------------------------------------------------------------------------
# where it sends


def test_a_url_naming_port_0_is_not_sent_to_port_80() -> None:
    """A mapping's URL is ``http://127.0.0.1:0/hook`` (a typo, or a port left unset by a script).

    The user saw: the delivery went to port 80 of that host, with ``Host: 127.0.0.1`` — a server
    the user never named (``parts.port or 80`` takes 0 for "no port"). They should see the
    connection fail (nothing listens on port 0), as httpx and curl fail. RFC 3986 §3.2.3: only an
    empty or absent port means the scheme's default.
    """
    from moxiehook.http.proxies import Proxies, route

    found = route("http://127.0.0.1:0/hook", Proxies.none())
    assert found.connect == ("127.0.0.1", 0) and found.host_lines == b"Host: 127.0.0.1:0\r\n"
    proxied = route("http://example.com/hook", Proxies({"http": ("HTTP_PROXY", "http://127.0.0.1:0")}))
    assert proxied.connect == ("127.0.0.1", 0)
    with httpx_client() as client, pytest.raises(httpx.ConnectError):
        client.post("http://127.0.0.1:0/hook", content=b"{}")


def httpx_client() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=5.0)


@pytest.mark.parametrize("host", ["a\x00b", "a b", "a\x7fb", "a{b}"])
def test_a_host_that_is_no_host_is_never_written_to_a_proxy(serve: Callable[..., RawServer], host: str) -> None:
    """A log record (a file the user can edit, then ``replay``) holds ``http://a<NUL>b/hook``.

    The user saw: directly, a DNS error; through ``HTTP_PROXY``, the request line
    ``POST http://a<NUL>b/hook`` and ``Host: a<NUL>b`` written to the proxy as they were. They
    should see the attempt refused before anything is sent: RFC 3986 §3.2.2's reg-name holds
    only unreserved characters, percent-escapes and sub-delims, and RFC 9110 §5.5 forbids NUL
    in a field value.
    """
    from moxiehook.http import Connections, Proxies, TransportError

    heads: list[bytes] = []

    def record(conn: socket.socket) -> None:
        heads.append(conn.recv(65536))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    proxy = serve(record)
    connections = Connections(None, Proxies({"http": ("HTTP_PROXY", proxy.url.rsplit("/", 1)[0])}))
    with pytest.raises(TransportError, match="not a usable URL"):
        connections.post(f"http://{host}/hook", {}, b"{}", 5.0, 1024)
    connections.close()
    assert heads == []


@pytest.mark.parametrize("line", [b" folded\r\n", b"Content-Length : 5\r\n", b"X-Junk\r\n"],
                         ids=["folded", "space-before-colon", "no-colon"])
def test_a_malformed_first_header_line_is_refused_too(
        receiver: tuple[RunningReceiver, list[ReceivedRequest]], line: bytes) -> None:
    """The same malformed lines as above, but as the very first header line (before ``Host``).

    The user saw: a leading folded line accepted (the stdlib reads the request line before the
    check's recorder starts, and the check skipped one more line); the others refused only by
    luck (the headers after them, Host among them, were lost). They should see the same 400 for
    the same reason wherever the line is (RFC 9112 §5.1, §5.2).
    """
    running, received = receiver
    raw = b"POST /hook HTTP/1.1\r\n" + line + b"Host: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    out = exchange(running.port, raw)
    assert out.startswith(b"HTTP/1.1 400 ") and b"bad header line" in out and not received


# ---------------------------------------------------------------------------
# what if it never ends


def test_a_host_with_several_unreachable_addresses_gets_one_attempt_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host name resolves to three addresses that never answer a SYN (a full accept queue on
    127.0.0.1 drops it, as a firewall would), then to one that works.

    The user saw: a delivery with ``timeout = 1`` held 3 s (each address was given the whole
    timeout: ``socket.create_connection`` applies it per address), and then a connection made
    after the attempt was over. They should see the attempt end by its deadline: the addresses
    share the attempt's time, and none is tried once it is up. (The name's resolution is faked:
    there is no DNS on loopback; every socket is real.)
    """
    from moxiehook.http import AttemptTimeout, Connections, Proxies

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(0)
    filler = []
    for _ in range(3):  # fill the accept queue: further SYNs are dropped, connects hang
        sock = socket.socket()
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            sock.connect(silent.getsockname())
        filler.append(sock)
    working = socket.create_server(("127.0.0.1", 0))
    working.settimeout(0)
    real = socket.getaddrinfo

    def resolve(host: str, port: object, *args: object, **kwargs: object) -> list:  # type: ignore[type-arg]
        if host != "slow.example":
            return real(host, port, *args, **kwargs)  # type: ignore[arg-type]
        return real(*silent.getsockname(), *args, **kwargs) * 3 + real(*working.getsockname(), *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    connections = Connections(None, Proxies.none())
    try:
        with pytest.raises(AttemptTimeout):
            connections.post(f"http://slow.example:{working.getsockname()[1]}/hook", {}, b"{}", 0.5, 1024)
        with pytest.raises(BlockingIOError):
            working.accept()  # nobody connected after the attempt's time was up
    finally:
        connections.close()
        for sock in [*filler, silent, working]:
            sock.close()
