"""The config model: dataclasses, parsing with validation, and serialisation.

These dataclasses are the single source of truth for the config's keys and
defaults. ``parse_config`` turns the dict ``tomllib`` produced into a
``Config`` or raises ``ValidationError`` naming the key; ``config_to_dict``
turns it back into what ``tomli_w`` writes. Edits are made on the dataclasses
and re-validated by a round trip before anything is written (see ``store``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from moxiehook.config.secrets import expand, has_reference, mask_literal, references
from moxiehook.errors import NotFoundError, ValidationError
from moxiehook.suggest import did_you_mean

CONFIG_VERSION = 1

AUTH_TYPES = ("none", "basic", "bearer", "custom")
# The keys each auth type needs; every other key in an auth table is a typo.
AUTH_KEYS: dict[str, tuple[str, ...]] = {
    "none": (),
    "basic": ("username", "password"),
    "bearer": ("token",),
    "custom": ("header", "value"),
}
# Auth values that are secrets: masked in views, never logged.
SECRET_AUTH_KEYS = ("password", "token", "value")

# Headers moxiehook sets itself; a custom header must not replace them.
RESERVED_HEADERS = frozenset(
    {"content-type", "x-event-type", "x-event-origin", "host", "content-length"}
)
SIGNATURE_HEADERS = frozenset({"webhook-id", "webhook-timestamp", "webhook-signature"})
# Hop-by-hop and framing headers (RFC 9110 §7.6.1, RFC 9112 §6): they describe the
# connection and how the body is framed, which the HTTP client decides. A second
# framing header breaks every request (Transfer-Encoding beside Content-Length is
# a 400 from nginx, and a request smuggling risk behind a proxy). ``Expect: 100-continue`` asks
# the client to hold the body for an interim answer: moxiehook sends head and body at once, and
# Locust's client would wait for the answer until the timeout, so one delivery would meet two fates.
HOP_BY_HOP_HEADERS = frozenset(
    {"transfer-encoding", "connection", "keep-alive", "te", "upgrade", "trailer", "proxy-connection", "expect"}
)

DEFAULT_DISABLE_ON = (401, 403, 404, 405, 410)
# The reason recorded when an endpoint is disabled without one.
DISABLED_BY_HAND = "disabled by hand"

# RFC 9110 §5.6.2: token = 1*tchar. The patterns end in \Z, not $: `$` also
# matches before a trailing newline, which would let "X-Name\n" through.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_ENDPOINT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
# Event names travel in the X-Event-Type header: keep them to a safe alphabet.
_EVENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,127}\Z")
_SIGNING_PREFIX = "whsec_"
# What an HTTP header value may hold: visible ASCII, spaces and tabs.
# HTTP/1.1 headers are bytes, and text outside ASCII has no agreed encoding there
# (the client would fail to encode it, or a receiver would read it as latin-1).
_HEADER_TEXT = re.compile(r"[\t -~]*\Z")
# The userinfo of a URL (``user:pass@``), to mask it wherever a URL is shown.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


@dataclass
class Settings:
    """``[settings]``: how every delivery is made."""

    origin: str = "withmoxie.com"
    log_file: str = "moxiehook-log.jsonl"
    timeout: float = 10.0
    max_attempts: int = 3
    backoff: float = 0.5
    concurrency: int = 8
    disable_on: list[int] = field(default_factory=lambda: list(DEFAULT_DISABLE_ON))
    verify_tls: bool | str = True
    # A command (argv, no shell) run once per endpoint a delivery run disables; empty: none.
    on_disable: list[str] = field(default_factory=list)


@dataclass
class Auth:
    """An endpoint's auth: one of Moxie's four modes. Unused fields stay ``None``."""

    type: str = "none"
    username: str | None = None
    password: str | None = None
    token: str | None = None
    header: str | None = None
    value: str | None = None

    def values(self) -> dict[str, str]:
        """The keys this auth type uses, with their (unexpanded) values."""
        return {key: getattr(self, key) for key in AUTH_KEYS[self.type]}

    def has_literal_secret(self) -> bool:
        return any(
            key in SECRET_AUTH_KEYS and value and not has_reference(value)
            for key, value in self.values().items()
        )

    def masked(self) -> dict[str, str]:
        """The auth table as a view shows it: literal secrets as ``***``."""
        shown: dict[str, str] = {"type": self.type}
        for key, value in self.values().items():
            shown[key] = (mask_literal(value) if key in SECRET_AUTH_KEYS else value) or ""
        return shown


@dataclass
class EventMapping:
    """One event → URL route of an endpoint."""

    event: str
    url: str


@dataclass
class Endpoint:
    """``[endpoints.NAME]``: a receiver with its auth, headers and mappings."""

    name: str
    enabled: bool = True
    description: str = ""
    auth: Auth = field(default_factory=Auth)
    headers: dict[str, str] = field(default_factory=dict)
    mappings: list[EventMapping] = field(default_factory=list)
    timeout: float | None = None
    verify_tls: bool | str | None = None
    signing_secret: str | None = None
    disabled_reason: str | None = None
    disabled_at: str | None = None

    @property
    def why_disabled(self) -> str:
        """The reason shown for a disabled endpoint (a hand-edited file may give none)."""
        return self.disabled_reason or DISABLED_BY_HAND

    def has_literal_secret(self) -> bool:
        literal_signing = bool(self.signing_secret) and not has_reference(self.signing_secret or "")
        return self.auth.has_literal_secret() or literal_signing


@dataclass
class Config:
    """The whole config file."""

    version: int = CONFIG_VERSION
    settings: Settings = field(default_factory=Settings)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)

    def has_literal_secret(self) -> bool:
        return any(endpoint.has_literal_secret() for endpoint in self.endpoints.values())

    def endpoint(self, name: str) -> Endpoint:
        """The endpoint called ``name``; an unknown name is a ``NotFoundError`` for the user."""
        try:
            return self.endpoints[name]
        except KeyError:
            raise NotFoundError(
                f"unknown endpoint {name!r}{did_you_mean(name, self.endpoints, quote=True)} "
                "(see: moxiehook endpoint list)"
            ) from None

    def log_path(self, config_path: Path) -> Path:
        """The delivery log's path: ``settings.log_file``, relative to the config's folder."""
        return resolve_relative(config_path, self.settings.log_file)

    def mapped_events(self) -> set[str]:
        """Every event type some endpoint maps: the user's own event names count as known ones."""
        return {mapping.event for endpoint in self.endpoints.values() for mapping in endpoint.mappings}


def resolve_relative(config_path: Path, value: str) -> Path:
    """A path from the config (``log_file``, a CA bundle), relative to its folder."""
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else config_path.parent / candidate


# --------------------------------------------------------------------------
# validators shared by the parser and the commands that build values


def check_endpoint_name(name: str) -> str:
    if not _ENDPOINT_NAME.match(name):
        raise ValidationError(
            f"invalid endpoint name {name!r}: use letters, digits, '.', '_' or '-' "
            "(at most 64, starting with a letter or digit)"
        )
    return name


def check_event_name(event: str, key: str = "event") -> str:
    if not _EVENT_NAME.match(event):
        raise ValidationError(
            f"{key}: invalid event name {event!r}: use letters, digits, '_', '.', ':' or '-', "
            "starting with a letter"
        )
    return event


def check_url(url: str, key: str = "url") -> str:
    shown = mask_userinfo(url)
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise ValidationError(f"{key}: URL {shown!r} contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValidationError(f"{key}: invalid URL {shown!r}: {mask_userinfo(str(exc))}") from None
    if parts.scheme not in ("http", "https"):
        raise ValidationError(f"{key}: URL {shown!r} must start with http:// or https://")
    if not host:
        raise ValidationError(f"{key}: URL {shown!r} has no host")
    if "@" in parts.netloc:
        # Credentials in a URL would override the endpoint's auth (a 401 and a
        # disabled endpoint follow) and show in clear in every view and the log.
        raise ValidationError(
            f"{key}: URL {shown!r} holds credentials (user:password@): give them as the endpoint's "
            "auth instead (moxiehook endpoint auth NAME --auth basic --username U --password P, "
            "or --token T)"
        )
    return url


def mask_userinfo(url: str) -> str:
    """``url`` with any ``user:pass@`` part shown as ``***@``: never print credentials."""
    return _USERINFO.sub(r"\1***@", url)


def check_header_name(name: str, key: str = "headers") -> str:
    if not _TOKEN.match(name):
        raise ValidationError(f"{key}: header name {name!r} is not a valid HTTP token (RFC 9110)")
    lowered = name.lower()
    if lowered in RESERVED_HEADERS or lowered in SIGNATURE_HEADERS:
        raise ValidationError(f"{key}: header {name!r} is set by moxiehook and cannot be replaced")
    if lowered in HOP_BY_HOP_HEADERS:
        raise ValidationError(
            f"{key}: header {name!r} is a hop-by-hop or framing header: the HTTP client sets it, "
            "and a second one would break every request"
        )
    return name


def check_header_value(value: str, key: str = "headers") -> str:
    """A value sent as a header as it is: visible ASCII, spaces and tabs only."""
    _check_no_line_break(value, key)
    if not _HEADER_TEXT.match(value):
        bad = next(ch for ch in value if not (ch == "\t" or " " <= ch <= "~"))
        # The code point only, never the value: it may be a secret.
        raise ValidationError(
            f"{key}: header value contains U+{ord(bad):04X}, which is not visible ASCII; "
            "HTTP headers carry ASCII only (encode the value, e.g. percent- or base64-encode it)"
        )
    return value


def _check_no_line_break(value: str, key: str) -> None:
    if any(ch in value for ch in "\r\n\0"):
        raise ValidationError(f"{key}: header value contains CR, LF or NUL")


def check_auth_value(auth_type: str, name: str, value: str, key: str) -> str:
    """One auth value (as written, or as its ``${VAR}`` expanded) that will travel in a header.

    Basic credentials travel base64-encoded, as UTF-8 (RFC 7617), so any text
    without line breaks is sendable, and ``listen`` compares the same bytes; a
    token or custom value is the header value itself: visible ASCII only.
    """
    if auth_type != "basic":
        return check_header_value(value, key)
    _check_no_line_break(value, key)
    if name == "username" and ":" in value:
        raise ValidationError(f"{key}: a basic-auth username cannot contain ':'")
    return value


def expand_checked(value: str, where: str, auth_type: str | None = None, auth_key: str = "",
                   environ: Mapping[str, str] | None = None) -> str:
    """``value`` with its ``${VAR}`` expanded, checked as strictly as a literal would be.

    The literal text was checked when the config was loaded; what a variable brings in is
    checked here, before anything is sent or received with it. An error names the key and the
    variable (never the value: it may be a secret), e.g. ``endpoints.crm.auth.token: … (from
    environment variable CRM_TOKEN; nothing was sent)``.
    """
    expanded = expand(value, where, environ)
    names = references(value)
    if names:
        try:
            if auth_type is None:
                check_header_value(expanded, where)
            else:
                check_auth_value(auth_type, auth_key, expanded, where)
        except ValidationError as exc:
            variables = ", ".join(dict.fromkeys(names))
            plural = "s" if len(set(names)) > 1 else ""
            raise ValidationError(f"{exc} (from environment variable{plural} {variables}; nothing was sent)") from None
    return expanded


def check_signing_secret(secret: str, key: str = "signing_secret", reference_ok: bool = True) -> str:
    """``whsec_`` + base64 of 24–64 random bytes, or (``reference_ok``) a ``${VAR}`` reference.

    A reference is checked again once expanded, before anything is sent, with
    ``reference_ok=False``: the value in the environment must be a real secret.
    """
    if reference_ok and has_reference(secret):
        return secret
    if not secret.startswith(_SIGNING_PREFIX):
        raise ValidationError(f"{key}: a signing secret starts with 'whsec_'")
    import base64  # imported here: only configs with a signing secret need it
    import binascii

    try:
        raw = base64.b64decode(secret[len(_SIGNING_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(f"{key}: the part after 'whsec_' is not valid base64") from None
    if not 24 <= len(raw) <= 64:
        raise ValidationError(f"{key}: a signing secret must hold 24 to 64 bytes, not {len(raw)}")
    return secret


def _check_auth_type(auth_type: str, key: str = "auth") -> str:
    if auth_type not in AUTH_TYPES:
        raise ValidationError(
            f"{key}.type: unknown auth type {auth_type!r} (expected one of: {', '.join(AUTH_TYPES)})"
        )
    return auth_type


def check_auth(auth: Auth, key: str = "auth") -> Auth:
    _check_auth_type(auth.type, key)
    for name in AUTH_KEYS[auth.type]:
        value = getattr(auth, name)
        if value is None or value == "":
            raise ValidationError(f"{key}.{name}: required for auth type {auth.type!r}")
        if name != "header":
            check_auth_value(auth.type, name, value, f"{key}.{name}")
    if auth.type == "custom":
        check_header_name(auth.header or "", f"{key}.header")
    return auth


def check_headers(headers: dict[str, str], auth: Auth, key: str) -> None:
    seen: set[str] = set()
    for name, value in headers.items():
        check_header_name(name, f"{key}.{name}")
        check_header_value(value, f"{key}.{name}")
        # Header names are case-insensitive: two spellings would send the header twice.
        if name.lower() in seen:
            raise ValidationError(f"{key}.{name}: header {name!r} is given twice (names ignore case)")
        seen.add(name.lower())
    auth_header = _auth_header_name(auth)
    if auth_header and any(name.lower() == auth_header for name in headers):
        raise ValidationError(
            f"{key}: header {auth_header!r} is already set by the endpoint's {auth.type} auth"
        )


def _auth_header_name(auth: Auth) -> str | None:
    if auth.type in ("basic", "bearer"):
        return "authorization"
    if auth.type == "custom" and auth.header:
        return auth.header.lower()
    return None


def check_positive(value: float, key: str) -> None:
    if value <= 0:
        raise ValidationError(f"{key}: must be greater than 0, got {value}")


# --------------------------------------------------------------------------
# parsing: dict from tomllib -> Config


class _Table:
    """Typed access to one TOML table that reports unknown keys and wrong types."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise ValidationError(f"{path or 'top level'}: expected a table, got {_type_name(data)}")
        self.data = data
        self.path = path
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, types: type | tuple[type, ...], default: Any = None) -> Any:
        self.seen.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        # bool is an int subclass: never accept true/false where a number is wanted.
        wanted = types if isinstance(types, tuple) else (types,)
        if isinstance(value, bool) and bool not in wanted:
            raise ValidationError(f"{self.key(name)}: expected {_names(wanted)}, got a boolean")
        if not isinstance(value, wanted):
            raise ValidationError(f"{self.key(name)}: expected {_names(wanted)}, got {_type_name(value)}")
        return value

    def finish(self) -> None:
        unknown = [name for name in self.data if name not in self.seen]
        if unknown:
            # Every known key of this table has been asked for by now: the closest is a likely typo.
            hint = did_you_mean(unknown[0], self.seen, quote=True)
            raise ValidationError(f"{self.key(unknown[0])}: unknown key{hint}")


# How a message names each TOML value type.
_TYPE_NAMES: dict[type, str] = {
    dict: "a table", list: "an array", str: "a string", bool: "a boolean",
    int: "an integer", float: "a number",
}


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _names(types: tuple[type, ...]) -> str:
    # (int, float) reads "a number": an integer is a number too.
    return " or ".join(
        _TYPE_NAMES.get(t, t.__name__) for t in types if not (t is int and float in types)
    )


def parse_config(data: dict[str, Any]) -> Config:
    """Validate the dict ``tomllib`` read and build a ``Config``.

    Raises ``ValidationError`` with the dotted key of the first problem found.
    """
    top = _Table(data, "")
    version = top.get("version", int, CONFIG_VERSION)
    if version != CONFIG_VERSION:
        raise ValidationError(f"version: unsupported config version {version} (expected {CONFIG_VERSION})")
    settings = _parse_settings(top.get("settings", dict, {}))
    endpoints_table = _Table(top.get("endpoints", dict, {}), "endpoints")
    endpoints: dict[str, Endpoint] = {}
    for name in endpoints_table.data:
        endpoints_table.seen.add(name)
        endpoints[name] = parse_endpoint(name, endpoints_table.data[name])
    top.finish()
    return Config(version=version, settings=settings, endpoints=endpoints)


def _parse_settings(data: Any) -> Settings:
    table = _Table(data, "settings")
    defaults = Settings()
    settings = Settings(
        origin=table.get("origin", str, defaults.origin),
        log_file=table.get("log_file", str, defaults.log_file),
        timeout=_finite(table.get("timeout", (int, float), defaults.timeout), "settings.timeout"),
        max_attempts=table.get("max_attempts", int, defaults.max_attempts),
        backoff=_finite(table.get("backoff", (int, float), defaults.backoff), "settings.backoff"),
        concurrency=table.get("concurrency", int, defaults.concurrency),
        disable_on=list(table.get("disable_on", list, defaults.disable_on)),
        verify_tls=table.get("verify_tls", (bool, str), defaults.verify_tls),
        on_disable=list(table.get("on_disable", list, defaults.on_disable)),
    )
    table.finish()
    check_header_value(settings.origin, "settings.origin")
    if not settings.origin:
        raise ValidationError("settings.origin: must not be empty")
    if not settings.log_file:
        raise ValidationError("settings.log_file: must not be empty")
    check_positive(settings.timeout, "settings.timeout")
    check_positive(settings.max_attempts, "settings.max_attempts")
    check_positive(settings.concurrency, "settings.concurrency")
    if settings.backoff < 0:
        raise ValidationError(f"settings.backoff: must not be negative, got {settings.backoff}")
    for status in settings.disable_on:
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ValidationError(f"settings.disable_on: {status!r} is not an HTTP status code")
    if settings.verify_tls == "":
        raise ValidationError("settings.verify_tls: expected true, false or a CA bundle path")
    for index, word in enumerate(settings.on_disable):
        # argv words: a NUL cannot be passed to exec, an empty program name means nothing.
        if not isinstance(word, str) or not word or "\x00" in word:
            raise ValidationError(f"settings.on_disable[{index}]: expected a non-empty string "
                                  f"(the command and its arguments, e.g. [\"notify-send\", \"moxiehook\"])")
    return settings


def parse_endpoint(name: str, data: Any, path: str | None = None) -> Endpoint:
    """Validate one endpoint table and build an ``Endpoint``.

    ``path`` prefixes the keys in error messages (default ``endpoints.NAME``);
    ``""`` names them bare (``auth.token: …``), for a table that did not come
    from a file (the pytest fixture's ``auth=``/``headers=``).
    """
    path = f"endpoints.{name}" if path is None else path
    try:
        check_endpoint_name(name)
    except ValidationError as exc:
        raise ValidationError(f"{path or name}: {exc}") from None
    table = _Table(data, path)
    auth = _parse_auth(table.get("auth", dict, {"type": "none"}), table.key("auth"))
    headers_table = _Table(table.get("headers", dict, {}), table.key("headers"))
    headers: dict[str, str] = {}
    for header in headers_table.data:
        headers[header] = headers_table.get(header, str)
    mappings = [
        _parse_mapping(item, f"{table.key('mappings')}[{index}]")
        for index, item in enumerate(table.get("mappings", list, []))
    ]
    endpoint = Endpoint(
        name=name,
        enabled=table.get("enabled", bool, True),
        description=table.get("description", str, ""),
        auth=auth,
        headers=headers,
        mappings=mappings,
        timeout=_optional_float(table.get("timeout", (int, float)), table.key("timeout")),
        verify_tls=table.get("verify_tls", (bool, str)),
        signing_secret=table.get("signing_secret", str),
        disabled_reason=table.get("disabled_reason", str),
        disabled_at=table.get("disabled_at", str),
    )
    table.finish()
    check_headers(endpoint.headers, endpoint.auth, table.key("headers"))
    if endpoint.timeout is not None:
        check_positive(endpoint.timeout, table.key("timeout"))
    if endpoint.verify_tls == "":
        raise ValidationError(f"{table.key('verify_tls')}: expected true, false or a CA bundle path")
    if endpoint.signing_secret is not None:
        check_signing_secret(endpoint.signing_secret, table.key("signing_secret"))
    return endpoint


def _optional_float(value: Any, key: str) -> float | None:
    return None if value is None else _finite(value, key)


def _finite(value: float, key: str) -> float:
    """A TOML number as a float; ``nan``, ``inf`` and integers too big for a float are refused."""
    try:
        number = float(value)
    except OverflowError:
        raise ValidationError(f"{key}: number too large") from None
    if not math.isfinite(number):
        raise ValidationError(f"{key}: must be a finite number, got {value}")
    return number


def _parse_auth(data: Any, path: str) -> Auth:
    table = _Table(data, path)
    # Checked before the other keys: the type says which keys belong in the table.
    auth_type = _check_auth_type(table.get("type", str, "none"), path)
    values = {key: table.get(key, str) for key in AUTH_KEYS[auth_type]}
    table.finish()
    return check_auth(Auth(type=auth_type, **values), path)


def _parse_mapping(data: Any, path: str) -> EventMapping:
    table = _Table(data, path)
    event = table.get("event", str)
    url = table.get("url", str)
    table.finish()
    if event is None:
        raise ValidationError(f"{path}.event: required")
    if url is None:
        raise ValidationError(f"{path}.url: required")
    return EventMapping(event=check_event_name(event, f"{path}.event"), url=check_url(url, f"{path}.url"))


# --------------------------------------------------------------------------
# serialising: Config -> dict for tomli_w


def config_to_dict(config: Config) -> dict[str, Any]:
    """The dict ``tomli_w`` writes; optional keys left unset are omitted."""
    settings = config.settings
    return {
        "version": config.version,
        "settings": {
            "origin": settings.origin,
            "log_file": settings.log_file,
            "timeout": settings.timeout,
            "max_attempts": settings.max_attempts,
            "backoff": settings.backoff,
            "concurrency": settings.concurrency,
            "disable_on": list(settings.disable_on),
            "verify_tls": settings.verify_tls,
            **({"on_disable": list(settings.on_disable)} if settings.on_disable else {}),
        },
        "endpoints": {name: endpoint_to_dict(endpoint) for name, endpoint in config.endpoints.items()},
    }


def endpoint_to_dict(endpoint: Endpoint, masked: bool = False) -> dict[str, Any]:
    """One endpoint as a TOML/JSON table; ``masked`` hides literal secrets."""
    auth = endpoint.auth.masked() if masked else {"type": endpoint.auth.type, **endpoint.auth.values()}
    table: dict[str, Any] = {"enabled": endpoint.enabled}
    if endpoint.description:
        table["description"] = endpoint.description
    table["auth"] = auth
    if endpoint.headers:
        table["headers"] = dict(endpoint.headers)
    optional = {
        "timeout": endpoint.timeout,
        "verify_tls": endpoint.verify_tls,
        "signing_secret": mask_literal(endpoint.signing_secret) if masked else endpoint.signing_secret,
        "disabled_reason": endpoint.disabled_reason,
        "disabled_at": endpoint.disabled_at,
    }
    table.update({key: value for key, value in optional.items() if value is not None})
    # mappings last: tomli-w writes arrays of tables after plain keys anyway.
    table["mappings"] = [{"event": m.event, "url": m.url} for m in endpoint.mappings]
    return table


def masked_config_dict(config: Config) -> dict[str, Any]:
    """The config as ``config show`` prints it without ``--reveal``."""
    data = config_to_dict(config)
    data["endpoints"] = {
        name: endpoint_to_dict(endpoint, masked=True) for name, endpoint in config.endpoints.items()
    }
    return data
