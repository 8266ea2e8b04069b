"""``listen --forward-to``: a real listen process relaying to a real app, driven by a real ``fire``.

The apps are the loopback test receiver (``conftest.Receiver``) and a small Flask app served by
werkzeug on 127.0.0.1, both in this process; listen, fire and replay are separate processes.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from moxiehook.send import verify
from tests.conftest import Answer, Receiver, run_moxiehook

SECRET = "whsec_" + base64.b64encode(b"f" * 32).decode()
APP_TOKEN = "app-token-123"


# ---------------------------------------------------------------------------
# the Flask app


@dataclass
class FlaskApp:
    """A receiver as a user would write it: checks a bearer token, may be broken (500)."""

    port: int
    mode: dict[str, Any] = field(default_factory=lambda: {"broken": False, "delay": 0.0})
    received: list[dict[str, Any]] = field(default_factory=list)

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def flask_app() -> Iterator[FlaskApp]:
    from flask import Flask, request
    from werkzeug.serving import make_server

    app = Flask("moxie_receiver")
    holder: dict[str, FlaskApp] = {}
    lock = threading.Lock()

    @app.post("/hooks/<path:name>")
    def hook(name: str) -> Any:
        state = holder["app"]
        with lock:
            state.received.append({"path": request.full_path.rstrip("?"), "headers": dict(request.headers),
                                   "body": request.get_data()})
        if state.mode["delay"]:
            time.sleep(state.mode["delay"])
        if request.headers.get("Authorization") != f"Bearer {APP_TOKEN}":
            return {"error": "bad token"}, 401
        if state.mode["broken"]:
            return {"error": "KeyError: 'clientType'"}, 500
        return {"ok": True, "event": request.headers.get("X-Event-Type")}, 200

    server = make_server("127.0.0.1", 0, app, threaded=True)
    holder["app"] = FlaskApp(server.server_port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder["app"]
    finally:
        server.shutdown()
        thread.join(timeout=10)


# ---------------------------------------------------------------------------
# listen --forward-to as a real process


@dataclass
class Relay:
    process: subprocess.Popen[str]
    url: str
    ready_file: Path
    stdout: list[str]
    stderr: list[str]
    readers: list[threading.Thread]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str, str]:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=30)
        for reader in self.readers:
            reader.join(timeout=10)
        return code, "".join(self.stdout), "".join(self.stderr)


@pytest.fixture
def relay(tmp_path: Path) -> Iterator:
    """Start ``moxiehook --config moxiehook.toml listen --port 0 --forward-to URL …``; wait for --ready-file."""
    started: list[subprocess.Popen[str]] = []

    def start(forward_to: str, *args: str, config: Path | None = None) -> Relay:
        ready = tmp_path / f"ready-{len(started)}"
        argv = [sys.executable, "-m", "moxiehook"]
        if config is not None:
            argv += ["--config", str(config)]
        argv += ["listen", "--port", "0", "--forward-to", forward_to, "--ready-file", str(ready), *args]
        process = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
        started.append(process)
        out: list[str] = []
        err: list[str] = []
        readers = [threading.Thread(target=lambda: out.extend(process.stdout), daemon=True),  # type: ignore[arg-type]
                   threading.Thread(target=lambda: err.extend(process.stderr), daemon=True)]  # type: ignore[arg-type]
        for reader in readers:
            reader.start()
        for _ in range(400):  # bounded: 20 s
            if ready.exists() or process.poll() is not None:
                break
            time.sleep(0.05)
        if not ready.exists():
            process.kill()
            process.wait(timeout=10)
            pytest.fail(f"listen never wrote its ready file: {''.join(err)}")
        return Relay(process, ready.read_text().strip(), ready, out, err, readers)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def write_config(path: Path, url: str, auth: str = f'{{ type = "bearer", token = "{APP_TOKEN}" }}',
                 extra: str = "", timeout: float = 5.0) -> Path:
    path.write_text(
        f'version = 1\n\n[settings]\nlog_file = "log.jsonl"\ntimeout = {timeout}\nmax_attempts = 1\n'
        f'backoff = 0.01\n\n[endpoints.crm]\nauth = {auth}\n{extra}\n'
        f'[[endpoints.crm.mappings]]\nevent = "ClientCreate"\nurl = "{url}"\n'
    )
    return path


def log_records(tmp_path: Path, mode: str | None = None) -> list[dict[str, Any]]:
    path = tmp_path / "log.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [r for r in records if r.get("kind") == "delivery" and (mode is None or r["mode"] == mode)]


def post(url: str, path: str, body: bytes, headers: dict[str, str] | None = None,
         timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------
# tests


def test_headers_and_body_arrive_unchanged_and_the_apps_answer_comes_back(relay, receiver: Receiver,
                                                                           tmp_path: Path) -> None:
    receiver.answer("/hooks/clients?source=moxie&x=%20y", Answer(status=202, body=b'{"queued": 1}',
                                             headers={"X-App": "yes", "Content-Type": "application/json"}))
    config = write_config(tmp_path / "moxiehook.toml", "http://127.0.0.1:9/unused",
                          extra=f'headers = {{ "X-Team" = "ops" }}\nsigning_secret = "{SECRET}"')
    listener = relay(receiver.url(""), "--endpoint", "crm", config=config)
    config.write_text(config.read_text().replace("http://127.0.0.1:9/unused",
                                                 f"{listener.url}/hooks/clients?source=moxie&x=%20y"))
    fired = run_moxiehook("--config", str(config), "fire", "ClientCreate", cwd=tmp_path)
    assert fired.returncode == 0, fired.stderr

    [got] = receiver.requests
    assert got.path == "/hooks/clients?source=moxie&x=%20y"
    fire_record, = log_records(tmp_path, "fire")
    forward_record, = log_records(tmp_path, "forward")
    assert got.body == json.dumps(fire_record["request"]["body"], ensure_ascii=False,
                                  separators=(",", ":")).encode()
    assert got.headers["authorization"] == f"Bearer {APP_TOKEN}"
    for name, value in fire_record["request"]["headers"].items():
        if name != "Authorization":
            assert got.headers[name.lower()] == value, name
    assert got.headers["host"] == f"127.0.0.1:{receiver.port}"  # rewritten for the app
    assert "connection" not in got.headers or got.headers["connection"] == "keep-alive"
    verify(base64.b64decode(SECRET.removeprefix("whsec_")), got.headers, got.body)  # still verifies

    # fire saw the app's own answer
    assert fire_record["status"] == 202
    assert fire_record["response"]["headers"]["x-app"] == "yes"
    assert fire_record["response"]["body"] == '{"queued": 1}'
    # and the relay logged it as a delivery of endpoint crm, credentials masked
    assert forward_record["endpoint"] == "crm" and forward_record["event"] == "ClientCreate"
    assert forward_record["outcome"] == "delivered" and forward_record["status"] == 202
    assert forward_record["url"] == f"{receiver.url('')}/hooks/clients?source=moxie&x=%20y"
    assert forward_record["request"]["headers"]["Authorization"] == "***"
    assert forward_record["request"]["body"] == fire_record["request"]["body"]
    assert forward_record["event_id"] == fire_record["event_id"]  # the webhook-id it came with
    assert APP_TOKEN not in (tmp_path / "log.jsonl").read_text()

    code, stdout, stderr = listener.stop()
    assert code == 0, stderr
    assert stdout.count("\n") == 1
    assert "POST /hooks/clients?source=moxie&x=%20y  ClientCreate  → app 202 in " in stdout
    assert not listener.ready_file.exists()


def test_the_apps_401_reaches_fire_and_disables_the_endpoint(relay, flask_app: FlaskApp, tmp_path: Path) -> None:
    config = write_config(tmp_path / "moxiehook.toml", "http://127.0.0.1:9/unused",
                          auth='{ type = "bearer", token = "stale-token" }')
    listener = relay(flask_app.url(), config=config)
    config.write_text(config.read_text().replace("http://127.0.0.1:9/unused", f"{listener.url}/hooks/clients"))
    fired = run_moxiehook("--config", str(config), "fire", "ClientCreate", cwd=tmp_path)
    assert fired.returncode == 1
    assert "endpoint 'crm' was disabled: HTTP 401 Unauthorized" in fired.stderr
    assert tomllib.loads(config.read_text())["endpoints"]["crm"]["enabled"] is False
    forward_record, = log_records(tmp_path, "forward")
    assert (forward_record["outcome"], forward_record["status"]) == ("failed", 401)
    assert forward_record["endpoint"] == "listen"
    assert forward_record["request"]["headers"]["Authorization"] == "***"
    assert "stale-token" not in (tmp_path / "log.jsonl").read_text()
    code, stdout, _ = listener.stop()
    assert code == 0
    assert "ClientCreate  → app 401 in " in stdout


def test_a_500_is_logged_failed_and_replay_into_the_fixed_app_delivers_it(relay, flask_app: FlaskApp,
                                                                          tmp_path: Path) -> None:
    flask_app.mode["broken"] = True
    config = write_config(tmp_path / "moxiehook.toml", "http://127.0.0.1:9/unused")
    listener = relay(flask_app.url(), "--endpoint", "crm", "--verbose", config=config)
    config.write_text(config.read_text().replace("http://127.0.0.1:9/unused", f"{listener.url}/hooks/clients"))
    fired = run_moxiehook("--config", str(config), "fire", "ClientCreate", cwd=tmp_path)
    assert fired.returncode == 1
    code, stdout, _ = listener.stop()
    assert code == 0
    assert "→ app 500 in " in stdout
    assert "forwarded to " in stdout and '"clientType"' in stdout  # --verbose: the full block too
    forward_record, = log_records(tmp_path, "forward")
    assert (forward_record["outcome"], forward_record["status"]) == ("failed", 500)
    assert forward_record["error"] == "HTTP 500 Internal Server Error"
    assert "KeyError" in forward_record["response"]["body"]

    shown = run_moxiehook("--config", str(config), "logs", "show", forward_record["id"], "--json", cwd=tmp_path)
    assert shown.returncode == 0 and json.loads(shown.stdout)["mode"] == "forward"

    flask_app.mode["broken"] = False  # the bug is fixed
    replayed = run_moxiehook("--config", str(config), "replay", forward_record["id"], cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    replay_record = log_records(tmp_path, "replay")[-1]
    assert replay_record["outcome"] == "delivered" and replay_record["replay_of"] == forward_record["id"]
    last = flask_app.received[-1]
    assert last["headers"]["Authorization"] == f"Bearer {APP_TOKEN}"  # added back from crm's auth
    assert json.loads(last["body"]) == forward_record["request"]["body"]
    assert last["path"] == "/hooks/clients"


def test_replaying_a_delivery_relayed_without_endpoint_warns_and_sends_no_auth(
        relay, receiver: Receiver, tmp_path: Path) -> None:
    config = write_config(tmp_path / "moxiehook.toml", receiver.url("/unused"))
    listener = relay(receiver.url(""), config=config)
    status, _, _ = post(listener.url, "/hooks/x", b'{"id": 1}', {
        "Authorization": "Bearer secret-from-moxie", "X-Event-Type": "ClientCreate",
        "Content-Type": "application/json"})
    assert status == 200
    listener.stop()
    forward_record, = log_records(tmp_path, "forward")
    assert forward_record["endpoint"] == "listen"
    replayed = run_moxiehook("--config", str(config), "replay", forward_record["id"], cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    assert "warning: endpoint 'listen' is not in the config" in replayed.stderr
    assert "without auth or custom headers" in replayed.stderr
    first, again = receiver.requests
    assert first.headers["authorization"] == "Bearer secret-from-moxie"
    assert "authorization" not in again.headers
    assert again.json() == {"id": 1} and again.headers["x-event-type"] == "ClientCreate"


def test_app_down_is_a_502_and_a_failed_record_and_the_relay_keeps_running(relay, tmp_path: Path) -> None:
    listener = relay(f"http://127.0.0.1:{free_port()}", config=write_config(tmp_path / "moxiehook.toml", "http://x"))
    for _ in range(2):
        status, _, body = post(listener.url, "/hooks/x", b"{}", {"X-Event-Type": "ClientCreate"})
        assert status == 502
        assert b"did not answer (connection error: connection refused)" in body
    code, stdout, stderr = listener.stop()
    assert code == 0
    assert "Traceback" not in stderr
    assert stdout.count("→ 502 (app: connection error: connection refused)") == 2
    records = log_records(tmp_path, "forward")
    assert len(records) == 2
    assert all(r["outcome"] == "failed" and r["status"] is None and r["response"] is None
               and r["error"] == "connection error: connection refused" for r in records)


def test_an_app_slower_than_the_timeout_is_a_504(relay, receiver: Receiver, tmp_path: Path) -> None:
    receiver.answer("/slow", Answer(delay=3.0))
    config = write_config(tmp_path / "moxiehook.toml", receiver.url("/x"), timeout=0.5)
    listener = relay(receiver.url(""), config=config)
    status, _, body = post(listener.url, "/slow", b"{}")
    assert status == 504 and b"timeout" in body
    status, _, _ = post(listener.url, "/fast", b"{}")  # a slow path does not stall the others
    assert status == 200
    listener.stop()
    slow, fast = log_records(tmp_path, "forward")
    assert slow["outcome"] == "failed" and slow["error"].startswith("timeout")
    assert fast["outcome"] == "delivered"


def test_a_ready_file_that_cannot_be_written_is_one_error(tmp_path: Path, receiver: Receiver) -> None:
    result = run_moxiehook("listen", "--port", "0", "--forward-to", receiver.url(""),
                           "--ready-file", str(tmp_path / "no" / "such" / "folder"), cwd=tmp_path, timeout=20)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: cannot write --ready-file ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_forward_to_refuses_status_and_a_bad_url(tmp_path: Path) -> None:
    for args, message in (
        (["--forward-to", "http://127.0.0.1:1", "--status", "500"], "error: --status cannot be used with --forward-to"),
        (["--forward-to", "ftp://x"], "error: --forward-to: URL 'ftp://x' must start with http"),
        (["--forward-to", "http://127.0.0.1:1/?a=1"], "error: --forward-to 'http://127.0.0.1:1/?a=1': give a base URL"),
    ):
        result = run_moxiehook("listen", "--port", "0", *args, cwd=tmp_path, timeout=20)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(message), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_ready_file_holds_the_url_while_listening_and_is_gone_after(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    process = subprocess.Popen([sys.executable, "-m", "moxiehook", "listen", "--port", "0", "--ready-file", str(ready)],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(400):
            if ready.exists() or process.poll() is not None:
                break
            time.sleep(0.05)
        url = ready.read_text()
        assert url.startswith("http://127.0.0.1:") and url.endswith("\n")
        status, _, _ = post(url.strip(), "/r", b"{}")
        assert status == 204
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert not ready.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no temporary file left either


def test_ctrl_c_while_forwards_are_in_flight_lets_them_finish(relay, receiver: Receiver, tmp_path: Path) -> None:
    receiver.answer("/slow", Answer(delay=1.5, body=b"done"))
    listener = relay(receiver.url(""), config=write_config(tmp_path / "moxiehook.toml", "http://x"))
    answers: queue.Queue[tuple[int, bytes]] = queue.Queue()

    def send(n: int) -> None:
        status, _, body = post(listener.url, "/slow", json.dumps({"n": n}).encode())
        answers.put((status, body))

    senders = [threading.Thread(target=send, args=(n,)) for n in range(5)]
    for sender in senders:
        sender.start()
    for _ in range(200):  # until the app holds all five (bounded: 10 s)
        if len(receiver.requests) == 5:
            break
        time.sleep(0.05)
    assert len(receiver.requests) == 5
    code, stdout, stderr = listener.stop(signal.SIGINT)
    for sender in senders:
        sender.join(timeout=30)
    assert code == 0, stderr
    got = [answers.get_nowait() for _ in range(5)]
    assert got == [(200, b"done")] * 5
    assert len(log_records(tmp_path, "forward")) == 5
    assert stdout.count("→ app 200 in ") == 5
    assert stderr.strip().endswith("stopped")


SENDERS = Path(__file__).resolve().parents[1] / "bench" / "relay_senders.py"


def soak(relay_url: str, senders: int, threads: int, seconds: float) -> list[tuple[str, int]]:
    """``senders`` processes × ``threads`` keep-alive connections posting unique keys for ``seconds``."""
    host, port = relay_url.removeprefix("http://").rsplit(":", 1)
    processes = [subprocess.Popen([sys.executable, str(SENDERS), host, port, f"p{i}", str(threads), str(seconds)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(senders)]
    results: list[tuple[str, int]] = []
    for process in processes:
        out, err = process.communicate(timeout=seconds + 120)
        assert process.returncode == 0, err
        results += [(key, status) for key, status in json.loads(out)]
    return results


@pytest.mark.slow
def test_200_concurrent_senders_lose_and_duplicate_nothing(relay, receiver: Receiver, tmp_path: Path) -> None:
    """4 processes × 50 connections for 3 s (`bench/run.py relay` runs the same for a minute)."""
    # A generous timeout: on a loaded machine a forward waiting for one of the 64 slots must not
    # become a 504; this test is about nothing lost or twice (the 504 has its own test).
    config = write_config(tmp_path / "moxiehook.toml", "http://x", timeout=120.0)
    listener = relay(receiver.url(""), "--quiet", config=config)
    results = soak(listener.url, senders=4, threads=50, seconds=3.0)
    code, stdout, _ = listener.stop()
    assert code == 0
    keys = [key for key, _ in results]
    assert len(keys) == len(set(keys)) > 200
    assert {status for _, status in results} == {200}
    at_app = [r.json()["key"] for r in receiver.requests]
    assert sorted(at_app) == sorted(keys)  # every request reached the app exactly once
    records = log_records(tmp_path, "forward")
    assert sorted(r["request"]["body"]["key"] for r in records) == sorted(keys)
    assert len({r["id"] for r in records}) == len(records)
    assert stdout.count("\n") == len(keys)
