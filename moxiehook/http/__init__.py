"""The wire: moxiehook's HTTP/1.1 client and what everything that sends or receives shares.

- ``client``: ``Connections`` (keep-alive sockets, one deadline per attempt, capped reads,
  early answers heard, nothing followed) and its ``Response``; h11 reads every answer.
- ``relay``: ``RelayClient``, one request passed on as received (``listen --forward-to``).
- ``proxies``: ``Proxies`` from ``HTTP(S)_PROXY``/``ALL_PROXY``/``NO_PROXY``.
- ``tls``: ``tls_context`` (certifi by default, a CA bundle, or no check), ``uses_tls``.
- ``headers``: the one reader of token lists (``Connection: X, close``), hop-by-hop headers.
- ``chunked``: the one chunked-body decoder for what ``listen`` receives (h11 again).
- ``errors``: ``TransportError``/``AttemptTimeout`` and the one map from h11/ssl/OS errors to them.

Other packages import from here, not from the inner modules. Names are resolved
lazily (PEP 562): ``listen`` asking whether a request wants its connection
closed must not load h11 and the client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from moxiehook.lazy import lazy_getattr

__all__ = [
    "PLAIN_HTTP", "AttemptTimeout", "BadChunkedBody", "BodyTooLarge", "Connections", "Proxies", "RelayAnswer",
    "RelayClient", "Response", "TransportError", "end_to_end", "is_hop_by_hop", "read_chunked", "tls_context",
    "tokens", "uses_tls", "wants_close",
]

# name -> the inner module that defines it
_EXPORTS = {
    "PLAIN_HTTP": "tls", "AttemptTimeout": "errors", "BadChunkedBody": "chunked", "BodyTooLarge": "chunked",
    "Connections": "client", "Proxies": "proxies", "RelayAnswer": "relay", "RelayClient": "relay",
    "Response": "client", "TransportError": "errors", "end_to_end": "headers", "is_hop_by_hop": "headers",
    "read_chunked": "chunked", "tls_context": "tls", "tokens": "headers", "uses_tls": "tls",
    "wants_close": "headers",
}

if TYPE_CHECKING:
    from moxiehook.http.chunked import BadChunkedBody, BodyTooLarge, read_chunked
    from moxiehook.http.client import Connections, Response
    from moxiehook.http.errors import AttemptTimeout, TransportError
    from moxiehook.http.headers import end_to_end, is_hop_by_hop, tokens, wants_close
    from moxiehook.http.proxies import Proxies
    from moxiehook.http.relay import RelayAnswer, RelayClient
    from moxiehook.http.tls import PLAIN_HTTP, tls_context, uses_tls

__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
