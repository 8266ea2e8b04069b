"""The TOML config file and what it means.

- ``model``: the dataclasses (``Config``, ``Endpoint``, ``Auth``…), parsing and validation;
  questions asked of a config (an endpoint by name, the log's path) are its methods.
- ``store``: where the file is, reading it, locked atomic read-modify-write.
- ``edits``: one function per user edit (add an endpoint, map an event, toggle…).
- ``secrets``: ``${VAR}`` expansion and masking. ``advice``: warnings about risky but valid configs.
- ``starter``: what ``init`` writes (``--sample``: the packaged sample-config.toml).

Other packages import from here, not from the inner modules. Stdlib only: config
commands must start as fast as ``import typer``, so ``advice``, ``edits`` and
``starter`` load when one of their names is first used (PEP 562): ``events`` or
``fire`` only read the config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from moxiehook.config.model import (
    AUTH_KEYS,
    Auth,
    Config,
    Endpoint,
    EventMapping,
    Settings,
    check_auth,
    check_auth_value,
    check_event_name,
    check_header_value,
    check_signing_secret,
    check_url,
    config_to_dict,
    endpoint_to_dict,
    expand_checked,
    mask_userinfo,
    masked_config_dict,
    parse_endpoint,
    resolve_relative,
)
from moxiehook.config.secrets import MASK, expand, has_reference, references
from moxiehook.config.store import create_config, load_config, render_config, resolve_config_path, write_atomic
from moxiehook.lazy import lazy_getattr

_LAZY = {
    "config_warnings": "advice", "endpoint_warnings": "advice", "plain_http_warnings": "advice",
    "disable_endpoint": "edits", "enable_endpoint": "edits",
    "sample_config_text": "starter", "starter_config_text": "starter",
}  # fmt: skip

if TYPE_CHECKING:
    from moxiehook.config.advice import config_warnings, endpoint_warnings, plain_http_warnings
    from moxiehook.config.edits import disable_endpoint, enable_endpoint
    from moxiehook.config.starter import sample_config_text, starter_config_text

__all__ = [
    "AUTH_KEYS", "MASK", "Auth", "Config", "Endpoint", "EventMapping", "Settings",
    "check_auth", "check_auth_value", "check_event_name", "check_header_value", "check_signing_secret",
    "check_url", "config_to_dict", "config_warnings", "create_config", "disable_endpoint", "enable_endpoint",
    "endpoint_to_dict", "endpoint_warnings", "expand", "expand_checked", "has_reference", "load_config",
    "mask_userinfo", "masked_config_dict", "parse_endpoint", "plain_http_warnings", "references", "render_config",
    "resolve_config_path", "resolve_relative", "sample_config_text", "starter_config_text", "write_atomic",
]

__getattr__ = lazy_getattr(__name__, _LAZY, globals())
