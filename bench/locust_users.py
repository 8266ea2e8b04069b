"""The two Locust users ``bench/locust_bench.py`` compares, posting the same bytes to nginx.

- ``MoxieBench``: ``moxiehook.locust.MoxieUser`` sending ``ClientCreate`` as ``fire`` builds it
  (the catalog's sample with a fresh id, bearer auth, a custom header, a Standard Webhooks
  signature, a fresh ``webhook-id``: all made per request), over the client ``fire`` uses.
- ``PlainBench``: a plain ``FastHttpUser`` POSTing one such delivery, built once at start-up by
  the same request builder, over and over: the same body size and the same headers, none of the
  per-request work, over Locust's fast client. Its rate is the ceiling of Locust's own client on
  this machine.

Both run as fast as answers allow (``wait_time = constant(0)``). The config comes from
``$MOXIEHOOK_CONFIG`` (the bench writes it). Run as a script (``alternate``), the two take turns
in one process, Locust used as a library: the comparison of their cost per request.
"""

from __future__ import annotations

import json
import time

from locust import FastHttpUser, constant, task

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



def alternate(rounds: int, seconds: float, users: int) -> dict[str, list[float]]:
    """Requests per CPU-second of each user class, taking turns ``rounds`` times in this process.

    Locust as a library (one ``Environment`` per turn): turns a few seconds long, one after the
    other in one process, so both classes meet the same machine, warm, as other work comes and
    goes. Counted from the moment every user runs to the end of the turn.
    """
    import gevent
    from locust.env import Environment

    figures: dict[str, list[float]] = {"MoxieBench": [], "PlainBench": []}
    for _ in range(rounds):
        for user_class in (MoxieBench, PlainBench):
            environment = Environment(user_classes=[user_class])
            runner = environment.create_local_runner()
            runner.start(users, spawn_rate=users * 4)
            gevent.sleep(0.5)  # every user started a quarter of a second ago
            requests, cpu = environment.stats.total.num_requests, time.process_time()
            gevent.sleep(seconds)
            requests = environment.stats.total.num_requests - requests
            cpu = time.process_time() - cpu
            runner.quit()
            if environment.stats.total.num_failures:
                raise SystemExit(f"{user_class.__name__}: {environment.stats.total.num_failures} requests failed")
            figures[user_class.__name__].append(requests / cpu)
    return figures


if __name__ == "__main__":  # python bench/locust_users.py ROUNDS SECONDS USERS: JSON figures on stdout
    import sys

    rounds, seconds, users = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(alternate(rounds, seconds, users)))
