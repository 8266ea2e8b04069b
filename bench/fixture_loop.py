"""``moxie.fire`` into a WSGI app in a loop: ``python bench/fixture_loop.py COUNT flask|wsgi|flask-client``.

Prints one JSON line: ``{"deliveries": N, "seconds": S, "cpu_seconds": C}``, the
wall and CPU time of the loop alone (after a warm-up of 200), as a test suite
firing many deliveries sees it (CPU time moves less on a busy machine). Every
answer must be 204 and the app must have counted every request, or the script
fails. ``flask-client`` is the comparison for scale: Flask's own
test client posting the same bytes with the same headers, with no moxiehook.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from flask import Flask, request

from moxiehook.testing import MoxieFixture

WARM_UP = 200
AUTH = {"type": "bearer", "token": "bench-token"}
PATH = "/hooks/clients"


def flask_app(seen: list[int]) -> Flask:
    app = Flask(__name__)

    @app.post(PATH)
    def clients() -> tuple[str, int]:
        if request.headers.get("Authorization") != "Bearer bench-token" or not request.get_json()["id"]:
            return "", 401
        seen[0] += 1
        return "", 204

    return app


def wsgi_app(seen: list[int]) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        json.loads(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
        seen[0] += 1
        start_response("204 No Content", [])
        return []

    return app


def main() -> None:
    count, kind = int(sys.argv[1]), sys.argv[2]
    seen = [0]
    app = wsgi_app(seen) if kind == "wsgi" else flask_app(seen)
    with MoxieFixture() as moxie:
        if kind == "flask-client":
            sent = moxie.fire("ClientCreate", app=app, path=PATH, auth=AUTH).request
            client = app.test_client()

            def deliver() -> int:
                return client.post(PATH, data=sent.content, headers=dict(sent.headers)).status_code
        else:
            def deliver() -> int:
                return moxie.fire("ClientCreate", app=app, path=PATH, auth=AUTH).status_code

        for _ in range(WARM_UP):
            deliver()
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(count):
            if deliver() != 204:
                sys.exit("an answer was not 204")
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    if seen[0] != count + WARM_UP + (kind == "flask-client"):
        sys.exit(f"the app counted {seen[0]} requests")
    print(json.dumps({"deliveries": count, "seconds": seconds, "cpu_seconds": cpu_seconds}))


if __name__ == "__main__":
    main()
