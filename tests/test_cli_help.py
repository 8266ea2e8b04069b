"""Every command and group has help text, and ``--help`` works for each.

The walk goes through the root group's lazy registry, so commands added later
are covered without touching this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer

from moxiehook.cli import app


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    list_commands = getattr(command, "list_commands", None)
    if list_commands is None:
        return
    ctx = typer.Context(command, info_name=" ".join(("moxiehook", *path)))
    for name in list_commands(ctx):
        sub = command.get_command(ctx, name)
        assert sub is not None, f"{' '.join(path + (name,))} is listed but cannot be loaded"
        yield from walk(sub, path + (name,))


COMMANDS = list(walk(typer.main.get_command(app)))
IDS = [" ".join(path) or "moxiehook" for path, _ in COMMANDS]


def test_the_walk_finds_the_foundation_commands() -> None:
    found = {" ".join(path) for path, _ in COMMANDS}
    expected = {
        "init", "config show", "config validate", "config path", "events", "events show",
        "map add", "map remove", "map list",
        *(f"endpoint {name}" for name in (
            "add", "list", "show", "remove", "enable", "disable", "status", "auth",
            "set-header", "unset-header", "secret",
        )),
    }
    assert expected <= found, expected - found


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_has_help_text(path: tuple[str, ...], command: Any) -> None:
    assert (command.help or "").strip(), f"{IDS[COMMANDS.index((path, command))]} has no help"
    assert command.get_short_help_str().strip()
    for param in command.params:
        if param.name in ("help",) or getattr(param, "hidden", False):
            continue
        # typer keeps an argument's help on the parameter too
        assert (getattr(param, "help", None) or "").strip(), f"{param.name} of {path} has no help"


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS], ids=IDS)
def test_help_option_works(cli, path: tuple[str, ...]) -> None:
    result = cli(*path, "--help", config=None)
    assert result.exit_code == 0, result.stderr
    assert "Usage:" in result.stdout
    assert result.stderr == ""
