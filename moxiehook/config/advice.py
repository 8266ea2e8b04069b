"""Warnings about a config that is valid but risky (shown, never fatal)."""

from __future__ import annotations

import ipaddress
import stat
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from moxiehook.config.model import Config, Endpoint
from moxiehook.errors import UsageError


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint_warnings(endpoint: Endpoint) -> list[str]:
    """Risks of one endpoint: no auth, TLS checks off, credentials over plain HTTP."""
    found: list[str] = []
    name = endpoint.name
    if endpoint.auth.type == "none":
        found.append(f"endpoint '{name}' has no auth: anyone who knows its URLs can post to them")
    if endpoint.verify_tls is False:
        found.append(f"endpoint '{name}' has verify_tls = false: TLS certificates are not checked")
    found.extend(plain_http_warnings(endpoint))
    return found


def plain_http_warnings(endpoint: Endpoint, urls: Iterable[str] | None = None) -> list[str]:
    """Credentials (auth or a signature) that would travel over plain http:// off this machine.

    Looks at ``urls`` when given (e.g. the mapping just added), else at every
    mapping of the endpoint; one warning is enough per endpoint.
    """
    if endpoint.auth.type == "none" and not endpoint.signing_secret:
        return []
    for url in urls if urls is not None else (m.url for m in endpoint.mappings):
        parts = urlsplit(url)
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            return [
                f"endpoint '{endpoint.name}' sends credentials over plain http:// to {parts.hostname}"
                " (use https://)"
            ]
    return []


def file_warnings(config: Config, path: Path) -> list[str]:
    """A config holding literal secrets that others can read."""
    if not config.has_literal_secret():
        return []
    try:
        mode = path.stat().st_mode
    except OSError:
        return []
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return [
            f"{path} holds literal secrets and is readable by other users: "
            f"run 'chmod 600 {path}', or use ${{VAR}} references instead"
        ]
    return []


def near_miss_warnings(config: Config) -> list[str]:
    """Mappings whose event is not in the catalog but close to a name in it (``ClientCreat``).

    ``map add`` refuses such a name unless told ``--custom``; written by hand it reaches the
    file, and its mapping would never fire. It stays valid (it may be the user's own event
    type), so this is a warning, with the name it is close to.
    """
    from moxiehook import catalog  # the catalog's data: only `config validate` asks this

    found = []
    for endpoint in config.endpoints.values():
        for index, mapping in enumerate(endpoint.mappings):
            try:
                catalog.check_not_a_near_miss(mapping.event)
            except UsageError as exc:
                found.append(f"endpoints.{endpoint.name}.mappings[{index}].event: {exc} "
                             f"(Moxie never sends that name; if it is your own event type, keep it)")
    return found


def config_warnings(config: Config, path: Path) -> list[str]:
    found = file_warnings(config, path)
    for endpoint in config.endpoints.values():
        found.extend(endpoint_warnings(endpoint))
    return found + near_miss_warnings(config)
