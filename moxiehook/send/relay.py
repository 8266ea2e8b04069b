"""One forwarded request: ``listen --forward-to`` passing a received webhook on to the app.

Unlike a delivery (``delivery.send``: always a POST of moxiehook's own
headers, retried, the answer read only up to 64 KiB), a relayed request keeps
the sender's method, headers and body, is made once (the sender's retries are
the real ones), and brings back the app's whole answer for the sender. What
the two share is moxiehook's HTTP/1.1 client in ``transport``: keep-alive
connections, the per-attempt deadline (an app dribbling its answer cannot hold
a forward past the timeout), redirects never followed. The relay takes no
proxy from the environment: the app is local.
"""

from __future__ import annotations

from dataclasses import dataclass

from moxiehook.send import transport

# The whole answer goes back to the sender, so it is held in memory: bounded like a request body.
MAX_ANSWER_BYTES = 16 * 1024 * 1024

# RFC 9110 §7.6.1: meaningful for one connection only, never passed on by an intermediary.
# Content-Length is recomputed for the body actually sent; Host comes from the target URL.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    "proxy-authenticate", "proxy-authorization", "host", "content-length", "expect",
})


def end_to_end(headers: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """``headers`` without hop-by-hop ones, including those the ``Connection`` header names.

    ``Proxy`` and every ``Proxy-*`` header are for the intermediary (the relay), never for
    the app: a CGI-style app would read ``Proxy`` as its ``HTTP_PROXY`` (httpoxy) and send
    its own calls through a proxy the sender chose.
    """
    named = {token.strip().lower() for name, value in headers if name.lower() == "connection"
             for token in value.split(",")}
    return [(name, value) for name, value in headers
            if name.lower() not in HOP_BY_HOP | named and not _for_proxy(name)]


def _for_proxy(name: str) -> bool:
    lowered = name.lower()
    return lowered == "proxy" or lowered.startswith("proxy-")


@dataclass(frozen=True)
class RelayAnswer:
    """The app's answer, or why none came (``status`` None: refused/reset, or ``timed_out``)."""

    status: int | None
    headers: list[tuple[str, str]]  # end-to-end headers, as the app sent them
    body: bytes
    error: str | None = None
    timed_out: bool = False


class Relay:
    """Keep-alive connections to the app, shared by the receiver's request threads."""

    def __init__(self, connections: int, verify: bool | str | None = transport.PLAIN_HTTP) -> None:
        # ``connections``: how many forwards the caller lets run at once; the pool keeps at
        # most that many idle, since every idle connection was once in use.
        tls = None if verify is transport.PLAIN_HTTP else transport.tls_context(verify)
        self._connections = transport.Connections(tls, transport.Proxies.none())

    def request(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes,
                timeout: float) -> RelayAnswer:
        """Make the request once; never raises for a network problem.

        Only the headers given are sent (plus Host and Content-Length), and the
        answer's body comes back as sent: a gzip answer stays gzip, with its header.
        """
        try:
            response = self._connections.request(method, url, end_to_end(headers), body, timeout,
                                                 MAX_ANSWER_BYTES + 1)
        except transport.AttemptTimeout:
            return RelayAnswer(None, [], b"", f"timeout: no answer within {timeout:g} s", timed_out=True)
        except transport.TransportError as exc:
            return RelayAnswer(None, [], b"", f"connection error: {exc}")
        if response.unfinished == "limit":
            return RelayAnswer(None, [], b"", "the app's answer is larger than 16 MiB")
        if response.unfinished == "timeout":
            return RelayAnswer(None, [], b"", f"timeout: the answer did not end within {timeout:g} s",
                               timed_out=True)
        if response.unfinished == "closed" and _framed(method, response.status, response.headers):
            return RelayAnswer(None, [], b"", "connection error: the app closed the connection mid-answer")
        return RelayAnswer(response.status, end_to_end(response.raw_headers), response.body)

    def close(self) -> None:
        self._connections.close()


def _framed(method: str, status: int, headers: dict[str, str]) -> bool:
    """Whether the answer said where its body ends (then ending early is an error; else the close ends it).

    An answer that has no body whatever its headers say (to a HEAD; a 1xx, 204 or 304) is
    complete at its headers: a 204 announcing a length is a 204, not a failed forward.
    """
    if method == "HEAD" or status in (204, 304) or 100 <= status <= 199:
        return False
    return "content-length" in headers or "chunked" in headers.get("transfer-encoding", "").lower()
