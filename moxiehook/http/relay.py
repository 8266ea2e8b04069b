"""One forwarded request: ``listen --forward-to`` passing a received webhook on to the app.

Unlike a delivery (always a POST of moxiehook's own headers, retried, the
answer read only up to 64 KiB), a relayed request keeps the sender's method,
headers and body, is made once (the sender's retries are the real ones), and
brings back the app's whole answer for the sender. What the two share is the
client (``Connections``): keep-alive connections, the per-attempt deadline (an
app dribbling its answer cannot hold a forward past the timeout), redirects
never followed. The relay takes no proxy from the environment: the app is local.

Hop-by-hop headers go no further, in either direction: those of
``headers.HOP_BY_HOP``, whatever ``Connection`` names (``Connection: X, close``
drops ``X``), and ``Proxy``/``Proxy-*`` (see ``headers.is_hop_by_hop``).
"""

from __future__ import annotations

from dataclasses import dataclass

from moxiehook.http.client import Connections
from moxiehook.http.errors import AttemptTimeout, TransportError
from moxiehook.http.headers import end_to_end
from moxiehook.http.proxies import Proxies
from moxiehook.http.tls import PLAIN_HTTP, tls_context

# The whole answer goes back to the sender, so it is held in memory: bounded like a request body.
MAX_ANSWER_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class RelayAnswer:
    """The app's answer, or why none came (``status`` None: refused/reset, or ``timed_out``)."""

    status: int | None
    headers: list[tuple[str, str]]  # end-to-end headers, as the app sent them
    body: bytes
    error: str | None = None
    timed_out: bool = False


class RelayClient:
    """The relay's HTTP client: keep-alive connections to the app, shared by the receiver's request threads."""

    def __init__(self, verify: bool | str | None = PLAIN_HTTP) -> None:
        tls = None if verify is PLAIN_HTTP else tls_context(verify)
        self._connections = Connections(tls, Proxies.none())

    def request(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes,
                timeout: float) -> RelayAnswer:
        """Make the request once; never raises for a network problem.

        Only the end-to-end headers given are sent (plus Host and
        Content-Length), and the answer's body comes back as sent: a gzip
        answer stays gzip, with its header.
        """
        try:
            response = self._connections.request(method, url, end_to_end(headers), body, timeout,
                                                 MAX_ANSWER_BYTES + 1)
        except AttemptTimeout:
            return RelayAnswer(None, [], b"", f"timeout: no answer within {timeout:g} s", timed_out=True)
        except TransportError as exc:
            return RelayAnswer(None, [], b"", f"connection error: {exc}")
        if response.unfinished == "limit":
            return RelayAnswer(None, [], b"", "the app's answer is larger than 16 MiB")
        if response.unfinished == "timeout":
            return RelayAnswer(None, [], b"", f"timeout: the answer did not end within {timeout:g} s",
                               timed_out=True)
        if response.unfinished == "closed":
            # h11 ends an unframed body at the close without calling it unfinished: this one
            # was framed (a length or chunks) and stopped short.
            return RelayAnswer(None, [], b"", "connection error: the app closed the connection mid-answer")
        return RelayAnswer(response.status, end_to_end(response.raw_headers), response.body)

    def close(self) -> None:
        self._connections.close()
