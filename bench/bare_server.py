"""The ``listen`` baseline: a bare stdlib ``ThreadingHTTPServer`` answering every POST 204.

``python bench/bare_server.py READY_FILE`` binds a free port on 127.0.0.1,
writes its URL to READY_FILE and serves until killed: HTTP/1.1 keep-alive,
a thread per connection, the body read and dropped. It is what ``listen``
is built on, minus everything ``listen`` adds (checks, printing, --save).
"""

from __future__ import annotations

import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ready = sys.argv[1]
    with open(ready + ".tmp", "w") as handle:
        handle.write(f"http://127.0.0.1:{server.server_address[1]}\n")
    os.replace(ready + ".tmp", ready)
    server.serve_forever()


if __name__ == "__main__":
    main()
