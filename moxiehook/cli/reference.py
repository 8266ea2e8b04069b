"""The command reference (``docs/reference.md``), generated from the CLI itself.

``python -m moxiehook.cli.reference > docs/reference.md`` walks the command tree (the root
group's lazy registry, so a newly registered command appears without touching this file)
and writes each command's usage, help, arguments, options and examples as Markdown. A test
compares the checked-in page with this output, so the reference never drifts from ``--help``.

Only click's public command API is used (``get_params``, ``get_help_record``,
``collect_usage_pieces``, ``list_commands``/``get_command``), through typer's objects.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from typing import Any

import typer

COMMAND = "python -m moxiehook.cli.reference > docs/reference.md"

_MARKUP = re.compile(r"\[/?(bold|b|i|italic|dim|green|red|yellow|cyan)\]")

HEADER = f"""\
# Command reference

Every command, with its arguments and options, as `moxiehook COMMAND --help` shows them.
This page is generated from the CLI itself (`{COMMAND}`); a test fails when it is out of date.
"""


def walk(command: Any, ctx: typer.Context) -> Iterator[tuple[Any, typer.Context]]:
    """``command`` and every command below it, depth first, each with its context."""
    yield command, ctx
    list_commands = getattr(command, "list_commands", None)
    if list_commands is None:
        return
    for name in list_commands(ctx):
        sub = command.get_command(ctx, name)
        if sub is None or getattr(sub, "hidden", False):
            continue
        yield from walk(sub, typer.Context(sub, info_name=name, parent=ctx, **(sub.context_settings or {})))


def render() -> str:
    """The whole reference page."""
    from moxiehook.cli import app

    root = typer.main.get_command(app)
    sections = [HEADER]
    for command, ctx in walk(root, typer.Context(root, info_name="moxiehook", **(root.context_settings or {}))):
        sections.append(_section(command, ctx))
    return "\n".join(sections).rstrip("\n") + "\n"


def _section(command: Any, ctx: typer.Context) -> str:
    path = ctx.command_path
    lines = [f"## `{path}`", ""]
    usage = " ".join([path, *command.collect_usage_pieces(ctx)])
    lines += ["```text", usage, "```", ""]
    if command.help:
        lines += [_plain(command.help).strip(), ""]
    arguments: list[tuple[str, str]] = []
    options: list[tuple[str, str]] = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        (arguments if param.param_type_name == "argument" else options).append(record)
    for title, records in (("Arguments", arguments), ("Options", options)):
        if records:
            lines += [f"**{title}**", "", "| | |", "|---|---|"]
            lines += [f"| `{_cell(name)}` | {_cell(_plain(text))} |" for name, text in records]
            lines.append("")
    commands = getattr(command, "list_commands", None)
    if commands is not None:
        listed = [(name, command.get_command(ctx, name)) for name in commands(ctx)]
        rows = [f"| [`{name}`](#{_anchor(f'{path} {name}')}) | {_cell(_plain(sub.get_short_help_str(200)))} |"
                for name, sub in listed if sub is not None and not getattr(sub, "hidden", False)]
        if rows:
            lines += ["**Commands**", "", "| | |", "|---|---|", *rows, ""]
    if command.epilog:
        lines += _examples(command.epilog)
    return "\n".join(lines)


def _examples(epilog: str) -> list[str]:
    """An "Examples" epilog (``help.examples``) as a console block."""
    paragraphs = [_plain(part).strip() for part in epilog.split("\n\n") if part.strip()]
    title, *rest = paragraphs
    return [f"**{title}**", "", "```console", *rest, "```", ""]


def _plain(text: str) -> str:
    """Help text without Rich markup, its paragraphs kept, each on one line."""
    text = _MARKUP.sub("", text)
    return "\n\n".join(" ".join(part.split()) for part in text.split("\n\n"))


def _cell(text: str) -> str:
    """Text for a Markdown table cell: one line, ``|`` escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _anchor(heading: str) -> str:
    """The id mkdocs gives a heading like ``moxiehook endpoint add`` (backticks dropped)."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.lower()).strip().replace(" ", "-")


if __name__ == "__main__":
    sys.stdout.write(render())
