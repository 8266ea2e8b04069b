"""TLS settings for the client: which context an endpoint's ``verify`` asks for.

``ssl`` is imported only by runs that need TLS (~6 ms): an http:// run builds
no context and never imports it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

PLAIN_HTTP = None  # the ``verify`` of a client for http:// URLs: it has no TLS context, so it cannot do TLS


def uses_tls(url: str) -> bool:
    """Whether ``url`` needs TLS: anything but a plain ``http://`` URL is treated as needing it."""
    return url[:7].lower() != "http://"


def tls_context(verify: bool | str) -> ssl.SSLContext:
    """The TLS context for an endpoint's ``verify`` setting.

    ``True`` trusts certifi's CA bundle, as httpx does (the system's store and
    ``SSL_CERT_FILE`` are not read, so a run behaves the same on every
    machine); a string is the path of a CA bundle; ``False`` checks nothing.
    Loading a CA store takes ~45 ms, so a bundle is loaded once per process while
    its file stays the same (the endpoint's check at preparation and the senders
    share it; a file changed on disk is loaded again). The context offers only
    ``http/1.1`` by ALPN: it is all the client speaks. A bundle that cannot be
    loaded is a ``ConfigError`` (exit 2) naming the file.
    """
    import os

    if verify is False:
        return _unchecked()
    if verify is True:
        import certifi

        verify = certifi.where()
    try:
        found = os.stat(verify)
    except OSError:  # missing or unreadable: loading says why, as a ConfigError
        return _loaded(verify, None)
    return _loaded(verify, (found.st_mtime_ns, found.st_size, found.st_ino))


def _unchecked() -> ssl.SSLContext:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context


@functools.lru_cache(maxsize=8)
def _loaded(path: str, stamp: tuple[int, int, int] | None) -> ssl.SSLContext:
    """The context trusting the bundle at ``path`` as ``stamp`` (its mtime, size, inode) found it."""
    import ssl

    try:
        context = ssl.create_default_context(cafile=path)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError: a file holding no certificate
        from moxiehook.errors import ConfigError

        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"{path} holds no CA certificate that can be loaded ({reason})") from None
    context.set_alpn_protocols(["http/1.1"])
    return context
