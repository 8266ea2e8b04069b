"""What a person reads from the command line itself: help text, usage lines, usage errors, typos.

Help is read on terminals 60, 80 and 120 columns wide, so layout checks run on a real
pseudo-terminal; the rest run in-process. The command walk goes through the root group's
lazy registry, so commands added later are checked too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from terminal import run_in_terminal
from test_cli_help import COMMANDS, IDS

import moxiehook

PACKAGE = Path(moxiehook.__file__).parent


def test_no_module_imports_a_private_typer_or_click_module() -> None:
    """``typer._click`` and friends change in any release: only public APIs of dependencies."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] in ("typer", "click") and any(part.startswith("_") for part in parts[1:]):
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {name}")
    assert not found, found


def test_no_exception_is_matched_by_its_class_name() -> None:
    source = (PACKAGE / "cli" / "__init__.py").read_text()
    assert "__name__ ==" not in source and "NoArgsIsHelpError" not in source


def test_a_mistyped_command_gets_the_closest_one(cli) -> None:
    result = cli("fier")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no such command 'fier' (did you mean 'fire'?) (see: ")


def test_a_mistyped_subcommand_gets_the_closest_one_in_the_same_words(cli) -> None:
    result = cli("endpoint", "shwo")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no such command 'shwo' (did you mean 'show'?)")


@pytest.mark.parametrize("args", [
    ("fier",), ("fire",), ("endpoint", "show"), ("listen", "--port", "80000"), ("events", "--nope"),
    ("logs", "--tail", "x"), ("--conifg", "x", "events"),
])
def test_every_usage_error_is_one_lowercase_line(cli, args: tuple[str, ...]) -> None:
    """click's own messages ("Missing argument", "No such option") read like moxiehook's."""
    result = cli(*args)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert re.match(r"error: [a-z-]", lines[0]), lines[0]
    assert not lines[0].endswith("."), lines[0]


def test_a_port_out_of_range_is_refused_by_the_option_not_the_socket(cli) -> None:
    result = cli("listen", "--port", "80000")
    assert result.exit_code == 2
    assert "bind()" not in result.stderr
    assert "'--port'" in result.stderr and "65535" in result.stderr


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_usage_names_arguments_in_capitals_without_braces(cli, path: tuple[str, ...], command: object) -> None:
    result = cli(*path, "--help", config=None)
    usage = next(line for line in result.stdout.splitlines() if "Usage:" in line)
    assert "{" not in usage and "}" not in usage, usage
    assert not re.search(r"\b[a-z_]+\b(?=\s*(\.\.\.)?\s*$)", usage.split("[OPTIONS]")[-1]) or "COMMAND" in usage, usage


def test_help_says_path_for_a_file_and_shows_listen_defaults(cli) -> None:
    fire = cli("fire", "--help", config=None).stdout
    assert re.search(r"--data\s+PATH", fire), fire
    listen = " ".join(cli("listen", "--help", config=None).stdout.split())
    assert re.search(r"--status .*default: 204", listen), listen
    assert re.search(r"--delay .*default: 0", listen), listen


MAIN_COMMANDS = [("init",), ("fire",), ("listen",), ("logs",), ("replay",), ("endpoint", "add"), ("map", "add"),
                 ("events",), ("test",)]


@pytest.mark.parametrize("path", MAIN_COMMANDS, ids=[" ".join(p) for p in MAIN_COMMANDS])
def test_main_commands_show_examples(cli, path: tuple[str, ...]) -> None:
    text = cli(*path, "--help", config=None).stdout
    assert "Examples" in text, text
    assert f"moxiehook {' '.join(path)}" in text.split("Examples", 1)[1]


@pytest.mark.parametrize("columns", [60, 80, 120])
@pytest.mark.parametrize("path", [("endpoint", "add"), ("listen",), ("logs",), ("fire",)],
                         ids=lambda p: " ".join(p) if isinstance(p, tuple) else str(p))
def test_help_never_breaks_a_word_of_a_choice_list(tmp_path: Path, path: tuple[str, ...], columns: int) -> None:
    code, shown = run_in_terminal(*path, "--help", cwd=tmp_path, columns=columns, env={"NO_COLOR": "1"})
    assert code == 0, shown
    shown = re.sub(r"\x1b\[[0-9;]*m", "", shown)
    for line in shown.splitlines():
        assert len(line) <= columns, line
    for word in ("custom", "bearer", "delivered", "skipped"):
        assert shown.count(word[:-1]) == shown.count(word), f"{word!r} broken across lines:\n{shown}"


@pytest.mark.parametrize("path", [(), ("endpoint",), ("map",), ("config",)], ids=lambda p: " ".join(p) or "moxiehook")
def test_a_group_given_nothing_prints_its_help_and_exits_2(cli, path: tuple[str, ...]) -> None:
    result = cli(*path, config=None)
    assert result.exit_code == 2
    assert "Usage:" in result.stdout and "Commands" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize(("group", "sub"), [("endpoint", "status"), ("logs", "show"), ("map", "list")])
def test_a_subcommand_is_built_alone_with_its_group_s_settings(group: str, sub: str) -> None:
    """`endpoint status crm` builds `status` only (start-up), and the group keeps its own settings."""
    import typer

    from moxiehook.cli import _load_command

    alone = _load_command(group, subcommand=sub)
    whole = _load_command(group)
    ctx = typer.Context(alone, info_name=group)
    assert alone.list_commands(ctx) == [sub]
    assert (alone.help, alone.no_args_is_help, alone.invoke_without_command, type(alone)) == (
        whole.help, whole.no_args_is_help, whole.invoke_without_command, type(whole))
    assert [p.name for p in alone.params] == [p.name for p in whole.params]
    one, full = alone.get_command(ctx, sub), whole.get_command(ctx, sub)
    assert (type(one), one.help, one.epilog, [p.name for p in one.params]) == (
        type(full), full.help, full.epilog, [p.name for p in full.params])
