"""``locustfile``: write a ready locustfile for Locust (``moxiehook.locust.MoxieUser``).

Writing it needs neither Locust nor gevent: the file is text made from the config, so this
command works (and stays fast) without the ``locust`` extra installed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from moxiehook.cli.help import Command
from moxiehook.cli.render import info, warn
from moxiehook.cli.state import state
from moxiehook.config import write_atomic
from moxiehook.errors import UsageError
from moxiehook.locust import locustfile_events, locustfile_text

locustfile_app = typer.Typer(add_completion=False)


@locustfile_app.command("locustfile", cls=Command)
def locustfile(
    ctx: typer.Context,
    events: Annotated[list[str] | None, typer.Argument(
        metavar="[EVENT]...", help="Event types to send (default: every catalog event the config maps).",
        show_default=False)] = None,
    endpoint: Annotated[str | None, typer.Option(
        "--endpoint", help="Only this endpoint's mappings (default: every enabled endpoint).",
        show_default=False)] = None,
    vary: Annotated[bool, typer.Option("--vary", help="Varied bodies, as fire --vary.")] = False,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE", help="Write the locustfile here (replacing it) instead of stdout.",
        show_default=False)] = None,
) -> None:
    """Write a locustfile sending the config's webhooks under Locust (needs the locust extra)."""
    if output is not None and output.is_dir():  # before the config helper's message, which speaks of a config
        raise UsageError(f"-o {output}: that is a folder; name a file, e.g. -o {output / 'locustfile.py'}")
    cli = state(ctx)
    path = cli.config_path
    config = cli.load()
    chosen, left_out = locustfile_events(config, path, events or [], endpoint)
    for name in left_out:
        warn(f"{name} is mapped but not in the catalog, so there is no body to send: left out of the locustfile")
    # A config named with --config is written into the file; otherwise Locust finds it as the CLI
    # does where it runs ($MOXIEHOOK_CONFIG, else ./moxiehook.toml), which suits other machines.
    text = locustfile_text(chosen, endpoint, vary, path if cli.config_option is not None else None)
    if output is None:
        sys.stdout.write(text)
        return
    write_atomic(output, text)
    info(f"wrote {output} ({', '.join(chosen)}); run it: locust -f {output} --headless -u 10 -t 1m")
