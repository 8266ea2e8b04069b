"""Red team of ``MoxieUser`` and ``moxiehook locustfile``: what a hostile receiver or config found.

Real parts only: Locust runs as ``python -m locust`` child processes (never imported here: gevent
monkey-patches the interpreter), against a raw socket receiver on 127.0.0.1 that keeps each
request's header lines exactly as they came (names, case, repeats) and answers as scripted.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import run_moxiehook
from tests.test_locust import RUN_TIMEOUT, finish, free_port, locust, locust_env, printed_counts

ONE_DELIVERY_LOCUSTFILE = (  # one user, one task, then a wait longer than the run: one delivery
    "from locust import constant\nfrom moxiehook.locust import MoxieUser\n\n\n"
    "class W(MoxieUser):\n    events = ['ClientCreate']\n    wait_time = constant(60)\n")


# Runs a command as its only child and prints that child's peak RSS last: the test process's own
# RUSAGE_CHILDREN would count every child it ever waited for (a browser another test started in
# the same xdist worker), not the Locust run measured.
_PEAK_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print(f'peak-rss-kib={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}', file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def locust_measured(*args: str, cwd: Path) -> subprocess.Popen[str]:
    """``locust(*args)``, run so that its peak RSS is the output's last line (see ``peak_rss_kib``)."""
    return subprocess.Popen([sys.executable, "-c", _PEAK_WRAPPER, sys.executable, "-m", "locust", *args], cwd=cwd,
                            env=locust_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def peak_rss_kib(output: str) -> int:
    return int(output.rsplit("peak-rss-kib=", 1)[1].split()[0])


@dataclass
class RawRequest:
    line: str
    headers: list[tuple[str, str]]  # as sent: names in their case, repeats kept
    body: bytes

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


class RawReceiver:
    """A loopback HTTP/1.1 server on raw sockets: ``answer(conn)`` writes each request's answer."""

    def __init__(self, answer: Callable[[socket.socket], None]) -> None:
        self.requests: list[RawRequest] = []
        self._answer = answer
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self._server.getsockname()[1]
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            try:
                while not self._stopped.is_set():
                    while b"\r\n\r\n" not in buffer:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buffer += data
                    head, buffer = buffer.split(b"\r\n\r\n", 1)
                    line, *fields = head.decode("latin-1").split("\r\n")
                    headers = [(k, v.strip()) for k, v in (f.split(":", 1) for f in fields)]
                    length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
                    while len(buffer) < length:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buffer += data
                    body, buffer = buffer[:length], buffer[length:]
                    with self._lock:
                        self.requests.append(RawRequest(line, headers, body))
                    self._answer(conn)
            except OSError:
                return

    def stop(self) -> None:
        self._stopped.set()
        self._server.close()


@pytest.fixture
def raw_receiver(request: pytest.FixtureRequest) -> Iterator[RawReceiver]:
    answer = getattr(request, "param", None) or (lambda conn: conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n"))
    server = RawReceiver(answer)
    try:
        yield server
    finally:
        server.stop()


def write_config(folder: Path, url: str, endpoint_extra: str = "") -> Path:
    path = folder / "moxiehook.toml"
    path.write_text(f"""\
version = 1

[settings]
max_attempts = 1
log_file = "log.jsonl"

[endpoints.crm]
auth = {{ type = "bearer", token = "tok-1" }}
signing_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
{endpoint_extra}

[[endpoints.crm.mappings]]
event = "ClientCreate"
url = "{url}"
""")
    return path


# ---------------------------------------------------------------------------
# Is every byte what it claims? fire and MoxieUser send the same headers


def test_a_custom_user_agent_header_is_sent_once_by_fire_and_by_locust(tmp_path: Path,
                                                                       raw_receiver: RawReceiver) -> None:
    """A config's custom header `user-agent = "mine/1"` (any case) replaces moxiehook's own.

    A user saw `fire` send two User-Agent headers (`User-Agent: moxiehook/…` and
    `user-agent: mine/1`: a receiver reading the first never sees theirs) while Locust sent one:
    the request builder kept both names because they differ in case. They should see one
    User-Agent, theirs, from both, and the same header lines from both, in the same order
    (one request builder, one client).
    """
    config = write_config(tmp_path, raw_receiver.url("/clients"), 'headers = { "user-agent" = "mine/1" }')
    fired = run_moxiehook("fire", "ClientCreate", env={"MOXIEHOOK_CONFIG": str(config)}, cwd=tmp_path)
    assert fired.returncode == 0, fired.stderr
    (tmp_path / "lf.py").write_text(ONE_DELIVERY_LOCUSTFILE)
    code, output = finish(locust("-f", "lf.py", "--headless", "-u", "1", "-r", "1", "-t", "2s",
                                 "--stop-timeout", "5", "--only-summary", cwd=tmp_path))
    assert code == 0, output[-3000:]
    assert len(raw_receiver.requests) == 2
    by_fire, by_locust = raw_receiver.requests
    for request in (by_fire, by_locust):
        assert request.values("User-Agent") == ["mine/1"], request.headers
    assert by_fire.line == by_locust.line
    assert [name for name, _ in by_fire.headers] == [name for name, _ in by_locust.headers]
    signed = {"webhook-id", "webhook-timestamp", "webhook-signature", "content-length"}  # per delivery
    assert [h for h in by_fire.headers if h[0].lower() not in signed] == [
        h for h in by_locust.headers if h[0].lower() not in signed]


# ---------------------------------------------------------------------------
# How many times? A worker whose config is wrong must not leave the run half sent


def test_a_worker_missing_a_variable_stops_the_whole_distributed_run(tmp_path: Path,
                                                                     raw_receiver: RawReceiver) -> None:
    """Two workers, one started without the `${TOKEN}` the config needs.

    A user saw that worker print its one-line error and exit 2, but it had already reported
    ready: the master gave it half the users, ran the test with the other half and exited 0
    ("not all reports received from workers" was the only trace). A CI step passed with half
    the load asked for. They should see the master name the worker's error and the run end
    with exit 2, as a single-process run does.
    """
    config = write_config(tmp_path, raw_receiver.url("/clients"))
    config.write_text(config.read_text().replace('token = "tok-1"', 'token = "${RT_TOKEN}"'))
    (tmp_path / "lf.py").write_text(
        "from locust import constant\nfrom moxiehook.locust import MoxieUser\n\n\n"
        "class W(MoxieUser):\n    events = ['ClientCreate']\n    wait_time = constant(0.05)\n")
    port = free_port()
    master = locust("-f", "lf.py", "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                    "--headless", "-u", "4", "-r", "4", "-t", "4s", "--expect-workers", "2", "--stop-timeout", "5",
                    cwd=tmp_path)
    worker_args = [sys.executable, "-m", "locust", "-f", "lf.py", "--worker", "--master-host", "127.0.0.1",
                   "--master-port", str(port)]
    good = subprocess.Popen(worker_args, cwd=tmp_path, env={**locust_env(), "RT_TOKEN": "t"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    bad = subprocess.Popen(worker_args, cwd=tmp_path, env=locust_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        bad_out, _ = bad.communicate(timeout=RUN_TIMEOUT)
        code, output = finish(master)
        # A worker that connects after the master has stopped would wait a minute for it: not our subject.
        if good.poll() is None:
            good.terminate()
        good.communicate(timeout=RUN_TIMEOUT)
    finally:
        for process in (good, bad, master):
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert bad.returncode == 2 and "environment variable RT_TOKEN is not set" in bad_out, bad_out[-2000:]
    assert "Traceback" not in bad_out
    assert "environment variable RT_TOKEN is not set" in output, output[-3000:]
    assert code == 2, output[-3000:]


# ---------------------------------------------------------------------------
# What does it cost? A receiver's answer costs a bounded amount, headers too

ENDLESS_HEADER_BYTES = 96 * 1024 * 1024  # what the receiver sends of headers, then it hangs up


def _endless_headers(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    line = b"X-Pad-%07d: " + b"a" * 1000 + b"\r\n"
    for number in range(ENDLESS_HEADER_BYTES // 1016):
        conn.sendall(line % number)
    conn.close()


@pytest.mark.parametrize("raw_receiver", [_endless_headers], indirect=True)
def test_an_answer_with_endless_headers_costs_a_bounded_amount(tmp_path: Path, raw_receiver: RawReceiver) -> None:
    """A receiver that answers with headers that never end (96 MB of them here).

    A user saw a worker's memory grow with every header byte (1.5 GB for five users in four
    seconds against a receiver streaming headers), where `fire` stops at 64 KiB of headers
    (its client's cap) and the docs promise that a receiver answering a gigabyte costs 64 KiB.
    They should see a failed delivery and a worker whose memory stays small.
    """
    write_config(tmp_path, raw_receiver.url("/clients"))
    (tmp_path / "lf.py").write_text(ONE_DELIVERY_LOCUSTFILE)
    process = locust_measured("-f", "lf.py", "--headless", "-u", "1", "-r", "1", "-t", "3s", "--stop-timeout", "10",
                              "--only-summary", cwd=tmp_path)
    code, output = finish(process)
    peak_kib = peak_rss_kib(output)
    assert code == 1, output[-3000:]
    assert printed_counts(output)["ClientCreate"] == ("POST", 1, 1)
    assert peak_kib < 64 * 1024 + ENDLESS_HEADER_BYTES // 1024 // 4, f"peak {peak_kib} KiB"


# ---------------------------------------------------------------------------
# Is every byte what it claims? A 204 with a body (RFC 9112 §6.3: it ends at its headers)


def _no_content_with_a_body(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nHELLO")


@pytest.mark.parametrize("raw_receiver", [_no_content_with_a_body], indirect=True)
def test_a_204_followed_by_stray_bytes_is_a_delivery_as_fire_counts_it(tmp_path: Path,
                                                                       raw_receiver: RawReceiver) -> None:
    """A receiver answers `204 No Content` with `Content-Length: 5` and five bytes after it.

    A 204 ends at its empty line (RFC 9112 §6.3); the bytes after it are the receiver's bug, and
    `fire` counts each such delivery as delivered. A user saw Locust count every one of them as a
    failure ("connection error: Expected HTTP/"), a 100 % failure rate for a receiver that took
    every webhook. They should see them delivered (the connection then closed, not reused).
    """
    config = write_config(tmp_path, raw_receiver.url("/clients"))
    fired = run_moxiehook("fire", "ClientCreate", "--count", "3", env={"MOXIEHOOK_CONFIG": str(config)}, cwd=tmp_path)
    assert fired.returncode == 0, fired.stderr
    (tmp_path / "lf.py").write_text(ONE_DELIVERY_LOCUSTFILE + (  # what a request listener is given
        "\n\nfrom locust import events\nimport json\n\n\n@events.request.add_listener\n"
        "def seen(request_type, name, response_length, exception, response, url, **kwargs):\n"
        "    with open('seen.json', 'w') as f:\n"
        "        json.dump([request_type, name, response_length, exception, response.status,\n"
        "                   response.headers, response.body.decode(), url], f)\n"))
    code, output = finish(locust("-f", "lf.py", "--headless", "-u", "1", "-r", "1", "-t", "2s",
                                 "--stop-timeout", "5", "--only-summary", cwd=tmp_path))
    assert printed_counts(output)["ClientCreate"] == ("POST", 1, 0), output[-3000:]
    assert code == 0
    assert json.loads(raw_receiver.requests[-1].body)["id"]
    assert json.loads((tmp_path / "seen.json").read_text()) == [
        "POST", "ClientCreate", 0, None, 204, {"content-length": "5"}, "", raw_receiver.url("/clients")]


# ---------------------------------------------------------------------------
# What does the user see? A mistake in a locustfile's own task is one line and exit 2


def test_a_task_sending_an_event_the_class_does_not_name_stops_the_run_with_one_line(
        tmp_path: Path, raw_receiver: RawReceiver) -> None:
    """A locustfile's own task calls `self.send_event("InvoiceSent")`, an event not in `events`.

    A user saw a full Python traceback for every task of every user (thousands a second at
    `constant(0)`), the run going on to its end and exit 1, as if deliveries had failed. They
    should see the one line saying what is wrong, once, and exit 2, as for any other mistake in
    the user class.
    """
    write_config(tmp_path, raw_receiver.url("/clients"))
    (tmp_path / "lf.py").write_text(
        "from locust import constant, task\nfrom moxiehook.locust import MoxieUser\n\n\n"
        "class W(MoxieUser):\n    events = ['ClientCreate']\n    wait_time = constant(0.2)\n\n"
        "    @task\n    def both(self):\n        self.send_event('ClientCreate')\n"
        "        self.send_event('InvoiceSent')\n")
    code, output = finish(locust("-f", "lf.py", "--headless", "-u", "2", "-r", "2", "-t", "3s",
                                 "--stop-timeout", "5", cwd=tmp_path))
    assert "Traceback" not in output, output[-3000:]
    assert output.count("InvoiceSent is not one of this user's events: ClientCreate") == 1, output[-3000:]
    assert code == 2


# ---------------------------------------------------------------------------
# Is every byte what it claims? A config header that changes how the request is transmitted


def test_an_expect_header_in_the_config_is_refused_as_framing_headers_are(tmp_path: Path,
                                                                        raw_receiver: RawReceiver) -> None:
    """An endpoint's custom headers hold `Expect = "100-continue"`; the receiver sends no interim answer.

    A user saw `fire` deliver (its client sends the body at once, whatever the header says) while
    every MoxieUser request waited for `100 Continue` until the endpoint's timeout and failed. How
    the body travels is the HTTP client's business, like the framing headers: the config refuses
    it (exit 2, naming the key), so both ways of sending meet the same config.
    """
    config = write_config(tmp_path, raw_receiver.url("/clients"),
                          'timeout = 1.0\nheaders = { "Expect" = "100-continue" }')
    fired = run_moxiehook("fire", "ClientCreate", env={"MOXIEHOOK_CONFIG": str(config)}, cwd=tmp_path)
    assert fired.returncode == 2, fired.stderr
    assert "Expect" in fired.stderr and "hop-by-hop or framing header" in fired.stderr
    assert raw_receiver.requests == []  # nothing was sent


# ---------------------------------------------------------------------------
# Where does it send? TLS checks turned off are said, as fire says it


def test_an_endpoint_without_tls_checks_is_warned_about_as_fire_warns(tmp_path: Path,
                                                                      raw_receiver: RawReceiver) -> None:
    """An endpoint with `verify_tls = false` (a self-signed test server, meant for a while).

    `fire` warns "endpoint 'crm' has verify_tls = false: TLS certificates are not checked" on
    every run, so a config copied towards a real receiver does not go on unchecked unnoticed. A
    user saw a Locust run send thousands of deliveries to it without a word. They should see
    the same warning when the run starts.
    """
    write_config(tmp_path, raw_receiver.url("/clients"), "verify_tls = false")  # warned whatever the scheme
    (tmp_path / "lf.py").write_text(ONE_DELIVERY_LOCUSTFILE)
    code, output = finish(locust("-f", "lf.py", "--headless", "-u", "1", "-r", "1", "-t", "1s",
                                 "--stop-timeout", "5", "--only-summary", cwd=tmp_path))
    assert "endpoint 'crm' has verify_tls = false: TLS certificates are not checked" in output, output[-3000:]


# ---------------------------------------------------------------------------
# How many times? An answer whose body is cut short is still one delivery in the stats


def _body_cut_short(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"z" * 1000)
    conn.close()


@pytest.mark.parametrize("raw_receiver", [_body_cut_short], indirect=True)
def test_an_answer_cut_short_is_counted_once_as_fire_counts_it(tmp_path: Path, raw_receiver: RawReceiver) -> None:
    """A receiver answers `200 OK` announcing 100,000 bytes of body, sends 1,000 and hangs up.

    `fire` counts it delivered (the status came; a body cut short only ends the reading there).
    A user saw a Python traceback for every request and Locust's stats without the requests at
    all: the receiver counted deliveries that Locust never reported. They should see each
    request once in the stats, as delivered, and no traceback.
    """
    config = write_config(tmp_path, raw_receiver.url("/clients"))
    fired = run_moxiehook("fire", "ClientCreate", env={"MOXIEHOOK_CONFIG": str(config)}, cwd=tmp_path)
    assert fired.returncode == 0, fired.stderr
    (tmp_path / "lf.py").write_text(ONE_DELIVERY_LOCUSTFILE)
    code, output = finish(locust("-f", "lf.py", "--headless", "-u", "1", "-r", "1", "-t", "2s",
                                 "--stop-timeout", "5", "--only-summary", cwd=tmp_path))
    assert "Traceback" not in output, output[-3000:]
    assert printed_counts(output).get("ClientCreate") == ("POST", 1, 0), output[-3000:]
    assert code == 0
    assert len(raw_receiver.requests) == 2  # fire's and Locust's: one each


# ---------------------------------------------------------------------------
# How many at once? moxiehook's client under Locust waits without holding up the other users

CONCURRENT_USERS = 50
concurrent = threading.Barrier(CONCURRENT_USERS, timeout=30)  # parties: requests in flight at once


def _answer_when_all_are_waiting(conn: socket.socket) -> None:
    """No answer until every user's request is in flight at the same time (then 204), else 503."""
    try:
        concurrent.wait()
    except threading.BrokenBarrierError:
        conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
        return
    conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")


@pytest.mark.parametrize("raw_receiver", [_answer_when_all_are_waiting], indirect=True)
def test_fifty_users_of_one_process_wait_for_a_slow_receiver_at_the_same_time(tmp_path: Path,
                                                                               raw_receiver: RawReceiver) -> None:
    """Fifty users in one Locust process; the receiver answers none until all fifty are waiting.

    MoxieUser sends with moxiehook's own client, whose sockets Locust's gevent makes cooperative:
    a user waiting for an answer must let the others send. If a wait blocked the process, the
    first request would hold every other user back and the receiver would give up (503 for all).
    """
    concurrent.reset()
    write_config(tmp_path, raw_receiver.url("/clients"), "timeout = 40")
    (tmp_path / "lf.py").write_text(ONE_DELIVERY_LOCUSTFILE)
    code, output = finish(locust("-f", "lf.py", "--headless", "-u", str(CONCURRENT_USERS),
                                 "-r", str(CONCURRENT_USERS), "-t", "4s", "--stop-timeout", "40",
                                 "--only-summary", cwd=tmp_path))
    assert printed_counts(output)["ClientCreate"] == ("POST", CONCURRENT_USERS, 0), output[-3000:]
    assert code == 0
    assert len(raw_receiver.requests) == CONCURRENT_USERS


# ---------------------------------------------------------------------------
# What if it never ends? An answer's head dripped a byte at a time is cut by the endpoint's timeout


def _dripped_head(conn: socket.socket) -> None:
    """Status line and headers one byte every 50 ms, for far longer than the endpoint's timeout."""
    head = b"HTTP/1.1 200 OK\r\n" + b"X-Drip: " + b"d" * 2000 + b"\r\n\r\n"
    for byte in head:
        conn.sendall(bytes([byte]))
        if dripping.wait(0.05):  # set when the test ends: the receiver stops at once
            return


dripping = threading.Event()


@pytest.mark.parametrize("raw_receiver", [_dripped_head], indirect=True)
def test_an_answer_dripped_a_byte_at_a_time_ends_at_the_endpoint_timeout(tmp_path: Path,
                                                                         raw_receiver: RawReceiver) -> None:
    """A receiver sends its answer's head one byte every 50 ms (100 s for the whole of it).

    Each byte arrives well inside any read timeout, so a client timing each read alone waits as
    long as the receiver likes. `fire` ends the attempt at the endpoint's timeout, whatever
    arrives: so must a MoxieUser, with a failure saying so, once.
    """
    dripping.clear()
    write_config(tmp_path, raw_receiver.url("/clients"), "timeout = 1.5")
    (tmp_path / "lf.py").write_text(ONE_DELIVERY_LOCUSTFILE)
    try:
        code, output = finish(locust("-f", "lf.py", "--headless", "-u", "1", "-r", "1", "-t", "3s",
                                     "--stop-timeout", "30", "--only-summary", cwd=tmp_path))
    finally:
        dripping.set()
    assert printed_counts(output)["ClientCreate"] == ("POST", 1, 1), output[-3000:]
    assert "timeout: no answer within 1.5 s" in output[output.index("Error report"):]
    assert code == 1


# ---------------------------------------------------------------------------
# What does it cost? A gigabyte answer costs 64 KiB of it, and the connection


GIGABYTE = 1 << 30
gigabyte_sent: list[int] = []  # bytes of body each answer got out before the client hung up


def _gigabyte_body(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % GIGABYTE)
    block, sent = b"g" * 65536, 0
    try:
        while sent < GIGABYTE:
            conn.sendall(block)
            sent += len(block)
    except OSError:  # the client closed: it read what it wanted
        pass
    finally:
        gigabyte_sent.append(sent)
        conn.close()


@pytest.mark.parametrize("raw_receiver", [_gigabyte_body], indirect=True)
def test_a_gigabyte_answer_costs_what_fire_reads_of_it(tmp_path: Path, raw_receiver: RawReceiver) -> None:
    """Five users; the receiver answers `200` announcing a gigabyte of body and sends it.

    The docs promise that a receiver answering a gigabyte costs 64 KiB of it, as for `fire`:
    each answer is a delivery, its connection is closed after 64 KiB (its unread rest is never
    taken for the next answer), and the worker's memory stays small. The receiver gets out
    what the kernel's buffers hold, far from a gigabyte.
    """
    gigabyte_sent.clear()
    write_config(tmp_path, raw_receiver.url("/clients"))
    (tmp_path / "lf.py").write_text(
        "from locust import constant\nfrom moxiehook.locust import MoxieUser\n\n\n"
        "class W(MoxieUser):\n    events = ['ClientCreate']\n    wait_time = constant(0.2)\n")
    code, output = finish(locust_measured("-f", "lf.py", "--headless", "-u", "5", "-r", "5", "-t", "3s",
                                          "--stop-timeout", "10", "--json-file", "final", "--only-summary",
                                          cwd=tmp_path))
    peak_kib = peak_rss_kib(output)
    assert code == 0, output[-3000:]
    (entry,) = json.loads((tmp_path / "final.json").read_text())
    assert entry["num_failures"] == 0 and entry["num_requests"] >= 5
    assert entry["total_content_length"] == entry["num_requests"] * 64 * 1024  # 64 KiB read of each
    assert len(raw_receiver.requests) == entry["num_requests"]  # each on a connection of its own, once
    assert peak_kib < 200 * 1024, f"peak {peak_kib} KiB"
    assert max(gigabyte_sent, default=0) < GIGABYTE // 16


# ---------------------------------------------------------------------------
# How many times? A kept-alive connection the receiver closed is not a lost or doubled delivery


def _answer_then_hang_up(conn: socket.socket) -> None:
    """A keep-alive answer (no `Connection: close`), then the receiver closes the connection anyway."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    conn.shutdown(socket.SHUT_RDWR)
    conn.close()


@pytest.mark.parametrize("raw_receiver", [_answer_then_hang_up], indirect=True)
def test_a_connection_closed_after_each_answer_costs_no_delivery(tmp_path: Path, raw_receiver: RawReceiver) -> None:
    """Every answer says nothing of closing, and the receiver closes the connection after it.

    The next request must not go out on the dead connection (a failure for a receiver that took
    everything) nor be sent twice: the receiver counts what Locust counts, all delivered. Each
    user waits 0.3 s between deliveries, so the receiver's close has surely come by then even on
    a loaded machine (a close arriving after the next request went out is a real failure).
    """
    write_config(tmp_path, raw_receiver.url("/clients"))
    (tmp_path / "lf.py").write_text(
        "from locust import constant\nfrom moxiehook.locust import MoxieUser\n\n\n"
        "class W(MoxieUser):\n    events = ['ClientCreate']\n    wait_time = constant(0.3)\n")
    code, output = finish(locust("-f", "lf.py", "--headless", "-u", "3", "-r", "3", "-t", "3s",
                                 "--stop-timeout", "10", "--only-summary", cwd=tmp_path))
    counts = printed_counts(output)["ClientCreate"]
    assert counts[2] == 0 and counts[1] >= 6, output[-3000:]
    assert code == 0
    assert len(raw_receiver.requests) == counts[1]
    assert len({r.values("webhook-id")[0] for r in raw_receiver.requests}) == counts[1]


# ---------------------------------------------------------------------------
# How many times? An answer cut in its head is one failed delivery, never sent again


def _head_cut_short(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Le")
    conn.close()


@pytest.mark.parametrize("raw_receiver", [_head_cut_short], indirect=True)
def test_an_answer_cut_in_its_headers_is_one_failure_as_fire_says_it(tmp_path: Path,
                                                                      raw_receiver: RawReceiver) -> None:
    """The receiver hangs up in the middle of its answer's headers.

    No status came whole: a failed delivery, in `fire`'s words, counted once, and not sent
    again (Locust measures; a resent webhook would be a second delivery to the receiver).
    """
    config = write_config(tmp_path, raw_receiver.url("/clients"))
    fired = run_moxiehook("fire", "ClientCreate", "--json", env={"MOXIEHOOK_CONFIG": str(config)}, cwd=tmp_path)
    assert fired.returncode == 1, fired.stderr
    fire_error = json.loads(fired.stdout)["deliveries"][0]["error"]
    (tmp_path / "lf.py").write_text(ONE_DELIVERY_LOCUSTFILE)
    code, output = finish(locust("-f", "lf.py", "--headless", "-u", "1", "-r", "1", "-t", "2s",
                                 "--stop-timeout", "5", "--only-summary", cwd=tmp_path))
    assert printed_counts(output)["ClientCreate"] == ("POST", 1, 1), output[-3000:]
    assert code == 1
    assert fire_error in output[output.index("Error report"):], (fire_error, output[-3000:])
    assert len(raw_receiver.requests) == 2  # fire's one attempt (max_attempts = 1) and Locust's one


# ---------------------------------------------------------------------------
# How many times? Bytes after a 204 never become the next delivery's answer


@pytest.mark.parametrize("raw_receiver", [_no_content_with_a_body], indirect=True)
def test_deliveries_after_a_204_with_stray_bytes_are_each_delivered_once(tmp_path: Path,
                                                                          raw_receiver: RawReceiver) -> None:
    """Every answer is `204` with `Content-Length: 5` and five stray bytes; users send many.

    Reused, the connection would hand the stray bytes to the next delivery as the start of its
    answer (a failure, or worse, a wrong status). Each connection is closed after such an
    answer instead: every delivery is delivered, and the receiver counts what Locust counts.
    """
    write_config(tmp_path, raw_receiver.url("/clients"))
    (tmp_path / "lf.py").write_text(
        "from locust import constant\nfrom moxiehook.locust import MoxieUser\n\n\n"
        "class W(MoxieUser):\n    events = ['ClientCreate']\n    wait_time = constant(0.05)\n")
    code, output = finish(locust("-f", "lf.py", "--headless", "-u", "3", "-r", "3", "-t", "3s",
                                 "--stop-timeout", "10", "--only-summary", cwd=tmp_path))
    counts = printed_counts(output)["ClientCreate"]
    assert counts[2] == 0 and counts[1] >= 6, output[-3000:]
    assert code == 0
    assert len(raw_receiver.requests) == counts[1]


# ---------------------------------------------------------------------------
# Where does it send? Through the proxy the environment names, as fire sends


def test_a_proxy_in_the_environment_carries_locust_deliveries_as_it_carries_fire(
        tmp_path: Path, raw_receiver: RawReceiver) -> None:
    """`HTTP_PROXY` names a forwarding proxy (the raw receiver plays it); the URL's host is not resolvable.

    A team whose only way out is a proxy sets `HTTP_PROXY` once: `fire` honours it, and so must
    a MoxieUser, with the same request line (the absolute URL) and the same headers.
    """
    url = "http://hooks.example.invalid/clients"
    config = write_config(tmp_path, url)
    proxied = {"HTTP_PROXY": f"http://127.0.0.1:{raw_receiver.port}", "NO_PROXY": "", "no_proxy": ""}
    fired = run_moxiehook("fire", "ClientCreate", env={"MOXIEHOOK_CONFIG": str(config), **proxied}, cwd=tmp_path)
    assert fired.returncode == 0, fired.stderr
    (tmp_path / "lf.py").write_text(ONE_DELIVERY_LOCUSTFILE)
    process = subprocess.Popen([sys.executable, "-m", "locust", "-f", "lf.py", "--headless", "-u", "1", "-r", "1",
                                "-t", "2s", "--stop-timeout", "5", "--only-summary"], cwd=tmp_path,
                               env={**locust_env(), **proxied}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    code, output = finish(process)
    assert printed_counts(output)["ClientCreate"] == ("POST", 1, 0), output[-3000:]
    assert code == 0
    by_fire, by_locust = raw_receiver.requests
    assert by_fire.line == by_locust.line == f"POST {url} HTTP/1.1"
    assert [name for name, _ in by_fire.headers] == [name for name, _ in by_locust.headers]


# ---------------------------------------------------------------------------
# What does the user see? A CA bundle that holds no certificate is one line and exit 2


def test_a_ca_bundle_without_a_certificate_stops_locust_with_one_line(tmp_path: Path,
                                                                      raw_receiver: RawReceiver) -> None:
    """The endpoint's `verify_tls = "ca.pem"` names a file that holds no certificate (a wrong file copied).

    Every user would fail to build its TLS settings on its first request: a traceback per
    task, thousands a second. The file is loaded when Locust starts, and the run stops with
    one line naming the endpoint and the file, exit 2, nothing sent.
    """
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    write_config(tmp_path, raw_receiver.url("/clients").replace("http://", "https://"), 'verify_tls = "ca.pem"')
    (tmp_path / "lf.py").write_text(ONE_DELIVERY_LOCUSTFILE)
    code, output = finish(locust("-f", "lf.py", "--headless", "-u", "2", "-r", "2", "-t", "2s",
                                 "--stop-timeout", "5", cwd=tmp_path))
    assert "Traceback" not in output, output[-3000:]
    assert output.count("verify_tls of endpoint 'crm'") == 1 and "ca.pem holds no CA certificate" in output
    assert code == 2
    assert raw_receiver.requests == []
