"""What can go wrong on the wire, and the one place that turns h11's, ssl's and the OS's errors into it.

The client never lets a library's exception out: ``failure`` maps each of them
to a ``TransportError`` whose message a person can read in a log line (and
which is escaped: what a server sent may reach a terminal).
"""

from __future__ import annotations

import sys

import h11

from moxiehook.http.limits import MAX_HEAD

# The one exception h11 raises for what a peer sent; the wire catches it under this name only.
ParserError = h11.RemoteProtocolError


class TransportError(Exception):
    """No usable answer; the message says why (``connection refused``, ``not an HTTP answer: …``)."""


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
        return TransportError(_protocol_message(str(exc), received))
    if isinstance(exc, OSError):
        return TransportError(_os_message(exc))
    raise TypeError(f"not a wire error: {exc!r}")  # pragma: no cover - the caller's bug


def _protocol_message(message: str, received: bytes | bytearray) -> str:
    if message == "Receive buffer too long":
        return f"the answer's headers are longer than {MAX_HEAD // 1024} KiB"
    first_line = bytes(received).split(b"\n", 1)[0].rstrip(b"\r")
    if not received:
        return "the server closed the connection without answering"
    if message.startswith("peer unexpectedly") and first_line.startswith(b"HTTP/"):
        return "the server closed the connection in the middle of the answer's headers"
    if not first_line.startswith(b"HTTP/") or message.startswith(("illegal status line", "peer unexpectedly")):
        # A banner, binary bytes, another protocol: show what came rather than h11's wording.
        return f"not an HTTP answer: {shown(first_line)}"
    if message.startswith("illegal header line"):
        return f"not an HTTP answer: bad header line {message.partition(': ')[2][:80]}"
    return f"not an HTTP answer: {message[:120]}"


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
