"""One forwarded request: ``listen --forward-to`` passing a received webhook on to the app.

Unlike a delivery (``delivery.send``: always a POST of moxiehook's own
headers, retried, the answer read only up to 64 KiB), a relayed request keeps
the sender's method, headers and body, is made once (the sender's retries are
the real ones), and brings back the app's whole answer for the sender. What
the two share is the plumbing in ``transport``: keep-alive connections, the
per-attempt deadline (an app dribbling its answer cannot hold a forward past
the timeout), redirects never followed, no proxy from the environment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from moxiehook.send import transport
from moxiehook.send.delivery import _describe

# The whole answer goes back to the sender, so it is held in memory: bounded like a request body.
MAX_ANSWER_BYTES = 16 * 1024 * 1024

# RFC 9110 §7.6.1: meaningful for one connection only, never passed on by an intermediary.
# Content-Length is recomputed for the body actually sent; Host comes from the target URL.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    "proxy-authenticate", "proxy-authorization", "host", "content-length", "expect",
})


def end_to_end(headers: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """``headers`` without hop-by-hop ones, including those the ``Connection`` header names."""
    named = {token.strip().lower() for name, value in headers if name.lower() == "connection"
             for token in value.split(",")}
    return [(name, value) for name, value in headers if name.lower() not in HOP_BY_HOP | named]


@dataclass(frozen=True)
class RelayAnswer:
    """The app's answer, or why none came (``status`` None: refused/reset, or ``timed_out``)."""

    status: int | None
    headers: list[tuple[str, str]]  # end-to-end headers, as the app sent them
    body: bytes
    error: str | None = None
    timed_out: bool = False


class Relay:
    """A keep-alive client to the app, shared by the receiver's request threads."""

    def __init__(self, connections: int, verify: bool | str | None = transport.PLAIN_HTTP) -> None:
        self._client = transport.make_client(verify, connections)

    def request(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes,
                timeout: float) -> RelayAnswer:
        """Make the request once; never raises for a network problem."""
        # An httpx.Request made directly carries only the headers given (plus Host and
        # Content-Length): client.build_request would add httpx's own Accept and User-Agent.
        request = httpx.Request(method, url, headers=end_to_end(headers), content=body,
                                extensions={"timeout": httpx.Timeout(timeout).as_dict()})
        transport.set_deadline(time.monotonic() + timeout)
        try:
            try:
                response = self._client.send(request, stream=True)
            except httpx.TimeoutException:
                return RelayAnswer(None, [], b"", f"timeout: no answer within {timeout:g} s", timed_out=True)
            except httpx.HTTPError as exc:
                return RelayAnswer(None, [], b"", f"connection error: {_describe(exc)}")
            try:
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_raw():  # as sent: a gzip answer stays gzip, with its header
                    size += len(chunk)
                    if size > MAX_ANSWER_BYTES:
                        return RelayAnswer(None, [], b"", "the app's answer is larger than 16 MiB")
                    chunks.append(chunk)
            except httpx.TimeoutException:
                return RelayAnswer(None, [], b"", f"timeout: the answer did not end within {timeout:g} s",
                                   timed_out=True)
            except httpx.HTTPError as exc:
                return RelayAnswer(None, [], b"", f"connection error: {_describe(exc)}")
            finally:
                response.close()
        finally:
            transport.set_deadline(None)
        raw = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in response.headers.raw]
        return RelayAnswer(response.status_code, end_to_end(raw), b"".join(chunks))

    def close(self) -> None:
        self._client.close()
