"""h11 and httptools side by side, as the wire of ``fire --concurrency 1`` would use them.

``python bench/parsers.py URL BODY_FILE HEADERS_JSON COUNT`` prints one JSON
object with, for each parser:

- ``loop_s``: COUNT POSTs of the benchmark's bytes on one keep-alive connection
  to URL, each answer read by that parser (h11: moxiehook's own client,
  ``moxiehook.http.Connections``; httptools: the same request bytes written the
  same way, one ``sendall``, and the answer fed to ``HttpResponseParser``);
- ``parse_us``: the time to read one answer the receiver sends (captured from
  the first exchange) from bytes in memory, no socket: the parser alone;
- ``import_ms``: importing the parser in a fresh interpreter.

The httptools loop does only what a delivery needs of it (status, headers, a
``Content-Length`` body): it is the floor a httptools-based client could reach,
not a client.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import h11
import httptools

from moxiehook.http import Connections, Proxies


def h11_loop(url: str, body: bytes, headers: dict[str, str], count: int) -> float:
    connections = Connections(None, Proxies.none())
    started = time.perf_counter()
    for _ in range(count):
        response = connections.post(url, headers, body, 10.0, 65536)
        assert 200 <= response.status <= 299, response.status
    elapsed = time.perf_counter() - started
    connections.close()
    return elapsed


class _Answer:
    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, data: bytes) -> None:
        self.body += data

    def on_message_complete(self) -> None:
        self.done = True


def httptools_loop(url: str, body: bytes, headers: dict[str, str], count: int) -> tuple[float, bytes]:
    parts = urlsplit(url)
    request = (f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
               + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
               + f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body
    sock = socket.create_connection((parts.hostname, parts.port or 80))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    first = b""
    started = time.perf_counter()
    for _ in range(count):
        sock.settimeout(10.0)
        sock.sendall(request)
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        while not answer.done:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            first = first or data
            parser.feed_data(data)
        assert 200 <= parser.get_status_code() <= 299
    elapsed = time.perf_counter() - started
    sock.close()
    return elapsed, first


def parse_only(answer: bytes, rounds: int = 20000) -> dict[str, float]:
    request, end = h11.Request(method="POST", target="/", headers=[("Host", "moxiehook")]), h11.EndOfMessage()
    started = time.perf_counter()
    for _ in range(rounds):  # as moxiehook.http does it: the request event built once
        client = h11.Connection(h11.CLIENT, max_incomplete_event_size=65536)
        client.send(request)
        client.send(end)
        client.receive_data(answer)
        while type(client.next_event()) is not h11.EndOfMessage:
            pass
    h11_us = (time.perf_counter() - started) / rounds * 1e6
    started = time.perf_counter()
    for _ in range(rounds):
        collected = _Answer()
        httptools.HttpResponseParser(collected).feed_data(answer)
    return {"h11": h11_us, "httptools": (time.perf_counter() - started) / rounds * 1e6}


def import_ms(module: str, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                             capture_output=True, text=True, check=True).stderr
        times.append(int(out.strip().splitlines()[-1].split("|")[1]) / 1000)
    return sorted(times)[len(times) // 2]


def main() -> None:
    url, body_file, headers_json, count_text = sys.argv[1:5]
    body, headers, count = Path(body_file).read_bytes(), json.loads(headers_json), int(count_text)
    h11_times, httptools_times, answer = [], [], b""
    for _ in range(5):  # taking turns
        h11_times.append(h11_loop(url, body, headers, count))
        elapsed, answer = httptools_loop(url, body, headers, count)
        httptools_times.append(elapsed)
    parse = parse_only(answer)
    print(json.dumps({
        "count": count,
        "answer": answer.decode("latin-1"),
        "h11": {"loop_s": sorted(h11_times)[2], "parse_us": parse["h11"], "import_ms": import_ms("h11")},
        "httptools": {"loop_s": sorted(httptools_times)[2], "parse_us": parse["httptools"],
                      "import_ms": import_ms("httptools")},
    }))


if __name__ == "__main__":
    main()
