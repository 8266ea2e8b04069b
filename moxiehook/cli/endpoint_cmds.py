"""``endpoint …``: add, inspect, toggle and edit endpoints."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from moxiehook.cli.help import Command, Group, examples
from moxiehook.cli.options import (
    AuthType,
    AuthTypeOption,
    HeaderNameOption,
    HeaderValueOption,
    JsonOption,
    PasswordOption,
    TokenOption,
    UsernameOption,
    build_auth,
    parse_header,
)
from moxiehook.cli.render import (
    Column,
    Styled,
    WideOption,
    command,
    echo,
    escape_control,
    info,
    print_json,
    print_table,
    state_text,
    warn,
)
from moxiehook.cli.state import state
from moxiehook.config import Endpoint, endpoint_to_dict
from moxiehook.config import edits as ops
from moxiehook.errors import EXIT_FAILED, UsageError
from moxiehook.ids import now_iso

app = typer.Typer(cls=Group, no_args_is_help=True, add_completion=False)


@app.callback()
def endpoint() -> None:
    """Add, show, toggle and edit endpoints."""


NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The endpoint's name.", show_default=False)]


def _state_line(endpoint: Endpoint) -> str:
    if endpoint.enabled:
        return "enabled"
    # A reason typed with --reason (or hand-edited) may hold control characters: shown, never acted on.
    return f"disabled: {escape_control(endpoint.disabled_reason or 'no reason given')}"


@app.command("add", cls=Command, epilog=examples(
    "moxiehook endpoint add crm --token '${CRM_TOKEN}'",
    "moxiehook endpoint add ops --auth basic --username ops --password '${OPS_PASSWORD}'",
))
def add(
    ctx: typer.Context,
    name: NameArg,
    auth: AuthTypeOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    token: TokenOption = None,
    header_name: HeaderNameOption = None,
    header_value: HeaderValueOption = None,
    header: Annotated[
        list[str] | None, typer.Option("--header", help="A custom header, 'Name: value' (repeatable).")
    ] = None,
    description: Annotated[str, typer.Option("--description", help="What the endpoint is for.")] = "",
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it disabled.")] = False,
    signing_secret: Annotated[
        str | None,
        typer.Option("--signing-secret", help="Sign deliveries (Standard Webhooks): 'whsec_…' or '${VAR}'."),
    ] = None,
) -> None:
    """Add an endpoint (no mappings yet: see 'moxiehook map add')."""
    from moxiehook.config import endpoint_warnings

    endpoint = Endpoint(
        name=name,
        enabled=not disabled,
        description=description,
        auth=build_auth(auth, username, password, token, header_name, header_value),
        headers=dict(parse_header(text) for text in header or []),
        signing_secret=signing_secret,
        disabled_reason="added with --disabled" if disabled else None,
        disabled_at=now_iso() if disabled else None,
    )
    ops.add_endpoint(state(ctx).config_path, endpoint)
    for message in endpoint_warnings(endpoint):
        warn(message)
    echo(f"added endpoint '{name}' ({endpoint.auth.type} auth, {'disabled' if disabled else 'enabled'})")


@app.command("list", cls=Command)
def list_(ctx: typer.Context, wide: WideOption = False, as_json: JsonOption = False) -> None:
    """Table of endpoints: name, state, auth type, mappings, disabled reason."""
    config = state(ctx).load()
    endpoints = list(config.endpoints.values())
    if as_json:
        print_json([{"name": e.name, **endpoint_to_dict(e, masked=True)} for e in endpoints])
        return
    if not endpoints:
        echo(f"no endpoints yet (add one with: {command('endpoint add NAME')})")
        return
    print_table(
        [Column("name"), Column("state", shrink=""), Column("auth", shrink=""), Column("mappings", shrink=""),
         Column("disabled reason", min_width=16)],
        [
            [e.name, state_text(e.enabled), e.auth.type, len(e.mappings), e.disabled_reason or ""]
            for e in endpoints
        ],
        wide=wide,
    )


@app.command("show", cls=Command)
def show(ctx: typer.Context, name: NameArg, wide: WideOption = False, as_json: JsonOption = False) -> None:
    """One endpoint with its auth, headers and mappings (one line each); secrets masked."""
    endpoint = state(ctx).load().endpoint(name)
    data = endpoint_to_dict(endpoint, masked=True)
    if as_json:
        print_json({"name": name, **data})
        return
    auth = data["auth"]
    fields: list[tuple[str, Any]] = [
        ("name", name),
        ("state", state_text(True) if endpoint.enabled else Styled(_state_line(endpoint), "red")),
        ("description", endpoint.description),
        ("auth", " ".join([auth["type"], *(f"{key}={value}" for key, value in auth.items() if key != "type")])),
        *(("header", f"{key}: {value}") for key, value in data.get("headers", {}).items()),
        ("signing", data.get("signing_secret")),
        ("timeout", None if endpoint.timeout is None else f"{endpoint.timeout:g} s"),
        ("verify_tls", data.get("verify_tls")),
        ("disabled_at", endpoint.disabled_at),
    ]
    print_table([Column("field", shrink=""), Column("value", min_width=16)],
                [[key, value] for key, value in fields if value not in (None, "")], wide=wide, header=False)
    echo()
    if not endpoint.mappings:
        echo(f"no mappings yet (add one with: {command(f'map add {name} EVENT URL')})")
        return
    print_table([Column("event", min_width=12), Column("URL", shrink="middle", min_width=24)],
                [[m.event, m.url] for m in endpoint.mappings], wide=wide)


@app.command("remove", cls=Command)
def remove(ctx: typer.Context, name: NameArg) -> None:
    """Remove an endpoint with its mappings."""
    removed = ops.remove_endpoint(state(ctx).config_path, name)
    echo(f"removed endpoint '{name}' and its {len(removed.mappings)} mapping(s)")


@app.command("enable", cls=Command)
def enable(ctx: typer.Context, name: NameArg) -> None:
    """Enable an endpoint (and clear why it was disabled). Idempotent."""
    result = ops.enable_endpoint(state(ctx).config_path, name)
    echo(f"{name}: {_state_line(result.endpoint)}")


@app.command("disable", cls=Command)
def disable(
    ctx: typer.Context,
    name: NameArg,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (shown by status and list).")] = None,
) -> None:
    """Disable an endpoint: fire and replay skip it until it is enabled. Idempotent.

    On an endpoint already disabled, --reason replaces the reason recorded (the time it was
    disabled stays); without --reason nothing changes.
    """
    result = ops.disable_endpoint(state(ctx).config_path, name, reason, replace_reason=True)
    echo(f"{name}: {_state_line(result.endpoint)}")
    if result.replaced_reason is not None:
        info(f"{name} was already disabled; its reason was {escape_control(result.replaced_reason)!r}")
    elif not result.changed:
        info(f"{name} was already disabled")


@app.command("status", cls=Command)
def status(ctx: typer.Context, name: NameArg) -> None:
    """Print 'enabled' (exit 0) or 'disabled: REASON' (exit 1), for shell scripts."""
    endpoint = state(ctx).load().endpoint(name)
    echo(_state_line(endpoint))
    if not endpoint.enabled:
        raise typer.Exit(EXIT_FAILED)


@app.command("auth", cls=Command)
def auth(
    ctx: typer.Context,
    name: NameArg,
    auth: Annotated[
        AuthType, typer.Option("--auth", help="Auth mode.", case_sensitive=False, show_default=False)
    ],
    username: UsernameOption = None,
    password: PasswordOption = None,
    token: TokenOption = None,
    header_name: HeaderNameOption = None,
    header_value: HeaderValueOption = None,
) -> None:
    """Replace an endpoint's auth settings."""
    new_auth = build_auth(auth, username, password, token, header_name, header_value)
    ops.set_auth(state(ctx).config_path, name, new_auth)
    if new_auth.type == "none":
        warn(f"endpoint '{name}' has no auth now")
    echo(f"{name}: auth is now {new_auth.type}")


@app.command("set-header", cls=Command)
def set_header(
    ctx: typer.Context,
    name: NameArg,
    key: Annotated[str, typer.Argument(metavar="KEY", help="Header name.", show_default=False)],
    value: Annotated[str, typer.Argument(metavar="VALUE", help="Header value (may hold '${VAR}').",
                                         show_default=False)],
) -> None:
    """Set a custom header sent with every delivery to this endpoint."""
    ops.set_header(state(ctx).config_path, name, key, value)
    echo(f"{name}: header {key} set")


@app.command("unset-header", cls=Command)
def unset_header(
    ctx: typer.Context,
    name: NameArg,
    key: Annotated[str, typer.Argument(metavar="KEY", help="Header name.", show_default=False)],
) -> None:
    """Remove a custom header."""
    ops.unset_header(state(ctx).config_path, name, key)
    echo(f"{name}: header {key} removed")


@app.command("secret", cls=Command)
def secret(
    ctx: typer.Context,
    name: NameArg,
    generate: Annotated[bool, typer.Option("--generate", help="Make a new random secret and print it once.")] = False,
    set_: Annotated[str | None, typer.Option("--set", help="Use this secret: 'whsec_…' or '${VAR}'.")] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Stop signing deliveries.")] = False,
) -> None:
    """Set, generate or remove the endpoint's Standard Webhooks signing secret."""
    if sum([generate, set_ is not None, remove]) != 1:
        raise UsageError("give exactly one of --generate, --set SECRET or --remove")
    path = state(ctx).config_path
    if remove:
        ops.set_signing_secret(path, name, None)
        echo(f"{name}: deliveries are no longer signed")
        return
    new_secret = ops.generate_signing_secret() if generate else set_
    ops.set_signing_secret(path, name, new_secret)
    if generate:
        # The only time the secret is shown: give it to the receiver now.
        echo(str(new_secret))
    else:
        echo(f"{name}: signing secret set")
