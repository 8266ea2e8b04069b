"""Delivery under load and against receivers that misbehave.

- 8 ``fire --count 250`` processes at once append to one log: exactly 2,000
  whole records, every id unique (one locked ``write`` per line).
- Small purpose-built servers on 127.0.0.1 (raw sockets) that hang, reset the
  connection, answer a 100 MB body, answer bytes that are not HTTP, close
  keep-alive connections between requests, or dribble their answer: each run
  ends in a logged ``failed`` (or a retried ``delivered``), with exit 1 or 0,
  never a hang (the process is run with a timeout) and never a traceback.

Every server is bounded: it stops writing after a fixed number of bytes or
when the test ends, whichever comes first.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

FIRE_PROCESSES = 8
FIRE_COUNT = 250

# ---------------------------------------------------------------------------
# helpers


def write_config(path: Path, url: str, timeout: float = 1.0, max_attempts: int = 2, concurrency: int = 8) -> None:
    path.write_text(
        "version = 1\n\n[settings]\n"
        f'log_file = "log.jsonl"\ntimeout = {timeout}\nmax_attempts = {max_attempts}\n'
        f"backoff = 0.01\nconcurrency = {concurrency}\n\n"
        '[endpoints.hook]\nauth = { type = "bearer", token = "t0ken" }\n\n'
        f'[[endpoints.hook.mappings]]\nevent = "ClientCreate"\nurl = "{url}"\n'
    )


def fire(config: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``moxiehook fire`` as a real process; the timeout is the hang detector."""
    return subprocess.run(
        [sys.executable, "-m", "moxiehook", "--config", str(config), "fire", "ClientCreate", *args],
        cwd=config.parent, capture_output=True, text=True, timeout=timeout,
    )


def deliveries(config: Path) -> list[dict[str, Any]]:
    """Every line of the log, parsed; fails on a torn or non-JSON line."""
    lines = (config.parent / "log.jsonl").read_bytes().splitlines()
    return [json.loads(line) for line in lines]


class RawServer:
    """A TCP server on 127.0.0.1 that hands each connection to ``handle(conn, server)``."""

    def __init__(self, handle: Callable[[socket.socket, RawServer], None]) -> None:
        self.handle = handle
        self.stopping = threading.Event()
        self.connections = 0
        self.bytes_sent = 0
        self.client_closed = 0  # connections the client closed before the server was done
        self.active = 0  # handlers still running
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            with self.lock:
                self.connections += 1
                self.active += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            self.handle(conn, self)
        except (BrokenPipeError, ConnectionResetError):
            with self.lock:
                self.client_closed += 1
        except OSError:
            pass
        finally:
            conn.close()
            with self.lock:
                self.active -= 1

    def wait_idle(self, seconds: float) -> None:
        """Wait (bounded) until every handler has returned."""
        for _ in range(int(seconds / 0.05)):
            with self.lock:
                if self.active == 0:
                    return
            self.stopping.wait(0.05)

    def send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        with self.lock:
            self.bytes_sent += len(data)

    def stop(self) -> None:
        self.stopping.set()
        self.sock.close()
        self.thread.join(timeout=5)


def read_request(conn: socket.socket) -> bytes:
    """Read one HTTP request (headers and a Content-Length body); b'' when the client closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return data


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket, RawServer], None]], RawServer]]:
    servers: list[RawServer] = []

    def start(handle: Callable[[socket.socket, RawServer], None]) -> RawServer:
        server = RawServer(handle)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout


# ---------------------------------------------------------------------------
# load: 8 processes, one log


@pytest.mark.slow
def test_8_fire_processes_at_once_write_2000_whole_records_with_unique_ids(receiver, config_path: Path) -> None:
    write_config(config_path, receiver.url("/load"), timeout=10.0, max_attempts=3)
    command = [sys.executable, "-m", "moxiehook", "--config", str(config_path),
               "fire", "ClientCreate", "--count", str(FIRE_COUNT)]
    procs = [subprocess.Popen(command, cwd=config_path.parent, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(FIRE_PROCESSES)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=False):
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        assert f"{FIRE_COUNT} delivered, 0 failed" in out + err

    total = FIRE_PROCESSES * FIRE_COUNT
    records = deliveries(config_path)  # json.loads on every line: a torn line fails here
    assert len(records) == total
    assert all(r["kind"] == "delivery" and r["outcome"] == "delivered" for r in records)
    assert len({r["id"] for r in records}) == total
    assert len({r["event_id"] for r in records}) == total
    assert len({r["request"]["body"]["id"] for r in records}) == total  # a fresh payload id per copy
    # The receiver got each one once.
    got = receiver.requests_to("/load")
    assert len(got) == total
    assert {r.json()["id"] for r in got} == {r["request"]["body"]["id"] for r in records}


# ---------------------------------------------------------------------------
# misbehaving receivers


def test_a_receiver_that_never_answers_times_out_and_is_logged_failed(raw_server, config_path: Path) -> None:
    def hang(conn: socket.socket, server: RawServer) -> None:
        read_request(conn)
        server.stopping.wait(30)  # bounded: released when the test ends

    server = raw_server(hang)
    write_config(config_path, server.url(), timeout=0.5, max_attempts=2)
    result = fire(config_path)
    assert_clean(result)
    assert result.returncode == 1
    [record] = deliveries(config_path)
    assert record["outcome"] == "failed"
    assert record["status"] is None and record["response"] is None
    assert record["error"].startswith("timeout")
    assert len(record["attempts"]) == 2  # a timeout is retried
    assert server.connections == 2


def test_a_receiver_that_resets_the_connection_is_retried_then_logged_failed(raw_server, config_path: Path) -> None:
    def reset(conn: socket.socket, server: RawServer) -> None:
        read_request(conn)
        # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    server = raw_server(reset)
    write_config(config_path, server.url(), max_attempts=3)
    result = fire(config_path)
    assert_clean(result)
    assert result.returncode == 1
    [record] = deliveries(config_path)
    assert record["outcome"] == "failed"
    assert record["error"].startswith("connection error")
    assert len(record["attempts"]) == 3
    assert server.connections == 3


HUNDRED_MB = 100 * 1024 * 1024
CHUNK = b"x" * 65536


@pytest.mark.parametrize("framing", ["content-length", "until-close"])
def test_a_100_mb_answer_is_read_only_up_to_64_kib(raw_server, config_path: Path, framing: str) -> None:
    def huge(conn: socket.socket, server: RawServer) -> None:
        read_request(conn)
        header = (f"Content-Length: {HUNDRED_MB}\r\n" if framing == "content-length" else "Connection: close\r\n")
        server.send(conn, f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n{header}\r\n".encode())
        sent = 0
        while sent < HUNDRED_MB and not server.stopping.is_set():  # bounded, never allocated at once
            server.send(conn, CHUNK)
            sent += len(CHUNK)

    server = raw_server(huge)
    write_config(config_path, server.url(), timeout=5.0)
    result = fire(config_path)
    assert_clean(result)
    assert result.returncode == 0, result.stderr
    [record] = deliveries(config_path)
    assert record["outcome"] == "delivered" and record["status"] == 200
    assert 0 < len(record["response"]["body"]) <= 4096  # at most 4 KiB kept in the log
    # The client hung up long before the end: it did not read 100 MB.
    server.wait_idle(10)
    assert server.client_closed == 1
    assert server.bytes_sent < HUNDRED_MB


@pytest.mark.parametrize(
    "garbage",
    [b"SSH-2.0-OpenSSH_9.6\r\n", b"\x00\xff\xfe binary \x01\x02\r\n\r\n", b"HTTP/1.1 abc Weird\r\n\r\n",
     b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\nok", b""],
    ids=["ssh-banner", "binary", "bad-status", "bad-length", "empty"],
)
def test_an_answer_that_is_not_http_is_logged_failed(raw_server, config_path: Path, garbage: bytes) -> None:
    def not_http(conn: socket.socket, server: RawServer) -> None:
        read_request(conn)
        server.send(conn, garbage)

    server = raw_server(not_http)
    write_config(config_path, server.url(), max_attempts=2)
    result = fire(config_path)
    assert_clean(result)
    assert result.returncode == 1
    [record] = deliveries(config_path)
    assert record["outcome"] == "failed"
    assert record["status"] is None
    assert record["error"].startswith("connection error"), record["error"]
    assert "failed" in result.stdout + result.stderr


def test_keep_alive_connections_closed_between_requests_are_reopened(raw_server, config_path: Path) -> None:
    def one_answer_then_close(conn: socket.socket, server: RawServer) -> None:
        if read_request(conn):
            # An HTTP/1.1 answer that promises nothing about the connection …
            server.send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        # … which is then closed anyway, as an idle-timeout proxy would.

    server = raw_server(one_answer_then_close)
    write_config(config_path, server.url(), max_attempts=3, concurrency=2)
    result = fire(config_path, "--count", "30")
    assert_clean(result)
    assert result.returncode == 0, result.stdout + result.stderr
    records = deliveries(config_path)
    assert len(records) == 30
    assert all(r["outcome"] == "delivered" for r in records)
    assert server.connections >= 30  # a new connection for each request


def _dribble(prefix: bytes, byte: bytes, count: int) -> Callable[[socket.socket, RawServer], None]:
    def handle(conn: socket.socket, server: RawServer) -> None:
        read_request(conn)
        server.send(conn, prefix)
        for _ in range(count):  # bounded: count x 0.25 s
            if server.stopping.wait(0.25):
                return
            server.send(conn, byte)

    return handle


@pytest.mark.parametrize(
    ("prefix", "byte", "outcome"),
    [
        (b"HTTP/1.1 200 OK\r\nX-Slow: ", b"a", "failed"),  # the headers never end
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", b"a", "delivered"),  # the body never ends
    ],
    ids=["slow-headers", "slow-body"],
)
def test_a_receiver_that_dribbles_its_answer_is_cut_off_at_the_timeout(
    raw_server, config_path: Path, prefix: bytes, byte: bytes, outcome: str
) -> None:
    """Each byte arrives within the read timeout, so only a per-attempt deadline stops this."""
    server = raw_server(_dribble(prefix, byte, count=24))  # 6 s of dribbling at most: 6 x the timeout
    write_config(config_path, server.url(), timeout=1.0, max_attempts=1)
    result = fire(config_path, timeout=60)
    assert_clean(result)
    [record] = deliveries(config_path)
    assert record["outcome"] == outcome
    # The client gave up before the server ran out of bytes to dribble: the
    # handler ends on a broken pipe, not after its last byte.
    server.wait_idle(10)
    assert server.client_closed == 1, "the attempt outlived its timeout"
