"""``listen``: a local receiver that prints every webhook it gets, or relays it to an app."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, TextIO

import typer

from moxiehook.cli.help import Command, examples
from moxiehook.cli.options import (
    AuthTypeOption,
    HeaderNameOption,
    HeaderValueOption,
    PasswordOption,
    TokenOption,
    UsernameOption,
    build_auth,
)
from moxiehook.cli.render import command, escape_control, info, warn
from moxiehook.cli.state import CliState, state
from moxiehook.errors import UsageError
from moxiehook.receive import (
    DEFAULT_ENDPOINT,
    Check,
    ForwardConfig,
    Forwarder,
    ReceivedRequest,
    ReceiverConfig,
    build_check,
    check_for_endpoint,
    check_forward_url,
    start_receiver,
)

listen_app = typer.Typer(add_completion=False)

# A non-JSON body, or a JSON body too big to pretty-print, is shown up to this many characters.
TEXT_PREVIEW_CHARS = 2000
# JSON bodies up to this size are pretty-printed; a bigger one would hold the printing thread
# for seconds (5 MB took 47 s through Rich), so it is shown as a preview like text.
PRETTY_LIMIT = 64 * 1024
DEFAULT_STATUS = 204


@listen_app.command("listen", cls=Command, epilog=examples(
    "moxiehook listen",
    "moxiehook listen --status 500 --delay 2",
    "moxiehook listen --endpoint crm",
    "moxiehook listen --forward-to http://127.0.0.1:5000",
))
def listen(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (127.0.0.1, ::1 or [::1], 0.0.0.0).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0 picks a free one).")
    ] = 8787,
    status: Annotated[
        int | None, typer.Option("--status", help="HTTP status to answer with (default: 204).", show_default=False)
    ] = None,
    delay: Annotated[
        float | None,
        typer.Option("--delay", help="Seconds to wait before answering (default: 0).", show_default=False),
    ] = None,
    endpoint: Annotated[
        str | None,
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
        str | None,
        typer.Option("--signing-secret",
                     help="Verify Standard Webhooks signatures with this 'whsec_…' secret (or '${VAR}').",
                     show_default=False),
    ] = None,
    save: Annotated[
        Path | None,
        typer.Option("--save", help="Append each request to this file as one JSON line.", show_default=False),
    ] = None,
    forward_to: Annotated[
        str | None,
        typer.Option("--forward-to", metavar="URL", show_default=False,
                     help="Relay each request that passes the checks to URL (path and query appended), "
                          "answer with the app's answer, and log it."),
    ] = None,
    ready_file: Annotated[
        Path | None,
        typer.Option("--ready-file", metavar="PATH", show_default=False,
                     help="Write the listening URL to PATH once the port is bound; removed on exit."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="One line per request.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="With --forward-to: the full block per request, too.")
    ] = False,
    ui: Annotated[bool, typer.Option("--ui", help="Serve the inspector (a web page of what arrives) beside it.")]
        = False,
    ui_port: Annotated[int, typer.Option("--ui-port", help="Port of the inspector (0 picks a free one).")] = 8788,
    ui_host: Annotated[str, typer.Option("--ui-host", help="Address of the inspector (loopback unless "
                                         "--allow-remote-ui).")] = "127.0.0.1",
    allow_remote_ui: Annotated[bool, typer.Option("--allow-remote-ui", help="Allow a non-loopback --ui-host.")]
        = False,
) -> None:
    """Receive webhooks locally and print each one; answer --status (401 when a check fails).

    With --forward-to, relay them to your app instead and log each one, so
    `logs` shows it and `replay ID` resends it once the app is fixed.
    """
    if quiet and verbose:
        raise UsageError("use either --quiet or --verbose, not both")
    if forward_to is not None:
        # Before binding, when the address is known already; a name (localhost) binds ONE of its
        # addresses, so it is compared once bound, below, as is --port 0.
        check_forward_url(forward_to, host if _is_address(host) else None, port)
        for given, name in ((status, "--status"), (delay, "--delay")):
            if given is not None:
                raise UsageError(f"{name} cannot be used with --forward-to: the app's own answer is returned")
    cli_state = state(ctx)
    check = _check_from_options(cli_state, endpoint, signing_secret, auth, username, password, token,
                                header_name, header_value)
    config = ReceiverConfig(host=host, port=port, status=DEFAULT_STATUS if status is None else status,
                            delay=delay or 0.0, check=check, save=save, ready_file=ready_file)
    forwarder = None
    timeout = 0.0
    if forward_to is not None:
        forward = _forward_config(cli_state, forward_to, endpoint)
        timeout = forward.timeout
        # A sender that stalls mid-request longer than the app may take to answer is dropped.
        config = dataclasses.replace(config, read_timeout=max(timeout, 1.0))
        forwarder = Forwarder(forward, check)
    render = _one_line if quiet or (forwarder is not None and not verbose) else _block
    printer = Printer(render, sys.stdout, color=_color_wanted(sys.stdout))
    # Handlers first: a script may stop us as soon as it reads the startup line.
    with _stop_on_signals():
        inspector = None
        try:
            if ui:  # the inspector beside the receiver: see moxiehook.inspect
                from moxiehook.cli.ui_cmds import start_listen_ui

                inspector = start_listen_ui(cli_state, config, forwarder, ui_host, ui_port, allow_remote_ui)
            running = start_receiver(config, on_request=printer if inspector is None else inspector.chain(printer),
                                     relay=forwarder)
        except BaseException:
            if inspector is not None:
                inspector.stop()
            if forwarder is not None:
                forwarder.close()
            printer.close()
            raise
        try:
            if inspector is not None:
                inspector.set_receiver_url(running.url)
            if forwarder is not None and forward_to is not None:
                try:  # again with the address bound (--port 0, --host localhost): known only now
                    check_forward_url(forward_to, str(running.host), running.port)
                except UsageError:
                    running.stop()
                    forwarder.close()
                    printer.close()
                    raise
                info(f"listening on {running.url}, forwarding to {forward_to} — Ctrl-C to stop")
                info(f"each forward is logged to {forwarder.config.log_path} "
                     f"(endpoint '{forwarder.config.endpoint}'); `{command('logs')}` shows them")
            else:
                info(f"listening on {running.url} (answers {config.status}) — Ctrl-C to stop")
            if check.active:
                info(f"checking {check.describe()}: a mismatch is answered 401")
            # The server runs in its own threads until Ctrl-C or SIGTERM. Waited for in steps: a
            # signal the kernel hands to one of the server's threads runs its handler only when
            # the main thread next runs Python, which one endless wait would never do.
            never = threading.Event()
            while not never.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            with _signals_ignored():  # a second Ctrl-C must not cut the forwards we are finishing
                finished = running.stop(grace=timeout + 1.0 if forwarder is not None else 0.0)
                printed = printer.close()
                if inspector is not None:
                    inspector.stop()
    if not finished:
        warn("stopped with forwards still in flight after the timeout; they were cut off")
    if not printed:
        warn(f"stdout took nothing for {Printer.STUCK_S:.0f} s (a pipe nobody reads?): "
             "stopped without printing the last requests")
    info("stopped")


def _forward_config(cli_state: CliState, url: str, endpoint: str | None) -> ForwardConfig:
    """Where forwards are logged and how long the app may take: from the config, if there is one.

    Without a config file the defaults apply and the log is ``moxiehook-log.jsonl``
    beside where the config would be, so ``logs`` and ``replay`` find it.
    """
    from moxiehook.send import verify_setting

    path = cli_state.config_path
    config = cli_state.load() if endpoint is not None else cli_state.load_or_defaults()
    timeout = config.settings.timeout
    verify = config.settings.verify_tls
    owner = "verify_tls"
    if endpoint is not None:
        configured = config.endpoint(endpoint)
        timeout = configured.timeout if configured.timeout is not None else timeout
        if configured.verify_tls is not None:
            verify, owner = configured.verify_tls, f"verify_tls of endpoint {endpoint!r}"
    verify = verify_setting(verify, path, owner)  # a relative bundle is beside the config, as for fire
    return ForwardConfig(url=url, log_path=config.log_path(path), timeout=timeout,
                         endpoint=endpoint or DEFAULT_ENDPOINT, verify=verify)


def _is_address(host: str) -> bool:
    """Whether ``--host`` is an IP address (``127.0.0.1``, ``[::1]``), not a name to resolve."""
    try:
        ipaddress.ip_address(host[1:-1] if host.startswith("[") and host.endswith("]") else host)
    except ValueError:
        return False
    return True


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


@contextmanager
def _signals_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _check_from_options(
    cli_state: CliState, endpoint: str | None, signing_secret: str | None, *auth_options: object
) -> Check:
    """What to check: an endpoint's own settings, or the auth options given."""

    auth_given = any(option is not None for option in auth_options)
    if endpoint is not None and auth_given:
        raise UsageError("use either --endpoint or --auth and its options, not both")
    if endpoint is not None:
        configured = cli_state.load().endpoint(endpoint)
        if signing_secret is not None:  # an explicit secret wins over the endpoint's
            return build_check(configured.auth, signing_secret)
        return check_for_endpoint(configured)
    auth = build_auth(*auth_options) if auth_given else None  # type: ignore[arg-type]
    return build_check(auth, signing_secret)


# ---------------------------------------------------------------------------
# printing: one thread writes, request threads only hand requests over


class Printer:
    """The ``on_request`` of ``listen``: queue each request for the one thread that prints.

    A request thread never renders or writes, so a slow terminal or a big body
    cannot hold an answer back. The queue is bounded (requests and body bytes):
    a sender faster than the terminal for long enough is slowed down, rather
    than the process growing without end. Lines are written in batches and
    flushed whenever the queue runs dry. A request thread wakes the printer only
    when the queue was empty, and the printer rests ``PAUSE_S`` after each batch:
    a person sees no delay, and a flood costs at most a hundred wake-ups (and
    writes) a second instead of one per request, each taken from the threads
    answering the senders.
    """

    MAX_QUEUED = 10_000
    MAX_QUEUED_BYTES = 64 * 1024 * 1024
    PAUSE_S = 0.01
    # At exit, a write that has not returned for this long is stuck (a pipe nobody reads): given up.
    STUCK_S = 3.0

    def __init__(self, render: Callable[[ReceivedRequest, bool], str], out: TextIO, color: bool = False) -> None:
        self._render = render
        self._out = out
        self._color = color
        self._queue: deque[ReceivedRequest] = deque()
        self._bytes = 0
        self._closed = False
        self._broken = False
        self._warned: set[str] = set()
        self._writing_since: float | None = None  # time.monotonic() of the write under way
        # Written to the file descriptor itself when there is one: a write blocked on a pipe nobody
        # reads then holds none of the stream's locks or buffered text, so the interpreter's own
        # flush of stdout at exit finds nothing to write and the process can end.
        self._fd = _fileno(out)
        if self._fd is not None:
            out.flush()
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="moxiehook-printer", daemon=True)
        self._thread.start()

    def __call__(self, request: ReceivedRequest) -> None:
        size = len(request.body)
        with self._ready:
            self._ready.wait_for(lambda: self._closed or not self._queue or (
                len(self._queue) < self.MAX_QUEUED and self._bytes + size <= self.MAX_QUEUED_BYTES))
            if self._closed:
                return
            self._queue.append(request)
            self._bytes += size
            if len(self._queue) == 1:  # the printer waits only for an empty queue to fill
                self._ready.notify_all()

    def _run(self) -> None:
        while True:
            with self._ready:
                self._ready.wait_for(lambda: self._queue or self._closed)
                batch = list(self._queue)
                self._queue.clear()
                self._bytes = 0
                self._ready.notify_all()
                if not batch and self._closed:
                    return
            self._print(batch)
            if not self._closed:
                time.sleep(self.PAUSE_S)

    def _print(self, batch: list[ReceivedRequest]) -> None:
        for request in batch:
            for problem in request.problems:
                if problem not in self._warned:  # once each: a full disk would repeat on every request
                    self._warned.add(problem)
                    warn(f"{problem} (the request was still answered)")
        if self._broken:
            return
        text = "".join(self._render(request, self._color) for request in batch)
        self._writing_since = time.monotonic()
        try:
            if self._fd is None:
                self._out.write(text)
                self._out.flush()
            else:
                data = memoryview(text.encode(self._out.encoding or "utf-8", "replace"))
                while data:
                    data = data[os.write(self._fd, data):]
        except (OSError, ValueError) as exc:  # stdout closed or full: keep answering, stop printing
            self._broken = True
            warn(f"cannot print received requests any more ({getattr(exc, 'strerror', None) or exc}); "
                 "still answering them")
        finally:
            self._writing_since = None

    def close(self) -> bool:
        """Print what is queued, then stop the thread; True when all of it was printed.

        Bounded: while the printer makes progress it is waited for, but a write that has not
        returned for ``STUCK_S`` (stdout a pipe nobody reads) is given up, so that stopping
        never hangs on the terminal.
        """
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        while self._thread.is_alive():
            self._thread.join(0.1)
            since = self._writing_since
            if since is not None and time.monotonic() - since > self.STUCK_S:
                return False
        return True


def _fileno(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is both of the first two
        return None


def _color_wanted(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def _paint(text: str, style: str, color: bool) -> str:
    return f"\x1b[{style}m{text}\x1b[0m" if color else text


_GREEN, _RED, _DIM, _BOLD, _CYAN, _BOLD_RED = "32", "31", "2", "1", "36", "1;31"


def _clock(request: ReceivedRequest) -> str:
    """``HH:MM:SS.mmm`` in local time from the request's ISO time (``2026-…T14:00:00.123Z``)."""
    return _local_second(request.at[:19]) + request.at[19:23]


@lru_cache(maxsize=8)
def _local_second(utc: str) -> str:
    """``HH:MM:SS`` in local time of a UTC ``YYYY-MM-DDTHH:MM:SS``: requests in one second share it."""
    return datetime.fromisoformat(utc + "+00:00").astimezone().strftime("%H:%M:%S")


def _status_part(request: ReceivedRequest, color: bool) -> str:
    """``→ 204``, or for a forward ``→ app 500 in 12 ms`` / ``→ 502 app unreachable: …``."""
    forwarded = request.forwarded
    if forwarded is None:
        return _paint(f"→ {request.status}", _GREEN if request.status < 300 else _RED, color)
    if not forwarded.sent:
        return _paint(f"→ {request.status} not forwarded: {escape_control(forwarded.error or '')}", _RED, color)
    if forwarded.app_status is None:
        return _paint(f"→ {request.status} (app: {escape_control(forwarded.error or 'no answer')}) "
                      f"in {forwarded.duration_ms:.0f} ms", _BOLD_RED, color)
    return _paint(f"→ app {forwarded.app_status} in {forwarded.duration_ms:.0f} ms",
                  _GREEN if forwarded.app_status < 300 else _RED, color)


def _one_line(request: ReceivedRequest, color: bool) -> str:
    """``14:00:00.123  POST /hooks  ClientCreate  → app 500 in 12 ms``."""
    event = escape_control(request.header("X-Event-Type") or "-")
    line = (f"{_paint(_clock(request), _DIM, color)}  {request.method} {escape_control(request.path)}  "
            f"{_paint(event, _CYAN, color)}  {_status_part(request, color)}")
    if request.check.reason:
        line += _paint(f"  rejected: {escape_control(request.check.reason)}", _RED, color)
    return line + "\n"


def _block(request: ReceivedRequest, color: bool) -> str:
    """One readable block per request: what came, whether it passed, the body."""
    lines = [f"{_paint(_clock(request), _DIM, color)}  "
             f"{_paint(f'{request.method} {escape_control(request.path)}', _BOLD, color)}  "
             f"{_status_part(request, color)}"]
    details = (f"  {_paint('event ' + escape_control(request.header('X-Event-Type') or '-'), _CYAN, color)}"
               f" · origin {escape_control(request.header('X-Event-Origin') or '-')}"
               f" · {_verdict('auth', request.check.auth_ok, _auth_seen(request), color)}")
    if request.check.signature_ok is not None:
        details += f" · {_verdict('signature', request.check.signature_ok, '', color)}"
    lines.append(details)
    if request.check.reason:
        lines.append(_paint(f"  rejected: {escape_control(request.check.reason)}", _RED, color))
    if request.forwarded is not None and request.forwarded.sent:
        lines.append(f"  forwarded to {escape_control(request.forwarded.url)}")
    lines.append(_body_text(request, color))
    return "\n".join(lines) + "\n\n"  # a blank line between requests


def _verdict(label: str, ok: bool | None, unchecked: str, color: bool) -> str:
    if ok is None:
        return _paint(f"{label} not checked{unchecked}", _DIM, color)
    return _paint(f"{label} ✓", _GREEN, color) if ok else _paint(f"{label} ✗", _BOLD_RED, color)


def _auth_seen(request: ReceivedRequest) -> str:
    """The kind of credential that came, never its value: ' (Bearer)'."""
    header = request.header("Authorization")
    return f" ({escape_control(header.split(' ', 1)[0])})" if header else ""


def _body_text(request: ReceivedRequest, color: bool) -> str:
    """The body: JSON pretty-printed when small enough, else the start of it as text."""
    if not request.body:
        return _paint("  (empty body)", _DIM, color)
    if len(request.body) <= PRETTY_LIMIT:
        is_json, value = request.json_body()
        if is_json:
            return escape_control(json.dumps(value, indent=2, ensure_ascii=False), keep_newlines=True)
    # At most 4 bytes a character: decoding this much is enough, whatever the body's size.
    text = request.body[: TEXT_PREVIEW_CHARS * 4 + 4].decode("utf-8", "replace")
    if len(text) > TEXT_PREVIEW_CHARS:
        text = f"{text[:TEXT_PREVIEW_CHARS]}… ({len(request.body)} bytes in all)"
    return escape_control(text, keep_newlines=True)


def print_request(request: ReceivedRequest) -> None:
    """One readable block for ``request`` on stdout (what ``listen`` prints by default)."""
    sys.stdout.write(_block(request, False))
