"""Concurrent senders for the relay soak (``bench/run.py relay`` and the slow test).

``python bench/relay_senders.py HOST PORT NAME THREADS SECONDS`` opens THREADS
keep-alive connections to HOST:PORT and, on each, POSTs one request after the
other for SECONDS, every body carrying a unique key (``NAME-thread-n``). It
prints one JSON array of ``[key, status]`` pairs: what each request got, so
the caller can check that nothing was lost or answered twice.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time


def main() -> None:
    host, name = sys.argv[1], sys.argv[3]
    port, threads, seconds = int(sys.argv[2]), int(sys.argv[4]), float(sys.argv[5])
    results: list[tuple[str, int]] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def run(thread: int) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=60)
        sent: list[tuple[str, int]] = []
        start.wait()
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            key = f"{name}-{thread}-{n}"
            connection.request("POST", "/hooks/clients", body=json.dumps({"key": key}),
                               headers={"Content-Type": "application/json", "X-Event-Type": "ClientCreate"})
            response = connection.getresponse()
            response.read()
            sent.append((key, response.status))
            n += 1
        connection.close()
        with lock:
            results.extend(sent)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
