"""``listen`` as a real process, driven by a real ``fire``."""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from moxiehook.cli.listen_cmds import TEXT_PREVIEW_CHARS, print_request
from moxiehook.receive.server import CheckResult, ReceivedRequest
from tests.conftest import run_moxiehook

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
STARTUP = re.compile(r"listening on http://127\.0\.0\.1:(\d+) \(answers (\d+)\) — Ctrl-C to stop")


@dataclass
class Listener:
    process: subprocess.Popen[str]
    port: int
    stderr_lines: queue.Queue[str]
    readers: list[threading.Thread]
    stdout_chunks: list[str]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str, str]:
        """Send ``sig`` (Ctrl-C by default): exit code, stdout, the rest of stderr."""
        self.process.send_signal(sig)
        code = self.process.wait(timeout=10)
        for reader in self.readers:  # both pipes reach EOF once the process is gone
            reader.join(timeout=10)
        return code, "".join(self.stdout_chunks), _drain(self.stderr_lines)


def _drain(lines: queue.Queue[str]) -> str:
    out = []
    while not lines.empty():
        out.append(lines.get_nowait())
    return "".join(out)


@pytest.fixture
def listen(tmp_path: Path) -> Iterator:
    """Start ``moxiehook listen --port 0 …`` and wait (bounded) for its startup line."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> Listener:
        process = subprocess.Popen(
            [sys.executable, "-m", "moxiehook", "listen", "--port", "0", *args],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        started.append(process)
        # Threads read both pipes so the waits below stay bounded and nothing blocks.
        lines: queue.Queue[str] = queue.Queue()
        chunks: list[str] = []
        readers = [
            threading.Thread(target=lambda: [lines.put(line) for line in process.stderr], daemon=True),
            threading.Thread(target=lambda: chunks.extend(process.stdout), daemon=True),
        ]
        for reader in readers:
            reader.start()
        try:
            first = lines.get(timeout=20)
        except queue.Empty:
            pytest.fail("listen printed no startup line within 20 s")
        match = STARTUP.fullmatch(first.strip())
        assert match, f"unexpected startup line: {first!r}"
        return Listener(process, int(match.group(1)), lines, readers, chunks)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def write_config(path: Path, endpoints: dict[str, str]) -> Path:
    """A config whose endpoints (name -> TOML lines) all map ClientCreate somewhere."""
    text = 'version = 1\n\n[settings]\nlog_file = "log.jsonl"\ntimeout = 5.0\nmax_attempts = 1\nbackoff = 0.01\n'
    for name, body in endpoints.items():
        text += f"\n[endpoints.{name}]\n{body}\n"
    path.write_text(text)
    return path


def mapped(url: str) -> str:
    return f'[[endpoints.NAME.mappings]]\nevent = "ClientCreate"\nurl = "{url}"'


def endpoint_block(name: str, auth: str, url: str, extra: str = "") -> str:
    return f"auth = {auth}\n{extra}\n" + mapped(url).replace("NAME", name)


def test_fire_at_listen_gets_204_for_the_right_token_and_401_disables_the_wrong_one(
    listen, tmp_path: Path
) -> None:
    listener = listen("--auth", "bearer", "--token", "right-token", "--save", "saved.jsonl")
    config = write_config(tmp_path / "moxiehook.toml", {
        "good": endpoint_block("good", '{ type = "bearer", token = "right-token" }', listener.url("/good")),
        "bad": endpoint_block("bad", '{ type = "bearer", token = "wrong-token" }', listener.url("/bad")),
    })

    fired = run_moxiehook("--config", str(config), "fire", "ClientCreate", cwd=tmp_path)

    assert fired.returncode == 1, fired.stderr  # a delivery failed and an endpoint was disabled
    assert "endpoint 'bad' was disabled: HTTP 401" in fired.stderr
    endpoints = tomllib.loads(config.read_text())["endpoints"]
    assert endpoints["good"]["enabled"] is True
    assert endpoints["bad"]["enabled"] is False
    assert "401" in endpoints["bad"]["disabled_reason"]

    code, stdout, stderr = listener.stop()
    assert code == 0
    assert stderr.strip() == "checking bearer auth: a mismatch is answered 401\nstopped"
    assert re.search(r"POST /good  → 204\n  event ClientCreate · origin withmoxie.com · auth ✓", stdout)
    assert re.search(r"POST /bad  → 401\n  event ClientCreate · origin withmoxie.com · auth ✗", stdout)
    assert "rejected: wrong bearer token" in stdout
    assert '"clientType"' in stdout  # the pretty-printed body
    assert "right-token" not in stdout and "wrong-token" not in stdout

    saved = [json.loads(line) for line in (tmp_path / "saved.jsonl").read_text().splitlines()]
    assert sorted((s["path"], s["status"], s["auth_ok"]) for s in saved) == [
        ("/bad", 401, False), ("/good", 204, True)]
    assert all(s["headers"]["X-Event-Type"] == "ClientCreate" and s["body"]["clientType"] for s in saved)


def test_listen_endpoint_checks_auth_and_signature_as_configured(listen, tmp_path: Path) -> None:
    config = tmp_path / "moxiehook.toml"
    secret_line = 'signing_secret = "${LISTEN_SECRET}"'
    write_config(config, {"crm": endpoint_block("crm", '{ type = "custom", header = "X-Key", value = "k" }',
                                                "http://127.0.0.1:9/unused", secret_line)})
    os.environ["LISTEN_SECRET"] = SECRET  # the child processes inherit it
    try:
        listener = listen("--endpoint", "crm")
        text = config.read_text().replace("http://127.0.0.1:9/unused", listener.url("/crm"))
        config.write_text(text)
        fired = run_moxiehook("--config", str(config), "fire", "ClientCreate", cwd=tmp_path)
    finally:
        del os.environ["LISTEN_SECRET"]
    assert fired.returncode == 0, fired.stderr
    code, stdout, stderr = listener.stop()
    assert code == 0
    assert "checking custom auth and Standard Webhooks signature" in stderr
    assert "POST /crm  → 204" in stdout
    assert "auth ✓ · signature ✓" in stdout


def test_listen_endpoint_with_a_missing_variable_exits_2_before_listening(tmp_path: Path) -> None:
    config = write_config(tmp_path / "moxiehook.toml", {
        "crm": endpoint_block("crm", '{ type = "bearer", token = "${NOT_SET_ANYWHERE}" }', "http://127.0.0.1:9/x")})
    result = run_moxiehook("--config", str(config), "listen", "--port", "0", "--endpoint", "crm",
                           cwd=tmp_path, timeout=20)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: environment variable NOT_SET_ANYWHERE is not set (used in endpoints.crm.auth.token)")  # as fire says
    assert "listening" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--endpoint", "crm", "--auth", "bearer", "--token", "t"], "error: use either --endpoint or --auth"),
        (["--endpoint", "nope"], "error: unknown endpoint 'nope'"),
        (["--auth", "bearer"], "error: --auth bearer needs --token"),
        (["--auth", "basic", "--username", "u", "--password", "p", "--token", "t"], "error: --token cannot be used"),
        (["--signing-secret", "whsec_%%%"], "error: signing secret: the part after 'whsec_' is not valid base64"),
        (["--signing-secret", "abc"], "error: signing secret: a signing secret starts with 'whsec_'"),
        (["--status", "700"], "error: --status 700"),
    ],
)
def test_bad_options_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    config = write_config(tmp_path / "moxiehook.toml", {
        "crm": endpoint_block("crm", '{ type = "bearer", token = "t" }', "http://127.0.0.1:9/x")})
    result = run_moxiehook("--config", str(config), "listen", "--port", "0", *args, cwd=tmp_path, timeout=20)
    assert result.returncode == 2
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_a_port_in_use_exits_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_moxiehook("listen", "--port", str(port), cwd=tmp_path, timeout=20)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"


def test_sigterm_also_stops_it_cleanly(listen) -> None:
    listener = listen("--status", "202")
    code, stdout, stderr = listener.stop(signal.SIGTERM)
    assert (code, stdout, stderr) == (0, "", "stopped\n")


def _request(body: bytes) -> ReceivedRequest:
    return ReceivedRequest(at="2026-11-28T14:00:00.000Z", method="POST", path="/raw",
                           headers=(("X-Event-Type", "Custom"),), body=body,
                           check=CheckResult(ok=True), status=204)


def test_a_long_text_body_is_truncated(capsys: pytest.CaptureFixture[str]) -> None:
    print_request(_request(b"x" * (TEXT_PREVIEW_CHARS + 500)))
    out = capsys.readouterr().out
    assert f"… ({TEXT_PREVIEW_CHARS + 500} bytes in all)" in out
    assert "x" * (TEXT_PREVIEW_CHARS + 1) not in out.replace("\n", "")
    assert "auth not checked" in out


def test_an_empty_body_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    print_request(_request(b""))
    assert "(empty body)" in capsys.readouterr().out
