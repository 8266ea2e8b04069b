"""Operations on the config file: endpoints, their auth, headers and mappings.

Each function is one user action: it updates the file through
``store.update_config`` (locked, re-read, validated, atomic) and returns the
resulting data for the CLI to render. Nothing here prints.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from moxiehook.config.model import (
    DISABLED_BY_HAND,
    Auth,
    Config,
    Endpoint,
    EventMapping,
    check_auth,
    check_endpoint_name,
    check_event_name,
    check_header_name,
    check_header_value,
    check_headers,
    check_signing_secret,
    check_url,
)
from moxiehook.config.store import update_config
from moxiehook.errors import AlreadyExistsError, NotFoundError
from moxiehook.ids import now_iso
from moxiehook.suggest import did_you_mean

if TYPE_CHECKING:
    from moxiehook.log import EndpointRecord


def add_endpoint(path: Path, endpoint: Endpoint) -> Endpoint:
    check_endpoint_name(endpoint.name)
    check_auth(endpoint.auth)
    check_headers(endpoint.headers, endpoint.auth, "header")
    if endpoint.signing_secret is not None:
        check_signing_secret(endpoint.signing_secret, "--signing-secret")

    def change(config: Config) -> Endpoint:
        if endpoint.name in config.endpoints:
            raise AlreadyExistsError(f"endpoint {endpoint.name!r} already exists")
        config.endpoints[endpoint.name] = endpoint
        return endpoint

    return update_config(path, change)


def remove_endpoint(path: Path, name: str) -> Endpoint:
    return update_config(path, lambda config: config.endpoints.pop(config.endpoint(name).name))


@dataclass(frozen=True)
class ToggleResult:
    """The endpoint after enable/disable, whether its state changed, and (``endpoint disable
    --reason`` on an endpoint already disabled) the reason it replaced."""

    endpoint: Endpoint
    changed: bool
    replaced_reason: str | None = None


def enable_endpoint(path: Path, name: str) -> ToggleResult:
    """Enable ``name`` and clear why it was disabled; a no-op if already enabled."""

    def apply(endpoint: Endpoint) -> EndpointRecord | None:
        from moxiehook.log import EndpointRecord

        if endpoint.enabled:
            return None
        endpoint.enabled = True
        endpoint.disabled_reason = None
        endpoint.disabled_at = None
        return EndpointRecord(at=now_iso(), endpoint=name, action="enabled")

    return _toggle(path, name, apply)


def disable_endpoint(path: Path, name: str, reason: str | None = None,
                     replace_reason: bool = False) -> ToggleResult:
    """Disable ``name`` with a reason; an already disabled endpoint keeps its first reason,
    unless ``replace_reason`` (a person's ``endpoint disable --reason``: their word is newer
    than the one recorded; ``disabled_at`` stays when it was disabled).

    Used both by ``endpoint disable`` and when a delivery gets an answer in
    ``disable_on``; either way an ``endpoint`` record goes to the log when the state changes.
    """
    replaced: list[str | None] = []

    def apply(endpoint: Endpoint) -> EndpointRecord | None:
        from moxiehook.log import EndpointRecord

        if not endpoint.enabled:
            if replace_reason and reason and reason != endpoint.disabled_reason:
                replaced.append(endpoint.disabled_reason)
                endpoint.disabled_reason = reason
            return None
        endpoint.enabled = False
        endpoint.disabled_reason = reason or DISABLED_BY_HAND
        endpoint.disabled_at = now_iso()
        return EndpointRecord(
            at=endpoint.disabled_at, endpoint=name, action="disabled", reason=endpoint.disabled_reason
        )

    result = _toggle(path, name, apply)
    return dataclasses.replace(result, replaced_reason=replaced[0] or "") if replaced else result


def _toggle(path: Path, name: str, apply: Callable[[Endpoint], EndpointRecord | None]) -> ToggleResult:
    """Apply an enable/disable under the config lock, logging it if it changed anything.

    The record and the config change are one step for the user: the record is
    appended first and the config written while the log's lock is still held;
    a log that cannot be written (``/dev/full``, a full disk) leaves the config
    unchanged, and a config that cannot be written takes the record back.
    """
    # Imported here: the log module is not needed by read-only commands.
    from moxiehook.log import LogWriter

    pending: list[tuple[LogWriter, EndpointRecord]] = []

    def change(config: Config) -> ToggleResult:
        endpoint = config.endpoint(name)
        record = apply(endpoint)
        if record is not None:
            pending.append((LogWriter(config.log_path(path)), record))
        return ToggleResult(endpoint, changed=record is not None)

    def commit(write: Callable[[], None]) -> None:
        if not pending:
            write()
            return
        writer, record = pending[0]
        writer.append(record, then=write)

    try:
        return update_config(path, change, commit)
    finally:
        for writer, _ in pending:
            writer.close()


def set_auth(path: Path, name: str, auth: Auth) -> Endpoint:
    check_auth(auth)

    def change(config: Config) -> Endpoint:
        endpoint = config.endpoint(name)
        check_headers(endpoint.headers, auth, "header")
        endpoint.auth = auth
        return endpoint

    return update_config(path, change)


def set_header(path: Path, name: str, header: str, value: str) -> Endpoint:
    check_header_name(header, "header")
    check_header_value(value, "header")

    def change(config: Config) -> Endpoint:
        endpoint = config.endpoint(name)
        # Header names are case-insensitive: replace any spelling of the same one.
        for existing in [h for h in endpoint.headers if h.lower() == header.lower()]:
            del endpoint.headers[existing]
        endpoint.headers[header] = value
        check_headers(endpoint.headers, endpoint.auth, "header")
        return endpoint

    return update_config(path, change)


def unset_header(path: Path, name: str, header: str) -> Endpoint:
    def change(config: Config) -> Endpoint:
        endpoint = config.endpoint(name)
        matches = [h for h in endpoint.headers if h.lower() == header.lower()]
        if not matches:
            raise NotFoundError(f"endpoint {name!r} has no header {header!r}")
        for existing in matches:
            del endpoint.headers[existing]
        return endpoint

    return update_config(path, change)


def set_signing_secret(path: Path, name: str, secret: str | None) -> Endpoint:
    """Set (or, with ``None``, remove) an endpoint's signing secret."""
    if secret is not None:
        check_signing_secret(secret, "signing secret")

    def change(config: Config) -> Endpoint:
        endpoint = config.endpoint(name)
        endpoint.signing_secret = secret
        return endpoint

    return update_config(path, change)


def add_mapping(path: Path, name: str, event: str, url: str) -> Endpoint:
    """Map ``event`` to ``url`` on ``name``; returns the endpoint as saved (for its warnings)."""
    mapping = EventMapping(event=check_event_name(event, "event"), url=check_url(url, "url"))

    def change(config: Config) -> Endpoint:
        endpoint = config.endpoint(name)
        if mapping in endpoint.mappings:
            raise AlreadyExistsError(f"endpoint {name!r} already maps {event} to {url}")
        endpoint.mappings.append(mapping)
        return endpoint

    return update_config(path, change)


def remove_mappings(path: Path, name: str, event: str, url: str | None = None) -> list[EventMapping]:
    """Remove ``event``'s mapping to ``url`` on ``name``, or all of them without a URL."""

    def change(config: Config) -> list[EventMapping]:
        endpoint = config.endpoint(name)
        removed = [m for m in endpoint.mappings if m.event == event and url in (None, m.url)]
        if not removed:
            target = f"{event} → {url}" if url else event
            hint = did_you_mean(event, [m.event for m in endpoint.mappings])
            raise NotFoundError(f"endpoint {name!r} has no mapping for {target}{hint}")
        endpoint.mappings = [m for m in endpoint.mappings if m not in removed]
        return removed

    return update_config(path, change)


@dataclass(frozen=True)
class MappingRow:
    """One line of ``map list``."""

    endpoint: str
    event: str
    url: str
    enabled: bool


def list_mappings(config: Config) -> list[MappingRow]:
    return [
        MappingRow(endpoint.name, mapping.event, mapping.url, endpoint.enabled)
        for endpoint in config.endpoints.values()
        for mapping in endpoint.mappings
    ]


def generate_signing_secret() -> str:
    """A new Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    import base64  # imported here, not at start-up: only `endpoint secret --generate` needs it

    return "whsec_" + base64.b64encode(os.urandom(32)).decode()
