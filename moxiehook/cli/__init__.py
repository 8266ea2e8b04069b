"""The command-line layer: the only package that imports typer or rich.

Commands parse options, call one core function, and render its result. Every
``MoxiehookError`` raised below the root group is turned here, in one place,
into an ``error: …`` line on stderr and the error's exit code (SPEC §7).
"""

from __future__ import annotations

import copy
import importlib
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import typer
from typer._click.exceptions import ClickException, UsageError  # typer 0.28 vendors click
from typer.core import TyperGroup

from moxiehook import __version__
from moxiehook.cli.render import ClosedOutput, GuardedOutput, OutputError
from moxiehook.cli.state import CliState
from moxiehook.errors import EXIT_FAILED, MoxiehookError

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `git log | head` or `seq 1e9 | head`

# Command name -> (module, attribute holding its typer.Typer). Modules are
# imported only when their command runs, so `endpoint status` never pays for
# building `fire` (or importing what it needs).
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("moxiehook.cli.config_cmds", "init_app"),
    "config": ("moxiehook.cli.config_cmds", "app"),
    "endpoint": ("moxiehook.cli.endpoint_cmds", "app"),
    "map": ("moxiehook.cli.map_cmds", "app"),
    "events": ("moxiehook.cli.events_cmds", "app"),
    "fire": ("moxiehook.cli.fire_cmds", "fire_app"),
    "test": ("moxiehook.cli.fire_cmds", "test_app"),
    "listen": ("moxiehook.cli.listen_cmds", "listen_app"),
    "logs": ("moxiehook.cli.logs_cmds", "app"),
    "replay": ("moxiehook.cli.replay_cmds", "replay_app"),
    "demo": ("moxiehook.cli.demo_cmds", "demo_app"),
    "ui": ("moxiehook.cli.ui_cmds", "ui_app"),
}


class MoxiehookGroup(TyperGroup):
    """The root group: loads commands lazily and handles moxiehook's own errors."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        return _load_command(cmd_name)

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> Any:
        # `endpoint status crm` only needs `status` built: typer's conversion of a
        # command inspects its signature, which is most of a short command's run time.
        if len(args) > 1 and args[0] in COMMANDS:
            return args[0], _load_command(args[0], subcommand=args[1]), args[1:]
        return super().resolve_command(ctx, args)

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        # The root's own options (`--config`, a typo like `--conifg`) are parsed here.
        try:
            return super().make_context(*args, **kwargs)
        except ClickException as exc:
            _report_click_error(exc)

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            try:
                return super().invoke(ctx)
            finally:
                sys.stdout.flush()  # so that a write error surfaces here, not at interpreter exit
        except ClickException as exc:
            # A subcommand's bad option or argument, or an unknown command.
            _report_click_error(exc)
        except MoxiehookError as exc:
            from moxiehook.cli.render import print_error

            print_error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            from moxiehook.cli.render import print_error

            print_error("interrupted")
            raise typer.Exit(130) from None
        except OutputError as exc:
            _report_output_error(exc)


def _report_output_error(exc: OutputError) -> NoReturn:
    """stdout could not be written: after a closed pipe (``| head``) exit quietly, as other CLIs
    do (141, as if killed by SIGPIPE); otherwise (a full disk, a closed stdout) one ``error:``
    line and exit 1 — also after a ``fire`` has sent, whose summary is already on stderr."""
    _discard_stdout()
    if isinstance(exc.error, BrokenPipeError):
        raise typer.Exit(EXIT_BROKEN_PIPE)
    from moxiehook.cli.render import print_error

    print_error(f"cannot write the output: {exc}")
    raise typer.Exit(EXIT_FAILED)


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush does not fail a second time."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, OutputError, ValueError):
        pass  # no file descriptor (a closed stdout): nothing is left to flush


def _report_click_error(exc: ClickException) -> NoReturn:
    """Show click's usage errors like moxiehook's own: one ``error: …`` line, exit 2.

    Click would print a usage block and a framed panel; SPEC §7 wants one line.
    """
    if type(exc).__name__ == "NoArgsIsHelpError":
        raise exc  # the command's help was asked for by giving no arguments
    from moxiehook.cli.render import print_error

    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, UsageError) and ctx is not None:
        message += f" (see: {ctx.command_path} --help)"
    print_error(message)
    raise typer.Exit(exc.exit_code) from None


def _load_command(name: str, subcommand: str | None = None) -> Any:
    """Import a command's module and build its click command.

    With ``subcommand`` naming one of a group's commands, the group is built
    with that command alone (help and completion build it whole).
    """
    module_name, attribute = COMMANDS[name]
    sub_app: typer.Typer = getattr(importlib.import_module(module_name), attribute)
    only = [info for info in sub_app.registered_commands if info.name == subcommand]
    if only and sub_app.registered_callback is not None:
        sub_app = copy.copy(sub_app)
        sub_app.registered_commands = only
    command = typer.main.get_command(sub_app)
    command.name = name
    return command


app = typer.Typer(
    cls=MoxiehookGroup,
    no_args_is_help=True,
    help="Configure, fire, log and replay Moxie-style webhooks.",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"moxiehook {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Optional[Path],
        typer.Option(
            "--config",
            "-c",
            help="Config file (default: $MOXIEHOOK_CONFIG, else ./moxiehook.toml).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Configure, fire, log and replay Moxie-style webhooks."""
    ctx.obj = CliState(config_option=config)


def main() -> None:
    """The console script: ``moxiehook``."""
    sys.stdout = ClosedOutput() if sys.stdout is None else GuardedOutput(sys.stdout)  # type: ignore[assignment]
    if sys.stderr is None:  # started with stderr closed: errors are lost, exit codes are not
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    app(prog_name="moxiehook")
