"""``demo``: a self-contained tour on this machine.

It starts the ``listen`` receiver in-process on a free loopback port, writes a
config in a temporary folder, and runs the real commands (``fire``,
``endpoint list``, ``logs``) against it, so what the user sees is exactly what
those commands print, warnings included. Nothing outside the temporary folder
is touched and the folder is removed at the end.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

import typer

from moxiehook.cli.help import Command
from moxiehook.cli.render import echo, print_error
from moxiehook.config import Auth, Config, Endpoint, EventMapping, Settings, render_config, write_atomic
from moxiehook.errors import EXIT_FAILED, EXIT_OK
from moxiehook.receive import ReceivedRequest, ReceiverConfig, RunningReceiver, build_check, start_receiver

demo_app = typer.Typer(add_completion=False)

TOKEN = "demo-token"
# (endpoint, token it sends, path on the receiver)
ENDPOINTS = (("shop", TOKEN, "/shop"), ("legacy", "old-token", "/legacy"))
# Each line pastes into a shell as it is (what follows `#` is a comment), in this order.
NEXT_STEPS = """\
Next, with your own receiver:
  export CRM_TOKEN=dev-token                         # the token your receiver expects
  moxiehook init                                     # writes ./moxiehook.toml
  moxiehook endpoint add crm --auth bearer --token '${CRM_TOKEN}'
  moxiehook map add crm ClientCreate http://127.0.0.1:3000/hooks/clients
  CRM_TOKEN=dev-token moxiehook listen --endpoint crm --port 3000   # no server yet? in another terminal
  moxiehook fire ClientCreate"""


@demo_app.command("demo", cls=Command)
def demo() -> None:
    """A tour: a local receiver, a temporary config, fired events, an endpoint disabled by a 401."""
    received: list[ReceivedRequest] = []
    lock = threading.Lock()

    def collect(request: ReceivedRequest) -> None:
        with lock:
            received.append(request)

    with tempfile.TemporaryDirectory(prefix="moxiehook-demo-") as folder:
        check = build_check(Auth(type="bearer", token=TOKEN))
        running = start_receiver(ReceiverConfig(host="127.0.0.1", port=0, check=check), on_request=collect)
        try:
            ok = _tour(Path(folder) / "moxiehook.toml", running, received, lock)
        finally:
            running.stop()
    if not ok:
        print_error("the demo did not go as expected (is something blocking 127.0.0.1?)")
        raise typer.Exit(EXIT_FAILED)
    raise typer.Exit(EXIT_OK)


def _tour(config_path: Path, running: RunningReceiver, received: list[ReceivedRequest],
          lock: threading.Lock) -> bool:
    """Run the steps; True when each one did what the tour says it does."""
    _write_config(config_path, running.url)
    echo("moxiehook demo: a tour on this machine (a temporary folder, removed at the end)")
    _heading(f"a receiver on {running.url} that accepts only 'Authorization: Bearer {TOKEN}'")
    _heading("a config with two endpoints mapped to it: 'shop' (the right token), 'legacy' (an old one)")

    def fire(event: str, note: str) -> tuple[int, list[ReceivedRequest]]:
        _heading(f"moxiehook fire {event}{note}")
        with lock:
            received.clear()
        code = _run(config_path, "fire", event)
        with lock:
            seen = sorted(received, key=lambda r: r.path)
        echo(f"  (exit {code}) the receiver got:")
        width = max((len(request.path) for request in seen), default=0)
        for request in seen:
            verdict = "auth ok" if request.check.ok else request.check.reason
            echo(f"    {request.method} {request.path:<{width}}  → {request.status}  "
                 f"{request.header('X-Event-Type')}, {verdict}")
        return code, seen

    first_code, first = fire("ClientCreate", "")
    second_code, second = fire("DeliverableCreate", "   ('legacy' is disabled now: skipped, but logged)")
    _heading("moxiehook endpoint list")
    listed = _run(config_path, "endpoint", "list")
    _heading("moxiehook logs")
    logged = _run(config_path, "logs")
    echo()
    echo("The first fire exited 1 because a delivery failed: that 401 is the point of this demo.")
    echo(NEXT_STEPS)
    return (
        first_code == EXIT_FAILED and [r.status for r in first] == [401, 204]
        and second_code == EXIT_OK and [r.status for r in second] == [204]
        and listed == EXIT_OK and logged == EXIT_OK
    )


def _write_config(config_path: Path, base_url: str) -> None:
    """The demo config: both endpoints map ClientCreate and DeliverableCreate to the receiver."""
    events = ("ClientCreate", "DeliverableCreate")
    config = Config(
        settings=Settings(log_file="moxiehook-log.jsonl", timeout=5.0),
        endpoints={
            name: Endpoint(
                name=name,
                auth=Auth(type="bearer", token=token),
                mappings=[EventMapping(event=event, url=base_url + path) for event in events],
            )
            for name, token, path in ENDPOINTS
        },
    )
    write_atomic(config_path, render_config(config), secret=True)


def _heading(text: str) -> None:
    echo(f"\n▸ {text}" if text.startswith("moxiehook ") else f"▸ {text}")
    sys.stdout.flush()  # the commands below print on stderr too: keep the order when piped


def _run(config_path: Path, *args: str) -> int:
    """Run a real moxiehook command in this process; its exit code."""
    from moxiehook.cli import app

    command = typer.main.get_command(app)
    code = command.main(["--config", str(config_path), *args], prog_name="moxiehook", standalone_mode=False)
    sys.stdout.flush()
    sys.stderr.flush()
    return int(code or 0)
