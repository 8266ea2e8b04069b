"""Proxies from the environment, and the route a URL takes (directly, forwarded, or tunnelled)."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from moxiehook.http.errors import TransportError

DEFAULT_PORTS = {"http": 80, "https": 443}
# A host as it may be written: a reg-name's characters (RFC 3986 §3.2.2: unreserved,
# percent-escapes, sub-delims), and the colons of an IPv6 literal (given without brackets).
_HOST = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=%:-]+")


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    authorization: str | None  # the Proxy-Authorization value, from the proxy URL's user:password


@dataclass(frozen=True)
class Proxies:
    """The proxies the environment asks for, read once per run.

    As curl and httpx read them: ``http_proxy``/``HTTP_PROXY`` for http://
    URLs, ``https_proxy``/``HTTPS_PROXY`` for https:// ones, ``all_proxy``/
    ``ALL_PROXY`` for both (the lower-case name wins; ``HTTP_PROXY`` is ignored
    when ``REQUEST_METHOD`` is set, i.e. under CGI, where a client's
    ``Proxy:`` header would become it). ``no_proxy``/``NO_PROXY`` lists hosts
    sent to directly: ``*`` (all), a name (also its subdomains; a leading dot is
    optional), an IP address or a CIDR block, each optionally with ``:port``.
    Only ``http://`` proxies are supported (plain forwarding for http:// URLs,
    a ``CONNECT`` tunnel for https:// ones); a URL that would need another kind
    fails with a message naming the variable.
    """

    by_scheme: Mapping[str, tuple[str, str]]  # scheme -> (variable, proxy URL)
    no_proxy: tuple[str, ...] = ()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Proxies:
        env = os.environ if environ is None else environ
        by_scheme: dict[str, tuple[str, str]] = {}
        for scheme in ("http", "https"):
            names = [f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY"]
            if scheme == "http" and "REQUEST_METHOD" in env:
                names.remove("HTTP_PROXY")
            for name in names:
                if env.get(name, "").strip():
                    by_scheme[scheme] = (name, env[name].strip())
                    break
        no_proxy = env.get("no_proxy") or env.get("NO_PROXY") or ""
        entries = tuple(entry.strip().lower() for entry in no_proxy.split(",") if entry.strip())
        return cls(by_scheme, entries)

    @classmethod
    def none(cls) -> Proxies:
        """No proxy whatever the environment says (``listen --forward-to`` relays to a local app)."""
        return cls({})

    def for_url(self, scheme: str, host: str, port: int) -> Proxy | None:
        """The proxy for a URL, None to connect directly; ``TransportError`` for an unusable one."""
        chosen = self.by_scheme.get(scheme)
        if chosen is None or self._bypassed(host, port):
            return None
        name, url = chosen
        if "://" not in url:
            url = "http://" + url
        parts = urlsplit(url)
        try:
            proxy_port = _port(parts.port, 80)
        except ValueError:
            raise TransportError(f"{name}={url!r} is not a usable proxy URL (bad port)") from None
        if parts.scheme.lower() != "http" or not parts.hostname:
            raise TransportError(f"{name}={url!r} is not supported: only http:// proxies are")
        authorization = None
        if parts.username is not None:
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(credentials.encode()).decode()
        return Proxy(parts.hostname, proxy_port, authorization)

    def _bypassed(self, host: str, port: int) -> bool:
        for entry in self.no_proxy:
            if entry == "*":
                return True
            entry_host, entry_port = _split_host_port(entry)
            if entry_port is not None and entry_port != port:
                continue
            if "/" in entry_host:
                import ipaddress

                try:
                    if ipaddress.ip_address(host) in ipaddress.ip_network(entry_host, strict=False):
                        return True
                except ValueError:
                    pass
                continue
            name = entry_host.lstrip(".")
            if name and (host == name or host.endswith("." + name)):
                return True
        return False


def _split_host_port(entry: str) -> tuple[str, int | None]:
    """``example.com:8080`` -> (``example.com``, 8080); IPv6 may be bracketed; no port -> None."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
    else:  # a name, an IPv4 address, a bare IPv6 address or CIDR block
        host, port = entry, ""
    return host, int(port) if port.isascii() and port.isdigit() else None


def _port(given: int | None, default: int) -> int:
    """The URL's port; the default only when it names none (``:0`` is port 0, not "no port")."""
    return default if given is None else given


@dataclass(frozen=True)
class Route:
    """How a URL is reached, worked out once per URL."""

    key: tuple[str, str, int, str | None]  # the connection this route uses
    connect: tuple[str, int]  # where the TCP connection goes (the server, or the proxy)
    tls_host: str | None  # server_hostname for TLS with the server, None for plain HTTP
    tunnel: str | None  # the authority to CONNECT to first (https:// through a proxy)
    tunnel_headers: tuple[tuple[str, str], ...]  # Host, and Proxy-Authorization, for the CONNECT
    target: bytes  # the request line's target: origin form, or the absolute URL for a forwarding proxy
    host_lines: bytes  # Host, and Proxy-Authorization for a forwarding proxy


def route(url: str, proxies: Proxies) -> Route:
    """The route to ``url``; ``TransportError`` when it is not an http(s) URL with a host.

    The target keeps the URL's path and query as given (percent-encoding what
    may not appear raw), an empty query included: ``/a?`` is not ``/a`` to
    every server (RFC 3986 §6.2.3 leaves it to the scheme; signatures over the
    target differ).
    """
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = _port(parts.port, DEFAULT_PORTS.get(scheme, 0))
        host = (parts.hostname or "").encode("idna").decode("ascii")
    except (ValueError, UnicodeError) as exc:
        raise TransportError(f"not a usable URL: {exc}") from None
    if scheme not in DEFAULT_PORTS or not host:
        raise TransportError(f"not an http:// or https:// URL with a host: {url!r}")
    if not _HOST.fullmatch(host):  # it goes into the Host line, and a proxy's request line
        raise TransportError(f"not a usable URL: its host {host!r} holds a character no host name may")
    bracketed = f"[{host}]" if ":" in host else host
    authority = bracketed if port == DEFAULT_PORTS[scheme] else f"{bracketed}:{port}"
    has_query = "?" in url.partition("#")[0]  # urlsplit gives "" for both "/a" and "/a?"
    target = quote(parts.path or "/", safe="!$%&'()*+,/:;=@[]~") + (
        "?" + quote(parts.query, safe="!$%&'()*+,/:;=?@[]~") if has_query else "")
    host_line = f"Host: {authority}\r\n".encode()
    proxy = proxies.for_url(scheme, host, port)
    tls_host = host if scheme == "https" else None
    if proxy is None:
        return Route((scheme, host, port, None), (host, port), tls_host, None, (), target.encode(), host_line)
    via = f"{proxy.host}:{proxy.port}"
    auth = (("Proxy-Authorization", proxy.authorization),) if proxy.authorization else ()
    if scheme == "https":  # a tunnel: the proxy sees only where to, never the request
        where = f"{bracketed}:{port}"
        return Route((scheme, host, port, via), (proxy.host, proxy.port), tls_host, where,
                     (("Host", where), *auth), target.encode(), host_line)
    # Forwarding: the request line carries the absolute URL.
    auth_line = "".join(f"{name}: {value}\r\n" for name, value in auth).encode()
    return Route((scheme, host, port, via), (proxy.host, proxy.port), None, None, (),
                 f"{scheme}://{authority}{target}".encode(), host_line + auth_line)
