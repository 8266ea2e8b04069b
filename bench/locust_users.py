"""The two Locust users ``bench/locust_bench.py`` compares, posting the same bytes to nginx.

- ``MoxieBench``: ``moxiehook.locust.MoxieUser`` sending ``ClientCreate`` as ``fire`` builds it
  (the catalog's sample with a fresh id, bearer auth, a custom header, a Standard Webhooks
  signature, a fresh ``webhook-id``: all made per request).
- ``PlainBench``: a plain ``FastHttpUser`` POSTing one such delivery, built once at start-up by
  the same request builder, over and over: the same body size and the same headers, none of the
  per-request work. Its rate is the ceiling of Locust's client on this machine.

Both run as fast as answers allow (``wait_time = constant(0)``). The config comes from
``$MOXIEHOOK_CONFIG`` (the bench writes it). With ``$BENCH_CPU_FILE`` set, the process writes
there the CPU time it used from the start of the test to its end, and the requests it made:
Locust's own start-up (about a CPU-second of imports) is left out of the comparison.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, events, task

from moxiehook import catalog, ids
from moxiehook.config import load_config, resolve_config_path
from moxiehook.locust import MoxieUser
from moxiehook.log import encode_body
from moxiehook.send import Delivery, prepare_endpoint, request_headers


class MoxieBench(MoxieUser):
    events = ["ClientCreate"]
    wait_time = constant(0)


def _one_delivery() -> tuple[str, bytes, dict[str, str]]:
    path = resolve_config_path()
    config = load_config(path)
    endpoint = config.endpoints["bench"]
    prepared = prepare_endpoint(endpoint, config.settings, path)
    body = catalog.sample("ClientCreate")
    body["id"] = "0" * 24
    url = endpoint.mappings[0].url
    delivery = Delivery("ClientCreate", url, body, encode_body(body), ids.event_id(), "locust")
    headers, _ = request_headers(prepared, delivery)
    return url, delivery.body_bytes, headers


URL, BODY, HEADERS = _one_delivery()


class PlainBench(FastHttpUser):
    host = URL
    wait_time = constant(0)
    max_redirects = 0

    @task
    def post(self) -> None:
        with self.client.post(URL, data=BODY, headers=HEADERS, name="ClientCreate", catch_response=True,
                              allow_redirects=False) as response:
            if not 200 <= response.status_code <= 299:
                response.failure(f"HTTP {response.status_code}")


_started: list[float] = []


def _test_start(**_: Any) -> None:
    _started.append(time.process_time())


def _test_stop(environment: Any, **_: Any) -> None:
    target = os.environ.get("BENCH_CPU_FILE")
    if target and _started:
        Path(target).write_text(json.dumps({"cpu_s": time.process_time() - _started[0],
                                            "requests": environment.stats.total.num_requests}))


events.test_start.add_listener(_test_start)
events.test_stop.add_listener(_test_stop)
