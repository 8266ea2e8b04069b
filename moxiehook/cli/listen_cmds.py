"""``listen``: a local receiver that prints every webhook it gets."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from moxiehook.cli.options import (
    AuthTypeOption,
    HeaderNameOption,
    HeaderValueOption,
    PasswordOption,
    TokenOption,
    UsernameOption,
    build_auth,
)
from moxiehook.cli.render import info, stdout_console
from moxiehook.cli.state import state
from moxiehook.errors import UsageError
from moxiehook.receive import (
    Check,
    ReceivedRequest,
    ReceiverConfig,
    build_check,
    check_for_endpoint,
    start_receiver,
)

if TYPE_CHECKING:
    from rich.text import Text

listen_app = typer.Typer(add_completion=False)

# A non-JSON body is shown up to this many characters: enough to recognise it.
TEXT_PREVIEW_CHARS = 2000


@listen_app.command("listen")
def listen(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0 picks a free one).")] = 8787,
    status: Annotated[int, typer.Option("--status", help="HTTP status to answer with.")] = 204,
    delay: Annotated[float, typer.Option("--delay", help="Seconds to wait before answering.")] = 0.0,
    endpoint: Annotated[
        Optional[str],
        typer.Option("--endpoint", help="Check auth (and signature) exactly as this endpoint sends them.",
                     show_default=False),
    ] = None,
    auth: AuthTypeOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    token: TokenOption = None,
    header_name: HeaderNameOption = None,
    header_value: HeaderValueOption = None,
    signing_secret: Annotated[
        Optional[str],
        typer.Option("--signing-secret",
                     help="Verify Standard Webhooks signatures with this 'whsec_…' secret (or '${VAR}').",
                     show_default=False),
    ] = None,
    save: Annotated[
        Optional[Path],
        typer.Option("--save", help="Append each request to this file as one JSON line.", show_default=False),
    ] = None,
) -> None:
    """Receive webhooks locally and print each one; answer --status (401 when a check fails)."""
    check = _check_from_options(ctx, endpoint, signing_secret, auth, username, password, token,
                                header_name, header_value)
    config = ReceiverConfig(host=host, port=port, status=status, delay=delay, check=check, save=save)
    # Handlers first: a script may stop us as soon as it reads the startup line.
    with _stop_on_signals():
        running = start_receiver(config, on_request=print_request)
        try:
            info(f"listening on {running.url} (answers {status}) — Ctrl-C to stop")
            if check.active:
                info(f"checking {check.describe()}: a mismatch is answered 401")
            threading.Event().wait()  # the server runs in its own thread until Ctrl-C
        except KeyboardInterrupt:
            pass
        finally:
            running.stop()
    info("stopped")


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into KeyboardInterrupt while serving.

    A shell starts a background job (``moxiehook listen &``) with SIGINT
    ignored, and scripts stop it with ``kill``: both must end it cleanly.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _check_from_options(
    ctx: typer.Context, endpoint: str | None, signing_secret: str | None, *auth_options: object
) -> Check:
    """What to check: an endpoint's own settings, or the auth options given."""

    auth_given = any(option is not None for option in auth_options)
    if endpoint is not None and auth_given:
        raise UsageError("use either --endpoint or --auth and its options, not both")
    if endpoint is not None:
        configured = state(ctx).load().endpoint(endpoint)
        if signing_secret is not None:  # an explicit secret wins over the endpoint's
            return build_check(configured.auth, signing_secret)
        return check_for_endpoint(configured)
    auth = build_auth(*auth_options) if auth_given else None  # type: ignore[arg-type]
    return build_check(auth, signing_secret)


def print_request(request: ReceivedRequest) -> None:
    """One readable block per request on stdout."""
    from rich.text import Text

    console = stdout_console()
    when = datetime.fromisoformat(request.at.replace("Z", "+00:00")).astimezone()
    title = Text()
    title.append(when.strftime("%H:%M:%S.%f")[:-3], style="dim")
    title.append(f"  {request.method} {request.path}  ", style="bold")
    title.append(f"→ {request.status}", style="green" if request.status < 300 else "red")
    console.print(title)
    details = Text("  ")
    details.append(f"event {request.header('X-Event-Type') or '-'}", style="cyan")
    details.append(f" · origin {request.header('X-Event-Origin') or '-'}")
    details.append(" · ")
    details.append_text(_verdict("auth", request.check.auth_ok, _auth_seen(request)))
    if request.check.signature_ok is not None:
        details.append(" · ")
        details.append_text(_verdict("signature", request.check.signature_ok, ""))
    console.print(details)
    if request.check.reason:
        console.print(Text(f"  rejected: {request.check.reason}", style="red"))
    _print_body(request)


def _verdict(label: str, ok: bool | None, unchecked: str) -> Text:
    from rich.text import Text

    if ok is None:
        return Text(f"{label} not checked{unchecked}", style="dim")
    return Text(f"{label} ✓", style="green") if ok else Text(f"{label} ✗", style="bold red")


def _auth_seen(request: ReceivedRequest) -> str:
    """The kind of credential that came, never its value: ' (Bearer)'."""
    header = request.header("Authorization")
    return f" ({header.split(' ', 1)[0]})" if header else ""


def _print_body(request: ReceivedRequest) -> None:
    from rich.json import JSON
    from rich.text import Text

    console = stdout_console()
    is_json, value = request.json_body()
    if not request.body:
        console.print(Text("  (empty body)", style="dim"))
    elif is_json:
        console.print(JSON.from_data(value, indent=2, ensure_ascii=False))
    else:
        text = str(value)
        if len(text) > TEXT_PREVIEW_CHARS:
            text = f"{text[:TEXT_PREVIEW_CHARS]}… ({len(request.body)} bytes in all)"
        console.print(Text(text))
    console.print()  # a blank line between requests
