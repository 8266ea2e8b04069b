"""What ``listen`` reads off the wire, and what its relay passes on: body framing (RFC 9112 §6.3),
``Connection`` lists, and headers meant for a proxy. Real sockets on 127.0.0.1, listen in-process.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from moxiehook.receive import Check, ForwardConfig, Forwarder, ReceiverConfig, RunningReceiver, start_receiver
from tests.conftest import Receiver


def exchange(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send ``data`` on a fresh connection (its sending side left open) and read until the server closes.

    A server that keeps the connection open makes this fail with a timeout: the tests below
    that expect a close rely on it.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def statuses(answer: bytes) -> list[int]:
    return [int(line.split(b" ", 2)[1]) for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]


@pytest.fixture
def listening() -> Iterator[Callable[..., RunningReceiver]]:
    running: list[RunningReceiver] = []

    def start(**relay: object) -> RunningReceiver:
        running.append(start_receiver(ReceiverConfig(port=0), **relay))  # type: ignore[arg-type]
        return running[-1]

    yield start
    for receiver in running:
        receiver.stop()


# ---------------------------------------------------------------------------
# framing of what listen receives


@pytest.mark.parametrize(
    ("coding", "status"),
    [(b"xchunked", 400), (b"chunked, gzip", 400), (b"gzip, chunked", 501)],
)
def test_a_request_whose_last_coding_is_not_chunked_is_refused(
        listening: Callable[..., RunningReceiver], coding: bytes, status: int) -> None:
    """RFC 9112 §6.3: in a request, a Transfer-Encoding whose final coding is not chunked leaves the
    body's length unknown: 400 and close. A coding before chunked is one listen does not undo: 501
    (RFC 9112 §6.1)."""
    server = listening()
    request = (b"POST /h HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + coding + b"\r\n\r\n"
               b"2\r\n{}\r\n0\r\n\r\n")
    assert statuses(exchange(server.port, request)) == [status]


def test_two_different_content_lengths_are_refused(listening: Callable[..., RunningReceiver]) -> None:
    """RFC 9112 §6.3: differing Content-Length values make the framing unknowable: 400 and close."""
    server = listening()
    request = b"POST /h HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 12\r\n\r\n{}GET / HTTP/1.1"
    assert statuses(exchange(server.port, request)) == [400]


def test_a_chunked_body_is_read_exactly_and_the_next_request_on_the_connection_is_answered(
        listening: Callable[..., RunningReceiver]) -> None:
    seen: list[bytes] = []
    server = listening(on_request=lambda request: seen.append(request.body))
    first = (b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"3;ext=1\r\n{\"a\r\n5\r\n\": 1}\r\n0\r\nX-Trailer: t\r\n\r\n")
    second = b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    assert statuses(exchange(server.port, first + second)) == [204, 204]
    assert seen == [b'{"a": 1}', b"{}"]


def test_connection_close_among_other_tokens_closes(listening: Callable[..., RunningReceiver]) -> None:
    """RFC 9110 §7.6.1: ``Connection`` is a list; ``close`` anywhere in it closes after the answer."""
    server = listening()
    request = b"POST /h HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: X-Trace, close\r\n\r\n{}"
    assert statuses(exchange(server.port, request)) == [204]  # and the server closed: exchange returned


# ---------------------------------------------------------------------------
# what the relay passes on


def test_the_relay_drops_proxy_headers_and_what_connection_names(
        listening: Callable[..., RunningReceiver], receiver: Receiver, tmp_path: Path) -> None:
    """``Proxy`` would become the app's ``HTTP_PROXY`` under CGI (httpoxy); ``Proxy-*`` headers are
    for a proxy, not the app; what ``Connection`` lists is hop-by-hop (RFC 9110 §7.6.1). None of them
    reaches the app; the other headers do, and ``close`` closes the sender's connection."""
    forwarder = Forwarder(ForwardConfig(receiver.url(""), tmp_path / "log.jsonl", 5.0), Check())
    server = listening(relay=forwarder)
    request = (b"POST /hooks/a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: X-Secret, close\r\n"
               b"X-Secret: s\r\nProxy: http://evil.example:3128\r\nProxy-Foo: a\r\nPROXY-AUTHORIZATION: Basic eA==\r\n"
               b"X-Kept: k\r\n\r\n{}")
    assert statuses(exchange(server.port, request)) == [200]
    (received,) = receiver.requests
    assert received.headers.get("x-kept") == "k"
    assert not {"x-secret", "proxy", "proxy-foo", "proxy-authorization", "connection"} & set(received.headers)


@pytest.mark.parametrize(
    "line",
    [b"X-A: 1\rAuthorization: Bearer smuggled", b"X-A: a\x00b", b"X-\x00A: b", b"X-A: b\r"],
    ids=["bare CR starting a header", "NUL in a value", "NUL in a name", "CR before CRLF"],
)
def test_nul_or_bare_cr_in_a_request_header_is_refused(listening: Callable[..., RunningReceiver],
                                                       line: bytes) -> None:
    """RFC 9110 §5.5: a recipient of CR, LF or NUL in a field rejects the message (or replaces them
    with SP). The stdlib's header parser takes a bare CR as a line break, so without this check
    ``X-A: 1<CR>Authorization: …`` arrives, and is relayed, as two headers."""
    seen: list[object] = []
    server = listening(on_request=seen.append)
    request = b"POST /h HTTP/1.1\r\nHost: x\r\n" + line + b"\r\nContent-Length: 2\r\n\r\n{}"
    assert statuses(exchange(server.port, request)) == [400]
    assert seen == []


def test_the_relay_reads_no_body_after_an_answer_to_head() -> None:
    """RFC 9110 §9.3.2: an answer to HEAD has no content, whatever its Content-Length says: the relay
    passes it back at once rather than wait (until its timeout) for 100 bytes that never come."""
    from moxiehook.http import RelayClient

    with socket.create_server(("127.0.0.1", 0)) as app:
        def serve() -> None:
            conn, _ = app.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nX-App: 1\r\n\r\n")
                conn.recv(65536)  # held open: only the framing says the answer is over

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        client = RelayClient()
        answer = client.request("HEAD", f"http://127.0.0.1:{app.getsockname()[1]}/h", [], b"", 5.0)
        client.close()
        thread.join(5)
    assert (answer.status, answer.body, answer.error) == (200, b"", None)
    assert ("X-App", "1") in answer.headers and ("Content-Length", "100") not in answer.headers


def test_listen_loads_h11_only_for_a_chunked_body_or_a_relay() -> None:
    """Most webhooks carry a Content-Length: listen starts without the parser's import (~16 ms)."""
    import subprocess
    import sys

    code = ("import sys, moxiehook.receive, moxiehook.cli.listen_cmds; "
            "print([m for m in ('h11', 'httpx', 'moxiehook.http.client') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr


def test_a_relayed_answer_to_head_claims_no_length_of_zero(
        listening: Callable[..., RunningReceiver], tmp_path: Path) -> None:
    """RFC 9110 §8.6: a Content-Length in an answer to HEAD must be the length a GET would get;
    the app's is hop-by-hop to the relay, so none is sent rather than a false 0."""
    with socket.create_server(("127.0.0.1", 0)) as app:
        def serve() -> None:
            conn, _ = app.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        forwarder = Forwarder(ForwardConfig(f"http://127.0.0.1:{app.getsockname()[1]}", tmp_path / "log.jsonl", 5.0),
                              Check())
        server = listening(relay=forwarder)
        answer = exchange(server.port, b"HEAD /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        thread.join(5)
    assert statuses(answer) == [200] and b"content-length: 0" not in answer.lower()
