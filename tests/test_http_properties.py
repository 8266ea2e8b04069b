"""Property tests of the wire: for generated answers and chunked bodies, moxiehook reads what the
HTTP libraries read (h11, which it is built on, and llhttp through httptools, which it is not),
or fails cleanly with its own error. Real sockets (a socketpair) carry every generated answer.
"""

from __future__ import annotations

import io
import re
import socket
import time
from typing import Any

import h11
import httptools
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moxiehook.http import BadChunkedBody, BodyTooLarge, TransportError, read_chunked
from moxiehook.http.client import _Connection, _exchange

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------
# chunked bodies (listen's decoder)


@st.composite
def chunked_bodies(draw: Any) -> tuple[bytes, bytes]:
    """(the encoding, the body it carries), with extensions, odd hex, leading zeros and trailers."""
    chunks = draw(st.lists(st.binary(min_size=1, max_size=300), max_size=8))
    parts = []
    for chunk in chunks:
        size = format(len(chunk), draw(st.sampled_from(["x", "X"])))
        size = "0" * draw(st.integers(0, 3)) + size
        # h11 refuses whitespace before ";" (the RFC's BWS, which a sender "SHOULD NOT generate"):
        # so does listen, as the decoder is h11.
        ext = draw(st.sampled_from(["", ";a", ";a=1", ';name="v"', ";a=b;c"]))
        parts.append(f"{size}{ext}\r\n".encode() + chunk + b"\r\n")
    last = "0" * draw(st.integers(1, 3)) + draw(st.sampled_from(["", ";end"]))
    trailers = draw(st.lists(st.sampled_from([b"X-T: 1\r\n", b"Digest: abc\r\n"]), max_size=2))
    encoded = b"".join(parts) + f"{last}\r\n".encode() + b"".join(trailers) + b"\r\n"
    return encoded, b"".join(chunks)


def h11_decoding(encoded: bytes) -> bytes | None:
    """What h11 makes of a request body with these bytes (None: it refuses or needs more)."""
    server = h11.Connection(h11.SERVER)
    server.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + encoded)
    body = b""
    try:
        while True:
            event = server.next_event()
            if isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return body
            elif event is h11.NEED_DATA:
                return None
    except h11.RemoteProtocolError:
        return None


def decode(data: bytes, limit: int = 1 << 20) -> tuple[bytes | None, bytes]:
    """(what listen's decoder read, or None when it refused; what is left in the stream)."""
    stream = io.BufferedReader(io.BytesIO(data), buffer_size=64)  # small: bodies span many reads
    try:
        body: bytes | None = read_chunked(stream, limit)
    except (BadChunkedBody, BodyTooLarge, ConnectionError):
        body = None
    return body, stream.read()


@SETTINGS
@given(chunked_bodies(), st.binary(max_size=40))
def test_listens_decoder_reads_generated_bodies_as_h11_does_and_no_further(
        sample: tuple[bytes, bytes], after: bytes) -> None:
    encoded, body = sample
    decoded, left = decode(encoded + after)
    assert decoded == body == h11_decoding(encoded)
    assert left == after  # the next request on the connection is untouched


@SETTINGS
@given(chunked_bodies(), st.lists(st.tuples(st.integers(0, 10_000), st.binary(min_size=1, max_size=3)), max_size=3))
def test_listens_decoder_never_accepts_what_h11_refuses(sample: tuple[bytes, bytes],
                                                         edits: list[tuple[int, bytes]]) -> None:
    mangled = bytearray(sample[0])
    for where, data in edits:
        at = where % (len(mangled) + 1)
        mangled[at:at + len(data)] = data
    decoded, _ = decode(bytes(mangled))
    assert decoded is None or decoded == h11_decoding(bytes(mangled))


def test_a_body_over_the_limit_is_refused() -> None:
    assert decode(b"5\r\nhello\r\n0\r\n\r\n", limit=4)[0] is None


# ---------------------------------------------------------------------------
# answers (the client)

TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-!#$%&'*+.^_`|~",
                min_size=1, max_size=12)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
ODD_BYTES = st.sampled_from([b"\x00", b"\r", b"\n", b" ", b"\t", b"\xc2\xb2", b"\x7f", b",", b":"])


@st.composite
def answers(draw: Any) -> bytes:
    """An answer as a server might send it: mostly HTTP, with the mistakes servers make."""
    version = draw(st.sampled_from([b"1.1", b"1.1", b"1.0", b"1.2", b"2.0", b"0.9", b"11"]))
    status = draw(st.one_of(st.sampled_from([b"200", b"201", b"204", b"304", b"404", b"503", b"000", b"099",
                                             b"100", b"103", b"999", b"20", b"2000", b"2x0"]),
                            st.integers(100, 999).map(lambda n: str(n).encode())))
    reason = draw(st.sampled_from([b" OK", b"", b" ", b" Some Reason", b" \xe2\x9c\x93"]))
    body = draw(st.binary(max_size=200))
    headers: list[bytes] = []
    for name, value in draw(st.lists(st.tuples(TOKEN, st.text(max_size=20)), max_size=4)):
        headers.append(name.encode() + b": " + value.encode("utf-8", "replace"))
    framing = draw(st.sampled_from(["length", "wrong length", "chunked", "none", "two lengths", "non-final chunked"]))
    payload = body
    if framing == "length":
        headers.append(b"Content-Length: %d" % len(body))
    elif framing == "wrong length":
        headers.append(b"Content-Length: %d" % (len(body) + draw(st.integers(-len(body), 5))))
    elif framing == "two lengths":
        headers += [b"Content-Length: %d" % len(body), b"Content-Length: %d" % (len(body) + 1)]
    elif framing in ("chunked", "non-final chunked"):
        headers.append(b"Transfer-Encoding: chunked" + (b", gzip" if framing == "non-final chunked" else b""))
        payload = (b"%x\r\n" % len(body) + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    if draw(st.booleans()) and headers:  # one odd byte somewhere in the headers
        where = draw(st.integers(0, len(headers) - 1))
        at = draw(st.integers(0, len(headers[where])))
        headers[where] = headers[where][:at] + draw(ODD_BYTES) + headers[where][at:]
    informational = draw(st.sampled_from([b"", CONTINUE]))
    head = b"HTTP/" + version + b" " + status + reason + b"\r\n" + b"".join(h + b"\r\n" for h in headers)
    return informational + head + b"\r\n" + payload


def moxiehook_reading(answer: bytes) -> tuple[int, list[tuple[str, str]], bytes, str | None] | None:
    """Status, headers, body and why the body is unfinished; None for moxiehook's clean error."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(answer)
        theirs.shutdown(socket.SHUT_WR)
        try:
            response, _ = _exchange(_Connection(ours), "POST", b"POST / HTTP/1.1\r\n\r\n", 1 << 20,
                                    time.monotonic() + 10)
        except TransportError:
            return None
    return response.status, response.raw_headers, response.body, response.unfinished


def h11_reading(answer: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool] | None:
    """h11's reading: status, headers, body, whether the body ended as framed; None if no final head."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="POST", target="/", headers=[("Host", "x")]))
    client.send(h11.EndOfMessage())
    client.receive_data(answer)
    client.receive_data(b"")
    head, body = None, b""
    try:
        while True:
            event = client.next_event()
            if isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
    except h11.RemoteProtocolError:
        if head is None:
            return None
        return head.status_code, list(head.headers.raw_items()), body, False
    assert head is not None
    return head.status_code, list(head.headers.raw_items()), body, True


def httptools_reading(answer: bytes) -> tuple[int, bytes] | None:
    """llhttp's reading of the final answer (status, body), None when it refuses it or it is unfinished."""
    class Collect:
        def __init__(self) -> None:
            self.body, self.done = b"", False

        def on_body(self, data: bytes) -> None:
            self.body += data

        def on_message_complete(self) -> None:
            self.done = True

    # An informational answer is a message of its own to llhttp: the generated one is skipped here.
    answer = answer.removeprefix(CONTINUE)
    collected = Collect()
    parser = httptools.HttpResponseParser(collected)
    try:
        parser.feed_data(answer)
    except (httptools.HttpParserError, httptools.HttpParserUpgrade):
        return None
    return (parser.get_status_code(), collected.body) if collected.done else None


@SETTINGS
@given(answers())
def test_the_client_reads_an_answer_as_h11_does_or_fails_cleanly(answer: bytes) -> None:
    mine, library = moxiehook_reading(answer), h11_reading(answer)
    if library is None:
        assert mine is None
        return
    assert mine is not None  # the caps the client adds (64 KiB of head, 8 informational answers) are not reached
    status, headers, body, ended = library
    assert mine[0] == status
    assert mine[1] == [(n.decode("latin-1") if not _utf8(n) else n.decode(), _text(v)) for n, v in headers]
    assert mine[2] == body
    assert (mine[3] is None) == ended


@SETTINGS
@given(answers())
def test_where_llhttp_also_reads_an_answer_whole_it_reads_the_same_status_and_body(answer: bytes) -> None:
    """Except where the RFC lets recipients differ: a bare LF may end a line (RFC 9112 §2.2); h11
    takes it as one (so ``\\r\\n\\n`` ends the head), llhttp skips it."""
    if re.search(rb"(?<!\r)\n", answer):
        return
    mine, other = moxiehook_reading(answer), httptools_reading(answer)
    if mine is None or other is None or mine[3] is not None:
        return
    assert (mine[0], mine[2]) == other


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


def _text(raw: bytes) -> str:
    return raw.decode() if _utf8(raw) else raw.decode("latin-1")
