"""``ui``: the inspector over the delivery log, and the options ``listen --ui`` shares with it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from moxiehook.cli.help import Command
from moxiehook.cli.render import info, warn
from moxiehook.cli.state import CliState, state
from moxiehook.config import Config, Settings, load_config
from moxiehook.errors import UsageError

if TYPE_CHECKING:
    from moxiehook.inspect import RunningInspector
    from moxiehook.receive import Forwarder, ReceiverConfig

ui_app = typer.Typer(add_completion=False)

DEFAULT_UI_PORT = 8788


def config_loader(cli_state: CliState) -> tuple[Path, Callable[[], Config]]:
    """The config path and a function reading the config afresh (defaults when there is no file).

    Each replay from the page reads it again, so it uses the endpoint's current auth and headers,
    as ``replay`` does.
    """
    path = cli_state.config_path

    def load() -> Config:
        return load_config(path) if path.exists() else Config(settings=Settings())

    return path, load


def check_ui_host(host: str, allow_remote: bool, option: str) -> None:
    """Loopback unless said otherwise: the page can resend webhooks with the config's credentials."""
    from moxiehook.inspect import is_loopback

    if is_loopback(host):
        return
    if not allow_remote:
        raise UsageError(f"{option} {host}: the inspector can resend webhooks with your endpoints' credentials, "
                         f"so it binds loopback only; add --allow-remote-ui to serve it on {host} anyway")
    warn(f"the inspector is served on {host}: anyone who can reach it and load its page can resend webhooks; "
         "its requests must still name that address (Host) and carry the page's token")


def announce(url: str) -> None:
    info(f"inspector on {url}")


@ui_app.command("ui", cls=Command)
def ui(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", help="Port of the inspector (0 picks a free one).")] = DEFAULT_UI_PORT,
    host: Annotated[str, typer.Option("--host", help="Address to serve on (loopback unless --allow-remote-ui).")]
        = "127.0.0.1",
    allow_remote_ui: Annotated[
        bool, typer.Option("--allow-remote-ui", help="Allow a non-loopback --host (warned about).")
    ] = False,
) -> None:
    """Open the inspector over the delivery log: every logged delivery, live, in a browser.

    Shows the last 1,000 records and follows the log while it runs; replay and
    edit-and-replay resend through the same code as `replay`.
    """
    from moxiehook.inspect import InspectorConfig, ReplayTarget, start_inspector

    check_ui_host(host, allow_remote_ui, "--host")
    config_path, load = config_loader(state(ctx))
    config = load()
    target = ReplayTarget(config_path=config_path, load_config=load)
    inspector = start_inspector(InspectorConfig(
        target=target, log_path=config.log_path(config_path), host=host, port=port, history=True, follow=True))
    try:
        announce(inspector.url)
        info(f"showing {config.log_path(config_path)} — Ctrl-C to stop")
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        inspector.stop()
    info("stopped")


def start_listen_ui(cli_state: CliState, receiver: ReceiverConfig, forwarder: Forwarder | None, host: str, port: int,
                    allow_remote: bool) -> RunningInspector:
    """``listen --ui``: the inspector beside the receiver; with ``--forward-to`` it also shows the log's history
    and replays go back to the app."""
    from moxiehook.inspect import InspectorConfig, ReplayTarget, start_inspector

    check_ui_host(host, allow_remote, "--ui-host")
    config_path, load = config_loader(cli_state)
    credential = receiver.check.credential_header()
    hidden = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", *([credential] if credential
                                                                                      else [])})
    if forwarder is not None:
        config = InspectorConfig(target=ReplayTarget(config_path, load, forward_mode=True),
                                 log_path=forwarder.config.log_path, host=host, port=port, history=True,
                                 hidden_headers=hidden)
    else:
        config = InspectorConfig(target=ReplayTarget(config_path, load, can_resend=False), host=host, port=port,
                                 history=False, hidden_headers=hidden)
    inspector = start_inspector(config)
    announce(inspector.url)
    return inspector
