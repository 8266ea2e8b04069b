"""``events``, ``events show`` and ``events schema``: the built-in event catalog."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from moxiehook import catalog
from moxiehook.cli.help import Command, Group, examples
from moxiehook.cli.options import JsonOption
from moxiehook.cli.render import Column, WideOption, print_json, print_table

app = typer.Typer(cls=Group, help="The event catalog, its sample payloads and their JSON Schemas.",
                  add_completion=False)

EventArg = Annotated[str, typer.Argument(metavar="EVENT", help="Event type, e.g. ClientCreate.", show_default=False)]


@app.callback(invoke_without_command=True, epilog=examples(
    "moxiehook events",
    "moxiehook events show ClientCreate",
    "moxiehook events schema ClientCreate",
))
def events(ctx: typer.Context, wide: WideOption = False, as_json: JsonOption = False) -> None:
    """List Moxie's 28 event types: object, shape source (documented or inferred), description."""
    if ctx.invoked_subcommand is not None:
        return
    if as_json:
        print_json([
            {"event": e.name, "object": e.object, "description": e.description, "source": e.source,
             "partial": e.partial, "note": e.shape_note}
            for e in catalog.EVENTS
        ])
        return
    # The description says what the event is: the object column (which the event's name
    # mostly says too) gives way first, so at 120 columns most descriptions are whole.
    print_table(
        [Column("event", shrink=""), Column("object", min_width=12, drop=1), Column("shape", shrink=""),
         Column("description", min_width=16)],
        [[e.name, e.object, e.shape, f"{e.description} {e.shape_note}" if e.partial else e.description]
         for e in catalog.EVENTS],
        wide=wide,
    )


@app.command("show", cls=Command)
def show(event: EventArg) -> None:
    """Print an event's sample payload (pretty JSON, as the catalog's data file holds it)."""
    sys.stdout.write(catalog.sample_text(event))


@app.command("schema", cls=Command)
def schema(event: EventArg) -> None:
    """Print the JSON Schema (draft 2020-12) of an event's payload."""
    print_json(catalog.schema(event))
