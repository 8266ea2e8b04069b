"""How moxiehook reads what a misbehaving server sends: each case is one server behaviour, played
against moxiehook and (where both can be asked) against httpx, and the difference, when there is
one, is the RFC's. Real sockets on 127.0.0.1; every server handles a bounded number of connections.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from moxiehook.config import Settings
from moxiehook.http import Connections, Proxies
from moxiehook.send.delivery import READ_LIMIT, Delivery, PreparedEndpoint, WireSender, judge_answer, send

Behaviour = Callable[[socket.socket], None]


def read_head(conn: socket.socket, size: int = 65536) -> bytes:
    """Bytes up to the end of a request's head (and whatever came with them)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(size)
        if not chunk:
            break
        data += chunk
    return data


def answering(answer: bytes) -> Behaviour:
    """Read the request's head (its small body comes in the same write), send ``answer``, close."""
    def behave(conn: socket.socket) -> None:
        read_head(conn)
        conn.sendall(answer)
    return behave


class RawServer:
    """Accepts up to ``limit`` connections, each handled by ``behaviour`` then closed."""

    def __init__(self, behaviour: Behaviour, limit: int = 8) -> None:
        self.behaviour = behaviour
        self.limit = limit
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.connections < self.limit:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    self.behaviour(conn)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def serve() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def start(behaviour: Behaviour, limit: int = 8) -> RawServer:
        servers.append(RawServer(behaviour, limit))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def moxiehook_reading(url: str, body: bytes = b"{}") -> tuple[Any, ...]:
    """("answer", status, body) or ("no answer", error) as a delivery sees it."""
    connections = Connections(None, Proxies.none())
    try:
        response = connections.post(url, {"Content-Type": "application/json"}, body, 5.0, READ_LIMIT)
    except Exception as exc:  # noqa: BLE001 - only moxiehook's own error may come out; checked below
        assert type(exc).__module__.startswith("moxiehook."), repr(exc)
        return ("no answer", str(exc))
    finally:
        connections.close()
    return ("answer", response.status, response.body)


def httpx_reading(url: str, body: bytes = b"{}") -> tuple[Any, ...]:
    with httpx.Client(trust_env=False, timeout=5.0) as client:
        try:
            response = client.post(url, content=body, headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            return ("no answer", type(exc).__name__)
    return ("answer", response.status_code, response.content)


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


# ---------------------------------------------------------------------------
# numbers that are not ASCII digits


def test_a_content_length_of_superscript_two_is_no_answer_not_a_crash(serve: Callable[..., RawServer]) -> None:
    """``str.isdigit()`` is true for "²" and ``int("²")`` fails: RFC 9110 §8.6 allows only 1*DIGIT (ASCII)."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: \xc2\xb2\r\n\r\nok"
    server = serve(answering(answer))
    mine, theirs = moxiehook_reading(server.url), httpx_reading(server.url)
    assert mine[0] == theirs[0] == "no answer"
    assert "Content-Length" in mine[1]


def test_a_content_length_of_superscript_two_is_a_failed_delivery_in_the_log(
        serve: Callable[..., RawServer], cli: Any, config_path: Any) -> None:
    server = serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: \xc2\xb2\r\n\r\nok"))
    config_path.write_text(
        'version = 1\n[settings]\nmax_attempts = 1\ntimeout = 5.0\n[endpoints.crm]\n'
        f'[[endpoints.crm.mappings]]\nevent = "ClientCreate"\nurl = "{server.url}"\n')
    result = cli("fire", "ClientCreate", "--json")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    logged = (config_path.parent / "moxiehook-log.jsonl").read_text()
    assert '"outcome":"failed"' in logged.replace(" ", "") and "Content-Length" in logged


def test_a_retry_after_of_superscript_two_is_ignored(serve: Callable[..., RawServer]) -> None:
    """RFC 9110 §10.2.3: delay-seconds is 1*DIGIT; a value that is not one is ignored, not a crash."""
    server = serve(answering(b"HTTP/1.1 503 Busy\r\nRetry-After: \xc2\xb2\r\nContent-Length: 0\r\n\r\n"))
    answer = WireSender(None).post(server.url, {}, b"{}", 5.0)
    assert answer.status == 503 and answer.retry_after is None


@pytest.mark.parametrize("length", ["\u0663".encode(), b"+1", b"0x10", b"1 2", b"-0"],
                         ids=["arabic-indic 3", "+1", "0x10", "1 2", "-0"])
def test_a_content_length_that_is_not_ascii_digits_is_no_answer(serve: Callable[..., RawServer],
                                                                 length: bytes) -> None:
    server = serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: " + length + b"\r\n\r\nok"))
    mine, theirs = moxiehook_reading(server.url), httpx_reading(server.url)
    assert mine[0] == theirs[0] == "no answer"


def test_a_content_length_of_40_digits_is_no_answer(serve: Callable[..., RawServer]) -> None:
    """No body is 10^39 bytes long; h11 refuses lengths over 20 digits (a bound, not a crash)."""
    server = serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 40 + b"\r\n\r\nok"))
    mine, theirs = moxiehook_reading(server.url), httpx_reading(server.url)
    assert mine[0] == theirs[0] == "no answer"


@pytest.mark.parametrize(("value", "seconds"), [("\u0663", None), ("+1", None), ("0x10", None), ("9" * 5000, 60.0),
                                                 ("3", 3.0)])
def test_retry_after_takes_ascii_digits_only_and_is_capped(value: str, seconds: float | None) -> None:
    assert judge_answer(503, {"retry-after": value}, "").retry_after == seconds


# ---------------------------------------------------------------------------
# framing


@pytest.mark.parametrize("coding", [b"xchunked", b"chunked, gzip", b"gzip, chunked, identity"])
def test_a_transfer_encoding_that_does_not_end_in_chunked_is_not_decoded_as_chunked(
        serve: Callable[..., RawServer], coding: bytes) -> None:
    """RFC 9112 §6.3: only a final ``chunked`` frames a body by chunks (``xchunked`` is another
    coding). A body that is not framed by chunks would run to the close, encoded in codings no
    client here undoes; moxiehook and httpx (both through h11) refuse such an answer rather than
    mis-split a kept-alive connection."""
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: " + coding + b"\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    server = serve(answering(answer))
    mine, theirs = moxiehook_reading(server.url), httpx_reading(server.url)
    assert mine[0] == theirs[0] == "no answer"
    assert "Transfer-Encoding" in mine[1]


@pytest.mark.parametrize(
    "line",
    [b"X-Bad: a\x00b", b"X-B\x00ad: ab", b"X-Bad: a\rb", b"X-B\rad: ab"],
    ids=["NUL in a value", "NUL in a name", "bare CR in a value", "bare CR in a name"],
)
def test_nul_and_bare_cr_in_a_header_are_refused(serve: Callable[..., RawServer], line: bytes) -> None:
    """RFC 9110 §5.5: NUL and bare CR are not field content; a recipient rejects the message (or
    replaces them with SP); accepting them would carry them into the log."""
    server = serve(answering(b"HTTP/1.1 200 OK\r\n" + line + b"\r\nContent-Length: 2\r\n\r\nok"))
    mine, theirs = moxiehook_reading(server.url), httpx_reading(server.url)
    assert mine[0] == theirs[0] == "no answer"
    assert "header" in mine[1]


def test_the_header_cap_holds_when_the_headers_arrive_in_two_reads(serve: Callable[..., RawServer]) -> None:
    """80 KiB of headers come in two reads (the client reads 64 KiB at a time): still refused."""
    def behave(conn: socket.socket) -> None:
        read_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 40_000 + b"\r\n")
        conn.sendall(b"X-B: " + b"b" * 40_000 + b"\r\nContent-Length: 2\r\n\r\nok")

    server = serve(behave)
    mine = moxiehook_reading(server.url)
    assert mine[0] == "no answer" and "longer than 64 KiB" in mine[1]


def test_an_early_413_is_the_answer_and_the_body_is_sent_once(serve: Callable[..., RawServer]) -> None:
    """RFC 9112 §9.5: a server may answer before the request is read, then close. The close resets
    the connection under the client's write; the answer sent before it is still the outcome (curl
    and httpx report the 413 too), and a 4xx is not retried: the body goes out once."""
    def behave(conn: socket.socket) -> None:
        conn.recv(100)  # the start of the head: the rest stays unread, so closing resets the connection
        conn.sendall(b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 9\r\n\r\ntoo large")

    big = b"x" * (32 * 1024 * 1024)  # more than the kernel buffers: the write is still going when the reset comes
    server = serve(behave)
    endpoint = PreparedEndpoint("crm", {}, {}, None, 10.0, True)
    delivery = Delivery("ClientCreate", server.url, {}, big, "evt_1")
    record, _ = send(WireSender(None), endpoint, delivery, Settings(max_attempts=3, backoff=0.01),
                     sleep=lambda seconds: None)
    assert record.status == 413 and len(record.attempts) == 1
    assert server.connections == 1
    assert httpx_reading(server.url, big)[:2] == ("answer", 413)


# ---------------------------------------------------------------------------
# status lines


def test_http_1_2_is_read_as_http_1_1(serve: Callable[..., RawServer]) -> None:
    """RFC 9112 §2.3: a recipient processes a higher minor version as the highest it conforms to."""
    server = serve(answering(b"HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    assert moxiehook_reading(server.url) == httpx_reading(server.url) == ("answer", 200, b"ok")


@pytest.mark.parametrize("status", [b"000", b"099"])
def test_a_status_below_100_is_refused(serve: Callable[..., RawServer], status: bytes) -> None:
    """RFC 9110 §15: status codes run from 100 to 599 (three digits, the first 1-5)."""
    server = serve(answering(b"HTTP/1.1 " + status + b" Zero\r\nContent-Length: 2\r\n\r\nok"))
    mine, theirs = moxiehook_reading(server.url), httpx_reading(server.url)
    assert mine[0] == theirs[0] == "no answer"


def test_a_304_is_not_called_a_redirect() -> None:
    """RFC 9110 §15.4.5: 304 Not Modified answers a conditional request; it redirects nowhere."""
    assert "redirect" not in (judge_answer(304, {}, "").error or "")
    assert "redirects are not followed" in (judge_answer(302, {"location": "/x"}, "").error or "")


def test_an_empty_query_is_kept(serve: Callable[..., RawServer]) -> None:
    """RFC 3986 §6.2.3: ``/a?`` and ``/a`` may differ to the server (a signed target does): sent as given."""
    seen: list[bytes] = []

    def behave(conn: socket.socket) -> None:
        seen.append(read_head(conn).split(b"\r\n", 1)[0])
        conn.sendall(OK)

    server = serve(behave)
    url = server.url.replace("/hook", "/a?")
    moxiehook_reading(url)
    httpx_reading(url)
    assert seen == [b"POST /a? HTTP/1.1"] * 2


# ---------------------------------------------------------------------------
# answers that never end (each server stops after a bounded time, or when the client has gone)


def dribbling(prefix: bytes, byte: bytes, every: float = 0.02, at_most: float = 10.0) -> Behaviour:
    """Send ``prefix``, then ``byte`` every ``every`` s, for at most ``at_most`` s or until the client goes."""
    def behave(conn: socket.socket) -> None:
        read_head(conn)
        conn.sendall(prefix)
        stop = threading.Event()
        for _ in range(int(at_most / every)):
            conn.sendall(byte)
            if stop.wait(every):
                break
    return behave


def flooding(prefix: bytes, block: bytes, at_most: int = 1 << 30) -> Behaviour:
    """Send ``prefix``, then ``block`` again and again, up to ``at_most`` bytes (1 GiB) or until the client goes."""
    def behave(conn: socket.socket) -> None:
        read_head(conn)
        conn.sendall(prefix)
        for _ in range(at_most // len(block)):
            conn.sendall(block)
    return behave


def test_a_head_dribbled_a_byte_at_a_time_is_cut_at_the_deadline(serve: Callable[..., RawServer]) -> None:
    server = serve(dribbling(b"HTTP/1.1 200 OK\r\n", b"X"))
    answer = WireSender(None).post(server.url, {}, b"{}", 0.5)
    assert answer.status is None and answer.error == "timeout: no answer within 0.5 s"


def test_a_body_dribbled_a_byte_at_a_time_is_cut_at_the_deadline(serve: Callable[..., RawServer]) -> None:
    """The status is in: the delivery's outcome is decided; the body is kept as far as it came."""
    server = serve(dribbling(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", b"x"))
    connections = Connections(None, Proxies.none())
    response = connections.post(server.url, {}, b"{}", 0.5, READ_LIMIT)
    assert response.status == 200 and response.unfinished == "timeout" and 0 < len(response.body) < 100
    connections.close()


@pytest.mark.parametrize("framing", [b"Content-Length: 1073741824\r\n", b"", b"Transfer-Encoding: chunked\r\n"])
def test_a_1_gib_answer_is_read_up_to_the_limit(serve: Callable[..., RawServer], framing: bytes) -> None:
    block = b"x" * 65536
    if framing.startswith(b"Transfer"):
        block = b"10000\r\n" + block + b"\r\n"
    server = serve(flooding(b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n", block))
    connections = Connections(None, Proxies.none())
    response = connections.post(server.url, {}, b"{}", 10.0, READ_LIMIT)
    assert response.status == 200 and response.body == b"x" * READ_LIMIT and response.unfinished == "limit"
    connections.close()


@pytest.mark.parametrize("what", [b"X-Endless: ", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;"])
def test_endless_headers_or_chunk_lines_are_cut_at_64_kib(serve: Callable[..., RawServer], what: bytes) -> None:
    prefix = what if what.startswith(b"HTTP") else b"HTTP/1.1 200 OK\r\n" + what
    server = serve(flooding(prefix, b"a" * 4096))
    connections = Connections(None, Proxies.none())
    try:
        response = connections.post(server.url, {}, b"{}", 10.0, READ_LIMIT)
    except Exception as exc:  # noqa: BLE001 - the endless header: no answer
        assert "longer than 64 KiB" in str(exc)
    else:  # the endless chunk line: the status was in, the body is cut
        assert response.status == 200 and response.body == b"" and response.unfinished == "closed"
    connections.close()


def test_a_flood_of_informational_answers_is_no_answer(serve: Callable[..., RawServer]) -> None:
    server = serve(flooding(b"", b"HTTP/1.1 100 Continue\r\n\r\n", at_most=1 << 20))
    answer = WireSender(None).post(server.url, {}, b"{}", 5.0)
    assert answer.status is None and "more than 8 informational" in (answer.error or "")


def test_a_204_with_a_body_is_204_and_its_connection_is_not_reused(serve: Callable[..., RawServer]) -> None:
    """RFC 9110 §15.3.5: a 204 has no content; bytes after its head are not the next answer's."""
    server = serve(answering(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello"))
    connections = Connections(None, Proxies.none())
    assert [connections.post(server.url, {}, b"{}", 5.0, READ_LIMIT).status for _ in range(2)] == [204, 204]
    assert server.connections == 2
    connections.close()


def test_an_answer_shorter_than_announced_is_unfinished(serve: Callable[..., RawServer]) -> None:
    server = serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"))
    connections = Connections(None, Proxies.none())
    response = connections.post(server.url, {}, b"{}", 5.0, READ_LIMIT)
    assert (response.status, response.body, response.unfinished) == (200, b"hello", "closed")
    connections.close()


# ---------------------------------------------------------------------------
# keep-alive: stale connections, and never a request sent twice


def test_a_connection_the_server_closed_while_idle_is_not_used(serve: Callable[..., RawServer]) -> None:
    requests: list[bytes] = []

    def behave(conn: socket.socket) -> None:  # one answer a connection, kept alive, then closed while idle
        requests.append(read_head(conn))
        conn.sendall(OK)

    server = serve(behave)
    connections = Connections(None, Proxies.none())
    first = connections.post(server.url, {}, b"{}", 5.0, READ_LIMIT)
    [idle] = [c for idle in connections._idle.values() for c in idle]  # noqa: SLF001 - the kept-alive connection
    select.select([idle.sock], [], [], 5)  # wait (bounded) until the server's close has arrived
    second = connections.post(server.url, {}, b"{}", 5.0, READ_LIMIT)
    assert (first.status, second.status) == (200, 200)
    assert server.connections == 2 and len(requests) == 2
    connections.close()


def test_a_request_on_a_reused_connection_is_not_sent_again_when_it_fails(serve: Callable[..., RawServer]) -> None:
    """The server reads the second request and closes without answering: the attempt fails, and
    the client does not resend it on a new connection (a POST is not idempotent; retries are the
    delivery's decision, logged as attempts)."""
    requests: list[bytes] = []

    def behave(conn: socket.socket) -> None:
        requests.append(read_head(conn))
        conn.sendall(OK)
        requests.append(read_head(conn))  # then close without answering

    server = serve(behave, limit=2)
    connections = Connections(None, Proxies.none())
    assert connections.post(server.url, {}, b"{}", 5.0, READ_LIMIT).status == 200
    with pytest.raises(Exception, match="closed the connection without answering"):
        connections.post(server.url, {}, b"{}", 5.0, READ_LIMIT)
    assert len(requests) == 2 and server.connections == 1
    connections.close()
