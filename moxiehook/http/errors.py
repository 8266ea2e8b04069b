"""What can go wrong on the wire, and the one place that turns h11's, ssl's and the OS's errors into it.

The client never lets a library's exception out: ``failure`` maps each of them
to a ``TransportError`` whose message a person can read in a log line (and
which is escaped: what a server sent may reach a terminal).
"""

from __future__ import annotations

import re
import sys

import h11

from moxiehook.http.limits import MAX_HEAD

# The one exception h11 raises for what a peer sent; the wire catches it under this name only.
ParserError = h11.RemoteProtocolError


class TransportError(Exception):
    """No usable answer; the message says why (``connection refused``, ``not an HTTP answer: …``).

    ``kind`` is the message without anything the server chose to send (``not an HTTP answer``
    where the message shows the bytes that came): the same text for every answer that failed
    the same way, for a tally that keeps one row per text (Locust's failures). Without it, a
    server answering each request differently would add a row per request, without end.
    """

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = message if kind is None else kind


class AttemptTimeout(TransportError):
    """The attempt's deadline passed before an answer's status and headers arrived."""


def shown(raw: bytes | bytearray) -> str:
    """The start of what the server sent, escaped (it may reach a terminal)."""
    return repr(bytes(raw[:60]))


def failure(exc: BaseException, received: bytes | bytearray = b"") -> TransportError:
    """The ``TransportError`` for ``exc``, raised while getting an answer's status and headers.

    ``received``: what the server had sent of this answer, to show it when it
    was not HTTP at all. Anything that is not one of the errors below is a bug
    and is not mapped (the caller lets it through).
    """
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, TimeoutError):
        return AttemptTimeout(str(exc) or "the attempt's time is up")
    if isinstance(exc, ParserError):
        return TransportError(*_protocol_message(str(exc), received))
    if isinstance(exc, OSError):
        return TransportError(_os_message(exc))
    raise TypeError(f"not a wire error: {exc!r}")  # pragma: no cover - the caller's bug


def _protocol_message(message: str, received: bytes | bytearray) -> tuple[str, str]:
    """The message for an answer h11 refused, and its kind (the message without the server's bytes)."""
    if message == "Receive buffer too long":
        text = f"the answer's headers are longer than {MAX_HEAD // 1024} KiB"
        return text, text
    first_line = bytes(received).split(b"\n", 1)[0].rstrip(b"\r")
    if not received:
        text = "the server closed the connection without answering"
        return text, text
    if message.startswith("peer unexpectedly") and first_line.startswith(b"HTTP/"):
        text = "the server closed the connection in the middle of the answer's headers"
        return text, text
    if not first_line.startswith(b"HTTP/") or message.startswith(("illegal status line", "peer unexpectedly")):
        # A banner, binary bytes, another protocol: show what came rather than h11's wording.
        return f"not an HTTP answer: {shown(first_line)}", "not an HTTP answer"
    if message.startswith("illegal header line"):
        return (f"not an HTTP answer: bad header line {message.partition(': ')[2][:80]}",
                "not an HTTP answer: bad header line")
    text = f"not an HTTP answer: {message[:120]}"
    return text, _SERVER_BYTES.split(text, 1)[0]


# Where h11 quotes what the server sent in a message ("Illegal header value b'…'").
_SERVER_BYTES = re.compile(r":? ?(?:bytearray\(|b'|b\")")


def _os_message(exc: OSError) -> str:
    """A short reason: the OS or TLS message when there is one."""
    ssl = sys.modules.get("ssl")  # not imported: not a TLS error (and no 6 ms spent to know it)
    if ssl is not None and isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message or exc.reason}"
    if ssl is not None and isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
