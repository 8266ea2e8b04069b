"""Header lists: the one reader of comma-separated tokens, and which headers are hop-by-hop.

``Connection`` (and ``Transfer-Encoding``) hold lists of tokens, possibly over
several header lines (``Connection: X, close``). Every part of moxiehook that
needs such a list reads it here, so the client, the relay and ``listen`` agree
on what ``close`` or ``chunked`` mean.
"""

from __future__ import annotations

from collections.abc import Iterable

_OWS = " \t"  # optional whitespace: SP and HTAB only (RFC 9110 §5.6.3)

# RFC 9110 §7.6.1: meaningful for one connection only, never passed on by an intermediary.
# Content-Length is recomputed for the body actually sent; Host comes from the target URL;
# Expect is answered by the receiver itself.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    "proxy-authenticate", "proxy-authorization", "host", "content-length", "expect",
})


def tokens(headers: Iterable[tuple[str, str]], name: str) -> list[str]:
    """The lower-case tokens of every ``name`` header, in order: ``X, close`` -> ``["x", "close"]``.

    Empty list elements (``a,,b``) are skipped, as RFC 9110 §5.6.1 asks of a recipient. Only
    spaces and tabs around an element are dropped (optional whitespace is nothing else): a
    vertical tab or form feed stays part of the token, so ``<VT>chunked`` is not ``chunked``.
    """
    wanted = name.lower()
    return [token for header, value in headers if header.lower() == wanted
            for token in (part.strip(_OWS).lower() for part in value.split(",")) if token]


def wants_close(headers: Iterable[tuple[str, str]]) -> bool:
    """Whether the ``Connection`` header lists ``close`` (anywhere in the list, on any line)."""
    return "close" in tokens(headers, "connection")


def is_hop_by_hop(name: str, named: Iterable[str] = ()) -> bool:
    """Whether an intermediary must drop header ``name``.

    Besides the fixed list and what ``Connection`` names (``named``, lower
    case), ``Proxy`` and every ``Proxy-*`` header: they are addressed to a proxy,
    and an app reading ``Proxy`` as ``HTTP_PROXY`` (CGI's httpoxy) would send its
    own requests through whatever a sender put there.
    """
    lowered = name.lower()
    return lowered in HOP_BY_HOP or lowered == "proxy" or lowered.startswith("proxy-") or lowered in named


def end_to_end(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` without hop-by-hop ones (see ``is_hop_by_hop``), order and case kept."""
    items = list(headers)
    named = set(tokens(items, "connection"))
    return [(name, value) for name, value in items if not is_hop_by_hop(name, named)]
