"""How commands present themselves: usage lines, help with no arguments, "Examples" sections.

Every command and group of moxiehook is built from the classes here (``cls=Command`` on
``@app.command``, ``cls=Group`` on ``typer.Typer``), so their help reads the same way
everywhere. Only typer's public classes are extended (``typer.core``).
"""

from __future__ import annotations

import typer
from typer.core import TyperCommand, TyperGroup


def _plain(piece: str) -> str:
    """``{EVENT}`` as ``EVENT``: typer marks a required argument with braces, which reads like a
    shell brace expansion; Unix usage lines (and gh, git, curl) write a required one bare."""
    if piece.startswith("{") and piece.endswith("}"):
        return piece[1:-1]
    return piece


class Command(TyperCommand):
    """A moxiehook command: required arguments in the usage line as ``EVENT``, not ``{EVENT}``."""

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        return [_plain(piece) for piece in super().collect_usage_pieces(ctx)]


class Group(TyperGroup):
    """A moxiehook group (``endpoint``, ``map``, …).

    Given no subcommand, a group with ``no_args_is_help`` prints its help on stdout and exits 2
    (nothing was done); this is decided here, before any error, so that the one error handler
    never has to recognise a "help" exception among the usage errors.
    """

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        return [_plain(piece) for piece in super().collect_usage_pieces(ctx)]

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            text = ctx.get_help()  # Rich help prints itself and returns ""
            if text:
                typer.echo(text)
            ctx.exit(2)
        return list(super().parse_args(ctx, args))


def examples(*lines: str) -> str:
    """An "Examples" section for a command's help (its epilog): one command per paragraph,
    each a line a user can copy as it is (``# …`` after two spaces says what it does)."""
    return "\n\n".join(["[bold]Examples[/bold]", *(f"$ {line}" for line in lines)])

