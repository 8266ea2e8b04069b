"""``${NAME}`` references: expansion at send time, masking for views and the log.

A value that holds a ``${NAME}`` reference is stored and shown as written (the
reference itself is not a secret); a literal secret is shown as ``***``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from moxiehook.errors import MissingVariableError

MASK = "***"

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def references(value: str) -> list[str]:
    """The variable names ``value`` refers to through ``${NAME}``."""
    return _REFERENCE.findall(value)


def has_reference(value: str) -> bool:
    """True when ``value`` contains at least one ``${NAME}`` reference."""
    return _REFERENCE.search(value) is not None


def expand(value: str, where: str = "", environ: Mapping[str, str] | None = None) -> str:
    """Replace every ``${NAME}`` in ``value`` from the environment.

    Raises ``MissingVariableError`` naming the first variable that is not set,
    so that nothing is sent with a half-expanded credential.
    """
    env = os.environ if environ is None else environ

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise MissingVariableError(name, where)
        return env[name]

    return _REFERENCE.sub(substitute, value)


def mask_literal(value: str | None) -> str | None:
    """How a secret is shown in a view: references as written, literals as ``***``."""
    if value is None or value == "" or has_reference(value):
        return value
    return MASK
