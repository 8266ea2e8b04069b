"""Shared fixtures: an isolated working folder, a config file, a real loopback receiver.

The receiver is a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 in a thread. Each
test scripts its answers per path (status, headers, body, delay, or a sequence
of answers for retries) and reads back every request it got.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

# Tests write Python modules (apps, locustfiles) into temporary folders, list those folders and
# run them in child processes: no __pycache__ may appear beside them, whatever the environment says.
os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
sys.dont_write_bytecode = True

from moxiehook.cli import app  # noqa: E402 - after the bytecode setting above

BASIC_CONFIG = """\
version = 1

[settings]
log_file = "log.jsonl"
timeout = 2.0
max_attempts = 3
backoff = 0.01
"""


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test runs in its own empty folder with no moxiehook or proxy variables set
    (a proxy in the environment would take the loopback deliveries elsewhere)."""
    for name in list(os.environ):
        if name.startswith("MOXIEHOOK_") or name.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """A minimal valid config (no endpoints) at ``tmp_path/moxiehook.toml``."""
    path = tmp_path / "moxiehook.toml"
    path.write_text(BASIC_CONFIG)
    return path


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(config_path: Path):
    """Run moxiehook in-process through typer's CliRunner: ``cli("endpoint", "list")``."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None, config: Path | None = config_path) -> Result:
        argv = (["--config", str(config)] if config is not None else []) + list(args)
        result = runner.invoke(app, argv, input=input)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Result(result.exit_code, result.stdout, result.stderr)

    return run


def run_moxiehook(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
                  input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run moxiehook as a real process (``python -m moxiehook``)."""
    return subprocess.run(
        [sys.executable, "-m", "moxiehook", *args],
        cwd=cwd, env={**os.environ, **(env or {})}, input=input,
        capture_output=True, text=True, timeout=timeout,
    )


# ---------------------------------------------------------------------------
# the loopback receiver


@dataclass
class Answer:
    """What the receiver answers to one request."""

    status: int = 200
    body: bytes | str = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up early (timeouts, cut reads) are expected here: no stack trace for them.

    The listen backlog is 128, not socketserver's 5: a run opening dozens of
    connections at once would otherwise wait on SYN retransmits (1 s each).
    """

    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Receiver:
    """A real HTTP server on 127.0.0.1 with scripted answers."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._answers: dict[str, list[Answer]] = {}
        self.default = Answer(status=200)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - stdlib naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                answer = receiver._record(self, body)
                if answer.delay:
                    time.sleep(answer.delay)
                payload = answer.body.encode() if isinstance(answer.body, str) else answer.body
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PUT = do_POST  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _record(self, handler: BaseHTTPRequestHandler, body: bytes) -> Answer:
        headers = {name.lower(): value for name, value in handler.headers.items()}
        with self._lock:
            self.requests.append(Received(handler.command, handler.path, headers, body, time.time()))
            queue = self._answers.get(handler.path)
            if queue:
                # The last scripted answer repeats once the others are used up.
                return queue.pop(0) if len(queue) > 1 else queue[0]
            return self.default

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, *answers: Answer) -> None:
        """Script the answers for ``path``, in order; the last one repeats."""
        with self._lock:
            self._answers[path] = list(answers)

    def requests_to(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A running loopback receiver; answers 200 ``ok`` unless scripted otherwise."""
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------------
# bad input: one error line, exit 2, nothing changed


@pytest.fixture
def rejected(cli, config_path: Path):
    """Run a command that must fail as a user error and check it changed nothing.

    ``rejected("endpoint", "add", "x", "--auth", "bearer", match="--token")``
    asserts exit 2, exactly one ``error: …`` line on stderr containing every
    ``match`` fragment, no traceback, and the config (``path``, by default the
    ``config_path`` fixture) byte-for-byte as before. Returns the stderr line.
    """

    def run(*args: str, match: str | tuple[str, ...], path: Path = config_path,
            config: Path | None = None, input: str | None = None) -> str:
        before = path.read_bytes() if path.is_file() else None
        listing = _listing(path.parent)
        result = cli(*args, input=input, config=config or path)
        assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert "Traceback" not in result.stderr
        for fragment in (match,) if isinstance(match, str) else match:
            assert fragment in lines[0], (fragment, lines[0])
        if before is not None:
            assert path.read_bytes() == before
        assert _listing(path.parent) == listing  # no temp file left behind
        return lines[0]

    return run


def _listing(folder: Path) -> list[str] | None:
    """The folder's file names, except lock files (kept on purpose, see store.exclusive_lock)."""
    if not folder.is_dir():
        return None
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))
