"""The command-line layer: the only package that imports typer or rich.

Commands parse options, call one core function, and render its result. Every
``MoxiehookError`` raised below the root group is turned here, in one place,
into an ``error: …`` line on stderr and the error's exit code (0 done, 1 failed, 2 usage or config, 3 nothing sent).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from moxiehook import __version__
from moxiehook.cli.help import Group
from moxiehook.cli.render import ClosedOutput, GuardedOutput, OutputError, app_output_off_stdout, set_config_option
from moxiehook.cli.state import CliState
from moxiehook.errors import EXIT_FAILED, EXIT_USAGE, MoxiehookError

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `git log | head` or `seq 1e9 | head`

# Command name -> (module, attribute holding its typer.Typer). Modules are
# imported only when their command runs, so `endpoint status` never pays for
# building `fire` (or importing what it needs).
__all__ = ["COMMANDS", "app", "main"]

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
    "locustfile": ("moxiehook.cli.locust_cmds", "locustfile_app"),
    "scenario": ("moxiehook.cli.scenario_cmds", "app"),
    "ui": ("moxiehook.cli.ui_cmds", "ui_app"),
}


class MoxiehookGroup(Group):
    """The root group: loads commands lazily and handles moxiehook's own errors."""

    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        return list(COMMANDS)

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:  # type: ignore[override]
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        return _load_command(cmd_name)

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> Any:  # type: ignore[override]
        # The registry is lazy, so typer's own suggestion (made from loaded commands) has nothing
        # to compare with: a mistyped command gets the closest registered name here.
        if args and args[0] not in COMMANDS and not args[0].startswith("-") and not ctx.resilient_parsing:
            from moxiehook.suggest import did_you_mean  # difflib: only on this error's path

            ctx.fail(f"no such command {args[0]!r}{did_you_mean(args[0], COMMANDS, quote=True)}")
        # `endpoint status crm` only needs `status` built: typer's conversion of a command inspects
        # its signature, which is most of a short command's run time.
        if len(args) > 1 and args[0] in COMMANDS and not ctx.resilient_parsing:
            return args[0], _load_command(args[0], subcommand=args[1]), args[1:]
        return super().resolve_command(ctx, args)

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        # The root's own options (`--config`, a typo like `--conifg`) are parsed here.
        try:
            return super().make_context(*args, **kwargs)
        except typer.TyperException as exc:
            _report_click_error(exc)

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            try:
                return super().invoke(ctx)
            finally:
                sys.stdout.flush()  # so that a write error surfaces here, not at interpreter exit
        except typer.TyperException as exc:
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


def _report_click_error(exc: typer.TyperException) -> NoReturn:
    """Show click's usage errors like moxiehook's own: one ``error: …`` line, exit 2.

    Click would print a usage block and a framed panel; one line is what every other error
    gets. Its sentences are made to read like moxiehook's: starting lowercase, no final full
    stop, a suggestion in brackets.
    """
    from moxiehook.cli.render import print_error

    message = _as_moxiehook_message(exc.format_message())
    ctx = getattr(exc, "ctx", None)  # set on usage errors (typer's UsageError)
    if ctx is not None:
        message += f" (see: {ctx.command_path} --help)"
    print_error(message)
    raise typer.Exit(getattr(exc, "exit_code", EXIT_USAGE)) from None


def _as_moxiehook_message(text: str) -> str:
    """``No such command 'shwo'. Did you mean 'show'?`` → ``no such command 'shwo' (did you mean 'show'?)``."""
    message = " ".join(text.split())
    message = re.sub(r"\.? Did you mean (.+)\?$", r" (did you mean \1?)", message)
    message = message.rstrip(".")
    first = message.split(" ", 1)[0]
    if first[:1].isupper() and first[1:].islower():  # "Missing", "Invalid": not "HTTP", not "ClientCreate"
        message = message[0].lower() + message[1:]
    return message


def _load_command(name: str, subcommand: str | None = None) -> Any:
    """Import a command's module and build its click command, when the command is used.

    With ``subcommand`` naming one of a group's commands, the group is built with that
    command alone (help, completion and a mistyped subcommand build it whole).
    """
    module_name, attribute = COMMANDS[name]
    sub_app: typer.Typer = getattr(importlib.import_module(module_name), attribute)
    only = _with_only(sub_app, subcommand) if subcommand is not None else None
    command = typer.main.get_command(only or sub_app)
    command.name = name
    return command


def _with_only(group: typer.Typer, subcommand: str) -> typer.Typer | None:
    """A copy of ``group`` holding its callback and ``subcommand`` alone, or None (no such command,
    or not a group). Made with typer's public registration calls (``Typer()``, ``.callback()``,
    ``.command()``), each given the settings ``group`` recorded for it; moxiehook's groups are
    made with ``add_completion=False``, so the copy is too."""
    chosen = [info for info in group.registered_commands if info.name == subcommand]
    callback = group.registered_callback
    if len(chosen) != 1 or callback is None or callback.callback is None or chosen[0].callback is None:
        return None
    copy = typer.Typer(**_settings(typer.Typer.__init__, group.info), add_completion=False)
    copy.callback(**_settings(typer.Typer.callback, callback))(callback.callback)
    copy.command(**_settings(typer.Typer.command, chosen[0]))(chosen[0].callback)
    return copy


def _settings(register: Any, recorded: object) -> dict[str, Any]:
    """The arguments of a typer registration call, taken from what typer recorded for it."""
    import inspect

    names = [name for name in inspect.signature(register).parameters if name not in ("self", "callback")]
    return {name: getattr(recorded, name) for name in names if hasattr(recorded, name)}


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
        Path | None,
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
    set_config_option(config)


def main() -> None:
    """The console script: ``moxiehook``."""
    sys.stdout = ClosedOutput() if sys.stdout is None else GuardedOutput(sys.stdout)
    if sys.stderr is None:  # started with stderr closed: errors are lost, exit codes are not
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    try:
        app(prog_name="moxiehook")
    except KeyboardInterrupt:  # after the command's own handling, before the exit: still no traceback
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
    finally:
        app_output_off_stdout()  # an --app's late prints (threads, atexit) never follow the results
        _interrupt_ends_the_exit()


def _interrupt_ends_the_exit() -> None:
    """From here on, Ctrl-C ends the process at once with 130.

    The command is over and its output flushed; what is left is the interpreter's exit, which
    joins threads still running (a hook's output copier, an app's own threads) and runs atexit
    handlers. A Ctrl-C there would raise ``KeyboardInterrupt`` inside that machinery, printing a
    traceback and dying of SIGINT instead of exiting 130 as every other Ctrl-C does. Once the
    threads are joined, Ctrl-C is ignored for the last few steps (atexit handlers, finalization),
    which end by themselves.
    """
    import atexit
    import signal

    def exit_now(signum: int, frame: Any) -> None:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os._exit(130)

    with contextlib.suppress(ValueError):  # not the main thread (moxiehook called as a library)
        signal.signal(signal.SIGINT, exit_now)
        # The interpreter's last steps put SIGINT back to its default (death by the signal) unless it
        # is ignored: once the threads are joined (before the atexit handlers run), it is.
        atexit.register(signal.signal, signal.SIGINT, signal.SIG_IGN)
