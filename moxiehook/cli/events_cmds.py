"""``events`` and ``events show``: the built-in event catalog."""

from __future__ import annotations

from typing import Annotated

import typer

from moxiehook.catalog import events as catalog
from moxiehook.cli.options import JsonOption
from moxiehook.cli.render import print_json, print_table

app = typer.Typer(help="The event catalog and its sample payloads.", add_completion=False)


@app.callback(invoke_without_command=True)
def events(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the built-in event types (16 Moxie events)."""
    if ctx.invoked_subcommand is not None:
        return
    if as_json:
        print_json([{"event": e.name, "object": e.object, "description": e.description} for e in catalog.EVENTS])
        return
    print_table(["event", "object", "description"], [[e.name, e.object, e.description] for e in catalog.EVENTS])


@app.command("show")
def show(event: Annotated[str, typer.Argument(metavar="EVENT", help="Event type, e.g. ClientCreate.", show_default=False)]) -> None:
    """Print an event's sample payload as pretty JSON."""
    print_json(catalog.sample_payload(event))
