"""What the benchmarks send and read: a temp config, the request, a large log.

Everything lives in one temporary folder per run. The request (body and
headers) is the one moxiehook sends for ``ClientCreate`` on the bench
endpoint, so the comparison clients (curl, a bare httpx loop, the
load generator) send exactly the same bytes.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from moxiehook import __version__
from moxiehook.catalog import sample
from moxiehook.ids import delivery_id, event_id
from moxiehook.log.records import Attempt, DeliveryRecord, encode

EVENT = "ClientCreate"
ENDPOINT = "bench"
TOKEN = "bench-token"
TEAM_HEADER = ("X-Team", "bench")
ORIGIN = "withmoxie.com"

CONFIG_TEMPLATE = """\
version = 1

[settings]
origin = "{origin}"
log_file = "{log_file}"
timeout = 10.0
max_attempts = 3
backoff = 0.5
concurrency = 8

[endpoints.{endpoint}]
enabled = true
auth = {{ type = "bearer", token = "{token}" }}
headers = {{ "{team_name}" = "{team_value}" }}

[[endpoints.{endpoint}.mappings]]
event = "{event}"
url = "{url}"
"""


def request_body() -> bytes:
    """The ClientCreate sample as moxiehook puts it on the wire (compact UTF-8 JSON)."""
    return json.dumps(sample(EVENT), ensure_ascii=False, separators=(",", ":")).encode()


def request_headers() -> dict[str, str]:
    """The headers moxiehook sends on the bench endpoint (the wire format, with bearer auth)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": f"moxiehook/{__version__}",
        "X-Event-Origin": ORIGIN,
        "X-Event-Type": EVENT,
        "Authorization": f"Bearer {TOKEN}",
        TEAM_HEADER[0]: TEAM_HEADER[1],
    }


def write_config(folder: Path, url: str, log_file: str = "log.jsonl") -> Path:
    """A config in ``folder`` whose one endpoint maps ClientCreate to ``url``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "moxiehook.toml"
    path.write_text(CONFIG_TEMPLATE.format(
        origin=ORIGIN, log_file=log_file, endpoint=ENDPOINT, token=TOKEN,
        team_name=TEAM_HEADER[0], team_value=TEAM_HEADER[1], event=EVENT, url=url))
    path.chmod(0o600)  # it holds a literal token, as moxiehook itself would write it
    return path


@dataclass(frozen=True)
class LogStats:
    records: int
    failed: int
    size_bytes: int


# Share of each outcome in the generated log (the rest is delivered).
FAILED_SHARE = 0.07
SKIPPED_SHARE = 0.01
WRITE_BATCH = 2000


def write_log(path: Path, records: int, seed: int = 1) -> LogStats:
    """Write ``records`` realistic delivery records (encoded by moxiehook) to ``path``.

    Deterministic for a given seed: ~7% failed (a 503 retried three times, or
    a refused connection), ~1% skipped, the rest delivered at the first try;
    one record a minute back from now, oldest first.
    """
    rng = random.Random(seed)
    body = sample(EVENT)
    logged_headers = {**request_headers(), "Authorization": "***"}
    start = datetime.now(UTC) - timedelta(minutes=records)
    failed = 0
    size = 0
    with open(path, "wb") as log:
        batch: list[bytes] = []
        for index in range(records):
            at = start + timedelta(minutes=index, milliseconds=rng.randrange(60_000))
            draw = rng.random()
            outcome = "failed" if draw < FAILED_SHARE else (
                "skipped" if draw < FAILED_SHARE + SKIPPED_SHARE else "delivered")
            failed += outcome == "failed"
            record = _record(rng, at, outcome, {**body, "id": f"{rng.getrandbits(96):024x}"}, logged_headers)
            batch.append(encode(record))
            if len(batch) == WRITE_BATCH:
                size += log.write(b"".join(batch))
                batch.clear()
        size += log.write(b"".join(batch))
    return LogStats(records, failed, size)


def _record(rng: random.Random, at: datetime, outcome: str, body: dict[str, Any],
            headers: dict[str, str]) -> DeliveryRecord:
    attempts: list[Attempt] = []
    response: dict[str, Any] | None = None
    status: int | None = None
    error: str | None = None
    if outcome == "delivered":
        status = 204
        attempts = [Attempt(_iso(at), 204, None, round(rng.uniform(20, 120), 1))]
        response = {"status": 204, "headers": {"server": "nginx", "date": _http_date(at)}, "body": ""}
    elif outcome == "failed" and rng.random() < 0.7:
        status = 503
        attempts = [Attempt(_iso(at + timedelta(seconds=n)), 503, None, round(rng.uniform(5, 40), 1))
                    for n in range(3)]
        response = {"status": 503, "headers": {"content-type": "text/html", "retry-after": "1"},
                    "body": "<html><body><h1>503 Service Unavailable</h1></body></html>"}
    elif outcome == "failed":
        error = "connection refused"
        attempts = [Attempt(_iso(at + timedelta(seconds=n)), None, error, 0.4) for n in range(3)]
    duration = round(sum(a.duration_ms for a in attempts), 1) if attempts else None
    return DeliveryRecord(
        id=delivery_id(), event_id=event_id(), event=EVENT, endpoint=ENDPOINT,
        url="https://crm.example.com/hooks/clients", mode="fire", replay_of=None,
        at=_iso(at), outcome=outcome, status=status, error=error, duration_ms=duration,
        attempts=attempts, request={"headers": headers, "body": body}, response=response)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _http_date(moment: datetime) -> str:
    return moment.strftime("%a, %d %b %Y %H:%M:%S GMT")
