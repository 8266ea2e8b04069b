"""Loopback webhook receivers for the benchmarks, each in its own process.

A receiver is a small asyncio HTTP/1.1 server with keep-alive that answers
every request ``204 No Content``, at once (the *fast* receiver) or after a
fixed delay (the *realistic* one, 50 ms). It runs in a separate process so it
never competes with the measured client for the same interpreter lock, and
asyncio lets it hold any number of connections, each delayed answer being a
timer rather than a thread. ``GET /stats`` answers the number of POSTs served,
so the benchmark can check that every event it timed really arrived.

Run as a program it prints ``listening <port>`` once ready;
:class:`Receiver` starts one that way and always stops it.

:class:`NginxReceiver` is the fast receiver when ``nginx`` is installed: a C
server answering ``204`` (``return 204;``) never makes a Python client wait,
so a figure taken against it is the client's alone. It counts POSTs in its
access log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
MAX_HEADER_BYTES = 64 * 1024

NO_CONTENT = b"HTTP/1.1 204 No Content\r\nServer: moxiehook-bench\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class Counter:
    """Requests served by this process (shared by all its connections)."""

    posts = 0


class HttpConnection(asyncio.Protocol):
    """One keep-alive client connection: parse requests, answer each one.

    Only what webhook senders use is understood: a body with Content-Length,
    ``Expect: 100-continue`` (curl sends it for large bodies) and
    ``Connection: close``. Requests are answered in order; clients of this
    receiver don't pipeline, so a delayed answer never overtakes another.
    """

    def __init__(self, delay_s: float, counter: Counter) -> None:
        self.delay_s = delay_s
        self.counter = counter
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        # Set while a request's head has been read but its body has not fully arrived.
        self.pending: tuple[int, bool, str, str] | None = None  # (total length, close, method, path)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self._answer_next():
            pass

    def _answer_next(self) -> bool:
        """Answer one complete request from the buffer; False when more data is needed."""
        assert self.transport is not None
        if self.pending is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEADER_BYTES:
                    self._fail()
                return False
            head = bytes(self.buffer[:end]).decode("latin-1")
            parsed = _parse_head(head)
            if parsed is None:
                self._fail()
                return False
            method, path, length, close, expect_continue = parsed
            self.pending = (end + 4 + length, close, method, path)
            if expect_continue and len(self.buffer) < end + 4 + length:
                self.transport.write(CONTINUE)
        total, close, method, path = self.pending
        if len(self.buffer) < total:
            return False
        del self.buffer[:total]
        self.pending = None
        if method == "POST":
            self.counter.posts += 1
            self._reply(NO_CONTENT, close, delayed=True)
        elif path == "/stats":
            body = json.dumps({"posts": self.counter.posts}).encode()
            head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            self._reply(head.encode() + body, close, delayed=False)
        else:
            self._reply(NO_CONTENT, close, delayed=False)
        return not close

    def _reply(self, response: bytes, close: bool, delayed: bool) -> None:
        if delayed and self.delay_s > 0:
            asyncio.get_running_loop().call_later(self.delay_s, self._send, response, close)
        else:
            self._send(response, close)

    def _send(self, response: bytes, close: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return  # the client went away while its answer was delayed
        self.transport.write(response)
        if close:
            self.transport.close()

    def _fail(self) -> None:
        assert self.transport is not None
        self.transport.write(BAD_REQUEST)
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def _parse_head(head: str) -> tuple[str, str, int, bool, bool] | None:
    """``(method, path, body length, close after answer, expects 100-continue)`` or None if malformed."""
    request_line, _, header_text = head.partition("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    headers: dict[str, str] = {}
    for line in header_text.split("\r\n"):
        name, sep, value = line.partition(":")
        if not sep:
            return None
        headers[name.strip().lower()] = value.strip().lower()
    if "chunked" in headers.get("transfer-encoding", ""):
        return None  # not needed by any sender measured here; refuse rather than misparse
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        return None
    if length < 0:
        return None
    connection = headers.get("connection", "")
    close = connection == "close" or (parts[2] == "HTTP/1.0" and connection != "keep-alive")
    return parts[0], parts[1], length, close, headers.get("expect") == "100-continue"


async def serve(delay_s: float, port: int) -> None:
    """Serve until SIGTERM, SIGINT or the end of stdin; print ``listening <port>`` once bound.

    The parent holds our stdin open: if it dies without stopping us (killed
    hard), stdin ends and the receiver goes too, so none is ever left behind.
    """
    loop = asyncio.get_running_loop()
    counter = Counter()
    server = await loop.create_server(lambda: HttpConnection(delay_s, counter), HOST, port, backlog=1024)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    stdin = sys.stdin.fileno()
    loop.add_reader(stdin, lambda: os.read(stdin, 1024) or stop.set())
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await stop.wait()


class Receiver:
    """A receiver process on a free loopback port; a context manager that always stops it.

    >>> with Receiver("fast", delay_s=0) as receiver:
    ...     receiver.url("/hooks/clients")
    """

    def __init__(self, name: str, delay_s: float) -> None:
        self.name = name
        self.delay_s = delay_s
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> Receiver:
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--delay", str(self.delay_s)],
            stdin=subprocess.PIPE,  # closed when we exit, however we exit: the receiver then stops
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        ready = _read_line_within(self._process, READY_TIMEOUT_S)
        if not ready.startswith("listening "):
            self.stop()
            raise RuntimeError(f"the {self.name} receiver did not start (said {ready!r})")
        self.port = int(ready.split()[1])
        return self

    def url(self, path: str = "/hooks/clients") -> str:
        return f"http://{HOST}:{self.port}{path}"

    def posts(self) -> int:
        """How many POSTs this receiver has answered so far."""
        with urllib.request.urlopen(self.url("/stats"), timeout=5) as answer:
            return int(json.load(answer)["posts"])

    def describe(self) -> str:
        if self.delay_s:
            return f"{self.name} receiver (204 after {self.delay_s * 1000:g} ms)"
        return f"{self.name} receiver (204 at once)"

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


NGINX_CONFIG = """\
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{ worker_connections 4096; }}
http {{
    log_format posts '$request_method';
    access_log {folder}/access.log posts;
    client_body_temp_path {folder}/body;
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    server {{
        listen {host}:{port};
        location / {{ return 204; }}
    }}
}}
"""


class NginxReceiver:
    """nginx on a free loopback port answering every request ``204`` at once, in a temp folder.

    Same interface as :class:`Receiver` (``url``, ``posts``, ``describe``, a
    context manager that always stops it).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.delay_s = 0.0
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("nginx") is not None

    def start(self) -> NginxReceiver:
        self._folder = tempfile.TemporaryDirectory(prefix="moxiehook-bench-nginx-")
        folder = Path(self._folder.name)
        with socket.socket() as probe:  # a free port (nginx cannot be asked for port 0)
            probe.bind((HOST, 0))
            self.port = probe.getsockname()[1]
        config = folder / "nginx.conf"
        config.write_text(NGINX_CONFIG.format(folder=folder, host=HOST, port=self.port))
        self._process = subprocess.Popen(["nginx", "-c", str(config), "-e", str(folder / "error.log")],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, self.port), timeout=0.5).close()
                return self
            except OSError:
                if self._process.poll() is not None:
                    break
                time.sleep(0.05)
        log = (folder / "error.log").read_text() if (folder / "error.log").exists() else ""
        self.stop()
        raise RuntimeError(f"nginx did not start: {log.strip()[-300:]}")

    def url(self, path: str = "/hooks/clients") -> str:
        return f"http://{HOST}:{self.port}{path}"

    def posts(self) -> int:
        """How many POSTs nginx has logged so far (it writes each line as it answers)."""
        assert self._folder is not None
        log = Path(self._folder.name) / "access.log"
        return log.read_bytes().count(b"POST\n") if log.exists() else 0

    def describe(self) -> str:
        return f"{self.name} receiver (nginx, 204 at once)"

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()  # nginx's fast shutdown; it takes its worker with it
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

    def __enter__(self) -> NginxReceiver:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _read_line_within(process: subprocess.Popen[str], timeout_s: float) -> str:
    """The child's first stdout line, or "" if it says nothing within ``timeout_s``."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            return ""
    return process.stdout.readline().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description="A loopback webhook receiver answering 204.")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--port", type=int, default=0, help="0 = a free port")
    args = parser.parse_args()
    asyncio.run(serve(args.delay, args.port))


if __name__ == "__main__":
    main()
