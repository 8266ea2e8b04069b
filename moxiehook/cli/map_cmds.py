"""``map …``: route events to URLs."""

from __future__ import annotations

from typing import Annotated

import typer

from moxiehook import catalog
from moxiehook.cli.help import Command, Group, examples
from moxiehook.cli.options import JsonOption
from moxiehook.cli.render import Column, WideOption, command, echo, print_json, print_table, state_text, warn
from moxiehook.cli.state import state
from moxiehook.config import check_event_name
from moxiehook.config import edits as ops

app = typer.Typer(cls=Group, no_args_is_help=True, add_completion=False)


@app.callback()
def map_() -> None:
    """Map events to URLs on an endpoint."""


EndpointArg = Annotated[str, typer.Argument(metavar="ENDPOINT", help="The endpoint's name.", show_default=False)]
EventArg = Annotated[str, typer.Argument(metavar="EVENT", help="Event type, e.g. ClientCreate.", show_default=False)]


@app.command("add", cls=Command, epilog=examples(
    "moxiehook map add crm ClientCreate http://127.0.0.1:8787/hooks/clients",
))
def add(
    ctx: typer.Context,
    endpoint: EndpointArg,
    event: EventArg,
    url: Annotated[str, typer.Argument(metavar="URL", help="http:// or https:// URL.", show_default=False)],
    custom: Annotated[bool, typer.Option(
        "--custom", help="EVENT is your own event type, even though its name is close to a catalog one.")] = False,
) -> None:
    """Send EVENT to URL on ENDPOINT (an event may map to several URLs)."""
    from moxiehook.config import plain_http_warnings

    check_event_name(event)  # a malformed name is refused as such, not "corrected"
    if not custom:  # a typo must not become a mapping that never fires
        catalog.check_not_a_near_miss(event, state(ctx).load().mapped_events(),
                                      hint=f"if {event} is your own event type, add --custom")
    updated = ops.add_mapping(state(ctx).config_path, endpoint, event, url)
    if not catalog.is_known(event):
        warn(f"{event} is not in the catalog: 'fire {event}' will need --data")
    echo(f"{endpoint}: {event} → {url}")
    # Warn about the URL just added only: older mappings were warned about when added.
    for message in plain_http_warnings(updated, [url]):
        warn(message)


@app.command("remove", cls=Command)
def remove(
    ctx: typer.Context,
    endpoint: EndpointArg,
    event: EventArg,
    url: Annotated[str | None, typer.Argument(metavar="[URL]", help="Only this URL (default: all).",
                                              show_default=False)] = None,
) -> None:
    """Remove EVENT's mapping to URL, or all of EVENT's mappings on ENDPOINT."""
    removed = ops.remove_mappings(state(ctx).config_path, endpoint, event, url)
    for mapping in removed:
        echo(f"{endpoint}: removed {mapping.event} → {mapping.url}")


@app.command("list", cls=Command)
def list_(ctx: typer.Context, wide: WideOption = False, as_json: JsonOption = False) -> None:
    """All mappings: endpoint, event, URL and the endpoint's state."""
    rows = ops.list_mappings(state(ctx).load())
    if as_json:
        print_json([{"endpoint": r.endpoint, "event": r.event, "url": r.url, "enabled": r.enabled} for r in rows])
        return
    if not rows:
        echo(f"no mappings yet (add one with: {command('map add ENDPOINT EVENT URL')})")
        return
    print_table(
        [Column("endpoint"), Column("event", min_width=12), Column("url", shrink="middle", min_width=24),
         Column("state", shrink="")],
        [[r.endpoint, r.event, r.url, state_text(r.enabled)] for r in rows],
        wide=wide,
    )
