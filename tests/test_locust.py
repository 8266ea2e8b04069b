"""MoxieUser under real Locust processes, against a real loopback receiver that checks every request.

Locust and gevent are never imported into this test process (gevent monkey-patches the
interpreter): Locust runs as ``python -m locust`` child processes, each bounded by ``--run-time``
and a timeout. The receiver verifies what each delivery claims: the Standard Webhooks signature
(with the ``standardwebhooks`` package), the auth and custom headers, the event type, unique
``webhook-id``s and bodies across users and workers; and the counts it saw are compared with
Locust's own CSV stats, row by event type.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from moxiehook import __version__
from tests.conftest import Answer, Receiver, run_moxiehook
from tests.test_security import self_signed  # noqa: F401, F811 - a fixture: a certificate for 127.0.0.1

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TOKEN = "t0k-locust"
RUN_TIMEOUT = 90  # seconds: a bound on a child process, far above the few seconds a run takes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def locust_env() -> dict[str, str]:
    env = {**os.environ, "LOCUST_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
    for name in list(env):  # Locust reads LOCUST_* settings from the environment: none but ours
        if name.startswith("LOCUST_") and name != "LOCUST_TOKEN":
            del env[name]
    return env


def locust(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "locust", *args], cwd=cwd, env=locust_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        out, err = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"locust did not end within {RUN_TIMEOUT} s:\n{err[-3000:]}")
    return process.returncode, out + err


def stats_rows(prefix: Path) -> dict[str, dict[str, str]]:
    """Locust's ``PREFIX_stats.csv``, one row per request name (our event types).

    Locust rewrites it once a second while running and not at exit: its counts may miss the
    last second, so the counts compared with the receiver's come from ``final_counts``.
    """
    with open(f"{prefix}_stats.csv", newline="") as f:
        return {row["Name"]: row for row in csv.DictReader(f)}


def final_counts(path: Path) -> dict[str, tuple[str, int, int]]:
    """Locust's ``--json-file`` (written at exit): name -> (method, requests, failures)."""
    return {entry["name"]: (entry["method"], entry["num_requests"], entry["num_failures"])
            for entry in json.loads(path.read_text())}


def printed_counts(output: str) -> dict[str, tuple[str, int, int]]:
    """The summary Locust prints at exit: name -> (method, requests, failures)."""
    table = output[output.index("Type     Name"):output.index("Response time percentiles")]
    return {m[1]: ("POST", int(m[2]), int(m[3])) for m in re.finditer(r"^POST\s+(\S+)\s+(\d+)\s+(\d+)\(", table, re.M)}


def failure_rows(prefix: Path) -> list[dict[str, str]]:
    with open(f"{prefix}_failures.csv", newline="") as f:
        return list(csv.DictReader(f))


def check_delivery(request: object, event: str) -> dict[str, object]:
    """Everything a delivery claims, checked as a receiver would; returns the body."""
    headers = request.headers  # type: ignore[attr-defined]
    assert request.method == "POST"  # type: ignore[attr-defined]
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == f"moxiehook/{__version__}"
    assert headers["x-event-origin"] == "withmoxie.com"
    assert headers["x-event-type"] == event
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["x-team"] == "ops"
    assert headers["webhook-id"].startswith("evt_")
    body = Webhook(SECRET).verify(request.body, headers)  # type: ignore[attr-defined]  # raises on a bad signature
    assert isinstance(body, dict) and isinstance(body.get("id"), str)
    return body


def write_config(path: Path, receiver: Receiver, extra: str = "") -> None:
    path.write_text(f"""\
version = 1

[endpoints.crm]
auth = {{ type = "bearer", token = "${{LOCUST_TOKEN}}" }}
headers = {{ "X-Team" = "ops" }}
signing_secret = "{SECRET}"

[[endpoints.crm.mappings]]
event = "ClientCreate"
url = "{receiver.url('/clients-a')}"

[[endpoints.crm.mappings]]
event = "ClientCreate"
url = "{receiver.url('/clients-b')}"

[[endpoints.crm.mappings]]
event = "InvoiceSent"
url = "{receiver.url('/invoices')}"

[endpoints.old]
enabled = false
disabled_reason = "HTTP 410 Gone from POST {receiver.url('/never')}"

[[endpoints.old.mappings]]
event = "ClientCreate"
url = "{receiver.url('/never')}"
{extra}""")


def test_master_and_two_workers_deliver_signed_unique_events_counted_alike(tmp_path: Path, receiver: Receiver) -> None:
    config = tmp_path / "moxiehook.toml"
    write_config(config, receiver)
    before = config.read_bytes()
    (tmp_path / "locustfile.py").write_text(
        "import collections, json, os\n"
        "from locust import constant_throughput, events\n"
        "from moxiehook.locust import MoxieUser\n\n\n"
        "class Webhooks(MoxieUser):\n"
        "    events = {'ClientCreate': 2, 'InvoiceSent': 1}\n"
        "    vary = True\n"
        "    seed = 7  # the same seed on both workers: their users must still differ\n"
        "    wait_time = constant_throughput(40)\n\n\n"
        "# Each worker's own count of the requests Locust recorded (name -> [requests, failures]),\n"
        "# written when it stops: exact, where the master may miss a worker's last report.\n"
        "counts = collections.defaultdict(lambda: [0, 0])\n\n\n"
        "@events.request.add_listener\n"
        "def count(name, exception, **kwargs):\n"
        "    counts[name][0] += 1\n"
        "    counts[name][1] += exception is not None\n\n\n"
        "@events.test_stop.add_listener\n"
        "def write(environment, **kwargs):\n"
        "    if type(environment.runner).__name__ == 'WorkerRunner':\n"
        "        with open(f'worker-{os.getpid()}.json', 'w') as f:\n"
        "            json.dump(counts, f)\n"
    )
    port = free_port()
    prefix = tmp_path / "run"
    master = locust("-f", "locustfile.py", "--master", "--headless", "--expect-workers", "2",
                    "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                    "-u", "4", "-r", "4", "-t", "3s", "--stop-timeout", "5", "--csv", str(prefix),
                    "--json-file", str(tmp_path / "final"), "--only-summary", cwd=tmp_path)
    workers = [locust("-f", "locustfile.py", "--worker", "--master-host", "127.0.0.1",
                      "--master-port", str(port), cwd=tmp_path) for _ in range(2)]
    code, output = finish(master)
    for worker in workers:
        finish(worker)
    assert code == 0, output[-3000:]
    assert "2 workers connected" in output or "(index 1)" in output, output[-3000:]

    by_path = {path: receiver.requests_to(path) for path in ("/clients-a", "/clients-b", "/invoices", "/never")}
    assert by_path["/never"] == []  # a disabled endpoint is skipped
    assert all(by_path[p] for p in ("/clients-a", "/clients-b", "/invoices")), {p: len(r) for p, r in by_path.items()}
    assert len(receiver.requests) == sum(len(r) for r in by_path.values())  # nowhere else

    bodies = [check_delivery(r, "ClientCreate") for r in by_path["/clients-a"] + by_path["/clients-b"]]
    bodies += [check_delivery(r, "InvoiceSent") for r in by_path["/invoices"]]
    webhook_ids = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert webhook_ids.most_common(1)[0][1] == 1  # no id twice, across both workers
    body_ids = Counter(str(b["id"]) for b in bodies)
    assert body_ids.most_common(1)[0][1] == 1  # seeded, yet no two users drew the same bodies

    # Two URLs for one event: each user sends to them in turn.
    assert abs(len(by_path["/clients-a"]) - len(by_path["/clients-b"])) <= 4

    rows = stats_rows(prefix)
    assert set(rows) == {"ClientCreate", "InvoiceSent", "Aggregated"}  # a row per event type
    assert rows["ClientCreate"]["Type"] == rows["InvoiceSent"]["Type"] == "POST"
    # --stop-timeout lets each user finish its delivery in flight, so both sides count it
    received = {"ClientCreate": len(by_path["/clients-a"]) + len(by_path["/clients-b"]),
                "InvoiceSent": len(by_path["/invoices"])}
    per_worker = [json.loads(p.read_text()) for p in tmp_path.glob("worker-*.json")]
    assert len(per_worker) == 2 and all(per_worker)  # both workers sent
    assert {name: [sum(w.get(name, [0, 0])[i] for w in per_worker) for i in (0, 1)] for name in received} == {
        name: [count, 0] for name, count in received.items()}
    # The master's totals: at most what was sent (its last report from a worker can come after it
    # stopped listening), and all failure-free.
    for name, (method, requests, failures) in final_counts(tmp_path / "final.json").items():
        assert method == "POST" and 0 < requests <= received[name] and failures == 0
    assert config.read_bytes() == before


def test_a_generated_locustfile_runs_and_reports_what_moxie_would_disable(tmp_path: Path, receiver: Receiver) -> None:
    """``moxiehook locustfile`` output, run as written (no --host, config found in the folder)."""
    config = tmp_path / "moxiehook.toml"
    write_config(config, receiver, extra=f"""
[endpoints.bad]
auth = {{ type = "bearer", token = "${{LOCUST_TOKEN}}" }}
headers = {{ "X-Team" = "ops" }}
signing_secret = "{SECRET}"

[[endpoints.bad.mappings]]
event = "ClientUpdate"
url = "{receiver.url('/unauthorized')}"

[[endpoints.bad.mappings]]
event = "ClientUpdate"
url = "{receiver.url('/moved')}"
""")
    receiver.answer("/unauthorized", Answer(status=401, body="no"))
    receiver.answer("/moved", Answer(status=302, headers={"Location": receiver.url("/trap")}))
    receiver.answer("/clients-a", Answer(status=204, body=b""))
    # 300 KiB answers: 64 KiB of each is read, the connection closed, and the next request unharmed
    receiver.answer("/clients-b", Answer(status=200, body=b"x" * 300 * 1024))
    before = config.read_bytes()
    written = run_moxiehook("locustfile", "ClientCreate", "ClientUpdate", "-o", "lf.py", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    text = (tmp_path / "lf.py").read_text()
    assert "config =" not in text  # found where Locust runs, as the CLI finds it
    # Paced so the run stays light; otherwise the file runs as written.
    (tmp_path / "lf.py").write_text(text.replace("wait_time = constant(0)", "wait_time = constant(0.02)"))

    prefix = tmp_path / "run"
    code, output = finish(locust("-f", "lf.py", "--headless", "-u", "2", "-r", "2", "-t", "2s", "--stop-timeout", "5",
                                 "--csv", str(prefix), "--json-file", str(tmp_path / "final"),
                                 "--only-summary", cwd=tmp_path))
    assert code == 1, output[-3000:]  # Locust's exit status when a request failed
    assert "Traceback" not in output

    # One stats row per event type: from the report written at exit (the CSV is a once-a-second
    # snapshot, which a loaded machine may take before the first answer).
    assert set(final_counts(tmp_path / "final.json")) == {"ClientCreate", "ClientUpdate"}
    assert "Aggregated" in stats_rows(prefix)
    ok = receiver.requests_to("/clients-a") + receiver.requests_to("/clients-b")
    refused = receiver.requests_to("/unauthorized")
    moved = receiver.requests_to("/moved")
    assert ok and refused and moved
    failed = len(refused) + len(moved)
    assert final_counts(tmp_path / "final.json") == {  # 200 and 204 succeed, 401 and 302 fail
        "ClientCreate": ("POST", len(ok), 0), "ClientUpdate": ("POST", failed, failed)}
    assert receiver.requests_to("/trap") == [] and receiver.requests_to("/never") == []  # no redirect followed
    for request in ok:
        check_delivery(request, "ClientCreate")
    for request in refused + moved:
        check_delivery(request, "ClientUpdate")
    # No retry: every request is a delivery of its own.
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == len(receiver.requests)

    # The failures file, like the stats file, is a snapshot of the last second: what it says, not how often.
    errors = [row["Error"] for row in failure_rows(prefix)]  # as CatchResponseError('…')
    disable = f"HTTP 401 Unauthorized from POST {receiver.url('/unauthorized')}: Moxie would disable endpoint 'bad'"
    redirect = "HTTP 302 Found (redirects are not followed)"
    assert len(errors) == 2 and any(disable in e for e in errors) and any(redirect in e for e in errors), errors
    assert config.read_bytes() == before  # reported, not acted on: the endpoint stays enabled


@pytest.mark.parametrize(("user", "message"), [
    ("events = ['ClientCreat']", "unknown event 'ClientCreat' (did you mean ClientCreate?)"),
    ("events = ['ClientCreate']\n    endpoint = 'old'", "ClientCreate is mapped only on disabled endpoint 'old'"),
])
def test_a_mistake_in_the_user_class_stops_locust_with_one_line(tmp_path: Path, receiver: Receiver,
                                                                 user: str, message: str) -> None:
    write_config(tmp_path / "moxiehook.toml", receiver)
    (tmp_path / "lf.py").write_text(f"from moxiehook.locust import MoxieUser\n\n\nclass W(MoxieUser):\n    {user}\n")
    code, output = finish(locust("-f", "lf.py", "--headless", "-u", "1", "-t", "2s", cwd=tmp_path))
    assert code == 2, output[-3000:]
    assert f"W: {message}" in output
    assert "Traceback" not in output
    assert receiver.requests == []


# ---------------------------------------------------------------------------
# Locust stays out of the CLI and of `import moxiehook`


def imported_modules(importtime_stderr: str) -> set[str]:
    """Top-level module names from ``python -X importtime`` output."""
    names = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


@pytest.mark.parametrize("args", [
    ["-m", "moxiehook", "--help"],
    ["-c", "import moxiehook, moxiehook.locust"],
    ["-m", "moxiehook", "locustfile", "ClientCreate"],
])
def test_locust_and_gevent_are_never_imported_outside_a_locustfile(tmp_path: Path, receiver: Receiver,
                                                                   args: list[str]) -> None:
    write_config(tmp_path / "moxiehook.toml", receiver)
    result = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    modules = imported_modules(result.stderr)
    assert "moxiehook" in modules  # the check sees imports at all
    assert not modules & {"locust", "gevent", "geventhttpclient", "zmq"}, modules & {"locust", "gevent"}


def test_the_check_sees_locust_when_it_is_imported(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", "from moxiehook.locust import MoxieUser"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert {"locust", "gevent"} <= imported_modules(result.stderr)



# ---------------------------------------------------------------------------
# each endpoint's verify_tls and timeout, against a real HTTPS server with a self-signed certificate


@pytest.fixture
def https_receiver(self_signed: tuple[Path, Path]) -> Iterator[tuple[int, list[str]]]:  # noqa: F811
    """HTTPS on 127.0.0.1: answers 204, after 2 s on /slow; lists the paths it was sent to."""
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - stdlib naming
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            paths.append(self.path)
            if self.path == "/slow":
                time.sleep(2)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server.server_address[1], paths
    finally:
        server.shutdown()
        server.server_close()


def test_each_endpoint_keeps_its_tls_check_and_timeout(tmp_path: Path, self_signed: tuple[Path, Path],  # noqa: F811
                                                       https_receiver: tuple[int, list[str]]) -> None:
    port, paths = https_receiver
    shutil.copy(self_signed[0], tmp_path / "ca.pem")
    endpoints = {"strict": ("ClientCreate", ""), "bundle": ("ClientUpdate", 'verify_tls = "ca.pem"'),
                 "off": ("ClientDelete", "verify_tls = false"),
                 "slow": ("ProjectCreate", "verify_tls = false\ntimeout = 0.5")}
    (tmp_path / "moxiehook.toml").write_text("version = 1\n" + "".join(
        f'\n[endpoints.{name}]\n{extra}\n[[endpoints.{name}.mappings]]\nevent = "{event}"\n'
        f'url = "https://127.0.0.1:{port}/{name}"\n' for name, (event, extra) in endpoints.items()))
    (tmp_path / "lf.py").write_text(  # a task of its own: every event in turn, so each is tried
        "from locust import constant, task\nfrom moxiehook.locust import MoxieUser\n\n\n"
        "class W(MoxieUser):\n"
        "    events = ['ClientCreate', 'ClientUpdate', 'ClientDelete', 'ProjectCreate']\n"
        "    wait_time = constant(0.05)\n\n"
        "    @task\n"
        "    def each(self):\n"
        "        for event in self.events:\n"
        "            self.send_event(event)\n")
    code, output = finish(locust("-f", "lf.py", "--headless", "-u", "2", "-r", "2", "-t", "3s", "--stop-timeout", "5",
                                 "--only-summary", cwd=tmp_path))
    assert code == 1, output[-3000:]
    counts = printed_counts(output)
    sent = Counter(paths)
    assert sent["/strict"] == 0 and counts["ClientCreate"][1] == counts["ClientCreate"][2] > 0  # untrusted: not sent
    assert counts["ClientUpdate"] == ("POST", sent["/bundle"], 0) and sent["/bundle"] > 0  # the CA bundle is trusted
    assert counts["ClientDelete"] == ("POST", sent["/off"], 0) and sent["/off"] > 0  # no check
    assert counts["ProjectCreate"][1] == counts["ProjectCreate"][2] > 0  # each answer took 2 s: over 0.5 s
    # The task of its own replaced the default one: every user sent the four events in turn.
    assert counts["ClientCreate"][1] == counts["ClientUpdate"][1] == counts["ClientDelete"][1]
    errors = output[output.index("Error report"):]  # printed at exit, final (the CSV is a snapshot)
    assert "connection error: TLS certificate not trusted" in errors, errors  # in fire's words
    assert "timeout: no answer within 0.5 s" in errors, errors
