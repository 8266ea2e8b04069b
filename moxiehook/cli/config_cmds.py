"""``init`` and ``config show|validate|path``."""

from __future__ import annotations

from typing import Annotated

import typer

from moxiehook.cli.help import Command, Group, examples
from moxiehook.cli.options import JsonOption
from moxiehook.cli.render import command, echo, info, print_json, warn
from moxiehook.cli.state import state

app = typer.Typer(cls=Group, no_args_is_help=True, add_completion=False)
# `init` is a top-level command of its own, not `config init`.
init_app = typer.Typer(add_completion=False)


@app.callback()
def config() -> None:
    """Show, check and locate the config file."""


@init_app.command("init", cls=Command, epilog=examples(
    "moxiehook init",
    "moxiehook init --sample",
))
def init(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config.")] = False,
    sample: Annotated[
        bool, typer.Option("--sample", help="Write the full sample, endpoints live (aimed at `moxiehook listen`).")
    ] = False,
) -> None:
    """Write a starter config: the settings with their defaults, endpoint examples commented out."""
    from moxiehook.config import create_config, sample_config_text, starter_config_text

    path = state(ctx).config_path
    create_config(path, sample_config_text() if sample else starter_config_text(), force=force)
    echo(f"wrote {path}")
    if sample:
        # The sample's endpoints send ${CRM_TOKEN} and ${BILLING_PASSWORD}: the hint sets the one it needs.
        info("next: moxiehook listen   # in another terminal")
        info(f"then: CRM_TOKEN=dev-token {command('fire ClientCreate')}")
    else:
        info(f"next: {command('endpoint add NAME')}, then: {command('map add NAME EVENT URL')}")


@app.command("show", cls=Command)
def show(
    ctx: typer.Context,
    reveal: Annotated[bool, typer.Option("--reveal", help="Show secrets instead of ***.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Print the config; secrets are shown as *** unless --reveal."""
    import tomli_w

    from moxiehook.config import config_to_dict, masked_config_dict

    config = state(ctx).load()
    data = config_to_dict(config) if reveal else masked_config_dict(config)
    if as_json:
        print_json(data)
    else:
        echo(tomli_w.dumps(data).rstrip("\n"))


@app.command("validate", cls=Command)
def validate(ctx: typer.Context) -> None:
    """Check the config: exit 0 when it is valid, 2 when it is not."""
    from moxiehook.config import config_warnings

    path = state(ctx).config_path
    config = state(ctx).load()
    for message in config_warnings(config, path):
        warn(message)
    count = len(config.endpoints)
    mappings = sum(len(e.mappings) for e in config.endpoints.values())
    echo(f"{path}: valid ({count} endpoint{'s' * (count != 1)}, {mappings} mapping{'s' * (mappings != 1)})")


@app.command("path", cls=Command)
def path(ctx: typer.Context) -> None:
    """Print the resolved config path (--config > $MOXIEHOOK_CONFIG > ./moxiehook.toml)."""
    echo(str(state(ctx).config_path))
