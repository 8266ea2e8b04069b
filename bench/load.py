"""Load generators that are not moxiehook, to measure a receiver's own ceiling.

``wrk`` is used when installed (C, keep-alive, far faster than any receiver
here); otherwise a pool of threads, each with one persistent
``http.client`` connection. Both send the same POST (body and headers) as
the benchmarks, for a fixed time.
"""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

WRK_GRACE_S = 30.0


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    errors: int  # non-2xx answers and socket errors
    tool: str

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def measure(url: str, body: bytes, headers: dict[str, str], connections: int,
            duration_s: float, workdir: Path) -> LoadResult:
    """POST to ``url`` from ``connections`` keep-alive clients for ``duration_s``."""
    if shutil.which("wrk"):
        return _wrk(url, body, headers, connections, duration_s, workdir)
    return _threads(url, body, headers, connections, duration_s)


def _wrk(url: str, body: bytes, headers: dict[str, str], connections: int,
         duration_s: float, workdir: Path) -> LoadResult:
    body_file = workdir / "wrk-body.json"
    body_file.write_bytes(body)
    lines = ['wrk.method = "POST"',
             f'local f = assert(io.open([==[{body_file}]==], "rb"))',
             "wrk.body = f:read('*a')",
             "f:close()"]
    lines += [f"wrk.headers[ [==[{name}]==] ] = [==[{value}]==]" for name, value in headers.items()]
    script = workdir / "wrk-post.lua"
    script.write_text("\n".join(lines) + "\n")
    threads = min(2, connections)
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s",
            "-s", str(script), url]
    output = subprocess.run(argv, capture_output=True, text=True, check=True,
                            timeout=duration_s + WRK_GRACE_S).stdout
    total = re.search(r"(\d+) requests in ([\d.]+)(m?s)", output)
    if total is None:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    seconds = float(total.group(2)) / (1000 if total.group(3) == "ms" else 1)
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return LoadResult(int(total.group(1)), seconds, errors, f"wrk -c{connections}")


def _threads(url: str, body: bytes, headers: dict[str, str], connections: int,
             duration_s: float) -> LoadResult:
    parts = urlsplit(url)
    deadline = time.perf_counter() + duration_s
    counts = [0] * connections
    errors = [0] * connections

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            while time.perf_counter() < deadline:
                connection.request("POST", parts.path, body=body, headers=headers)
                answer = connection.getresponse()
                answer.read()
                if 200 <= answer.status < 300:
                    counts[index] += 1
                else:
                    errors[index] += 1
        finally:
            connection.close()

    started = time.perf_counter()
    workers = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(duration_s + WRK_GRACE_S)
    seconds = time.perf_counter() - started
    return LoadResult(sum(counts), seconds, sum(errors), f"{connections} http.client threads")
