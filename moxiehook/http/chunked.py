"""The one chunked-body decoder for what moxiehook receives (``listen``), done by h11.

``listen``'s server (the stdlib's ``BaseHTTPRequestHandler``) reads a request's
line and headers but leaves its body to the handler; a chunked body is handed
to h11 here, so ``listen`` and the client decode chunks with the same library
and no chunk framing is parsed by hand anywhere in moxiehook.

The stream is read through ``peek``: what h11 has not used (the next request
on a kept-alive connection) stays in the stream, so decoding a body consumes
exactly its bytes and no more.
"""

from __future__ import annotations

from typing import Protocol

import h11

from moxiehook.http.errors import ParserError

# The head h11 is told the body belongs to; the real one was read by the server.
_HEAD = b"POST / HTTP/1.1\r\nHost: moxiehook\r\nTransfer-Encoding: chunked\r\n\r\n"
LINE_LIMIT = 16 * 1024  # bytes of a chunk-size line or the trailer section, as h11's default


class Stream(Protocol):
    """A buffered binary stream (``io.BufferedReader``: a socket's ``makefile('rb')``)."""

    def peek(self, size: int = ..., /) -> bytes: ...

    def read(self, size: int = ..., /) -> bytes: ...


class BadChunkedBody(ValueError):
    """The body does not follow chunked framing (RFC 9112 §7.1): answer 400 and close."""


class BodyTooLarge(ValueError):
    """The decoded body would be longer than the limit: answer 413 and close."""


def read_chunked(stream: Stream, limit: int) -> bytes:
    """Decode one chunked body from ``stream`` (positioned just after the headers); at most ``limit`` bytes.

    Trailer fields are read and dropped. Raises ``BadChunkedBody`` for bad
    framing, ``BodyTooLarge`` past ``limit``, ``ConnectionError`` when the
    sender closes the connection before the body ends.
    """
    parser = h11.Connection(h11.SERVER, max_incomplete_event_size=LINE_LIMIT)
    parser.receive_data(_HEAD)
    parser.next_event()  # the Request
    body = bytearray()
    while True:
        data = stream.peek(65536)
        if not data:
            raise ConnectionError("the sender closed the connection inside a chunked body")
        parser.receive_data(data)
        while True:
            try:
                event = parser.next_event()
            except ParserError as exc:
                raise BadChunkedBody(f"bad chunked body: {exc}") from None
            if event is h11.NEED_DATA:
                stream.read(len(data))  # all of it was h11's: take it out of the stream
                break
            if type(event) is h11.Data:
                body += event.data
                if len(body) > limit:
                    raise BodyTooLarge("body too large")
            elif type(event) is h11.EndOfMessage:
                stream.read(len(data) - len(parser.trailing_data[0]))  # the rest is the next request
                return bytes(body)
