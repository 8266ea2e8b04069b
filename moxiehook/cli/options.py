"""Options shared by several commands, and turning them into core values."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from moxiehook.config import AUTH_KEYS, Auth, check_auth
from moxiehook.errors import UsageError


class AuthType(StrEnum):
    none = "none"
    basic = "basic"
    bearer = "bearer"
    custom = "custom"


JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document to stdout.")]
AuthTypeOption = Annotated[
    AuthType | None,
    typer.Option("--auth", metavar="TYPE", help="Auth mode: none, basic, bearer or custom.", case_sensitive=False,
                 show_default=False),
]
UsernameOption = Annotated[str | None, typer.Option("--username", help="Basic auth user name.")]
PasswordOption = Annotated[
    str | None, typer.Option("--password", help="Basic auth password (or '${VAR}').")
]
TokenOption = Annotated[str | None, typer.Option("--token", help="Bearer token (or '${VAR}').")]
HeaderNameOption = Annotated[
    str | None, typer.Option("--header-name", help="Custom auth: the header's name.")
]
HeaderValueOption = Annotated[
    str | None, typer.Option("--header-value", help="Custom auth: the header's value (or '${VAR}').")
]

# option name for each Auth field, for messages that speak the user's language
_OPTION_OF = {
    "username": "--username",
    "password": "--password",
    "token": "--token",
    "header": "--header-name",
    "value": "--header-value",
}


def build_auth(
    auth_type: AuthType | None,
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
    header_name: str | None = None,
    header_value: str | None = None,
) -> Auth:
    """An ``Auth`` from the auth options, refusing missing or stray ones."""
    given = {"username": username, "password": password, "token": token,
             "header": header_name, "value": header_value}
    kind = auth_type.value if auth_type else _infer_type(given)
    needed = AUTH_KEYS[kind]
    stray = [_OPTION_OF[key] for key, value in given.items() if value is not None and key not in needed]
    if stray:
        raise UsageError(f"{', '.join(stray)} cannot be used with --auth {kind}")
    missing = [_OPTION_OF[key] for key in needed if not given[key]]
    if missing:
        raise UsageError(f"--auth {kind} needs {' and '.join(missing)}")
    return check_auth(Auth(type=kind, **{key: given[key] for key in needed}))


def _infer_type(given: dict[str, str | None]) -> str:
    """``--token T`` alone means bearer, as httpie infers its auth type."""
    if given["token"] is not None:
        return "bearer"
    if given["username"] is not None or given["password"] is not None:
        return "basic"
    if given["header"] is not None or given["value"] is not None:
        return "custom"
    return "none"


def parse_header(text: str) -> tuple[str, str]:
    """``'Name: value'`` (as curl's -H) into a name and a value."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise UsageError(f"--header {text!r} must look like 'Name: value'")
    return name.strip(), value.strip()
