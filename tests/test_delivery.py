"""One delivery: what each answer means, retries, timeouts, wire headers, signing, log encoding."""

from __future__ import annotations

import json
import socket
import types
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import standardwebhooks

from moxiehook import catalog
from moxiehook.config.model import Auth, Endpoint, Settings
from moxiehook.errors import MissingVariableError
from moxiehook.log import records as deliverylog
from moxiehook.send import delivery
from moxiehook.send.delivery import Delivery, Verdict, classify
from tests.conftest import Answer, Receiver

DISABLE_ON = (401, 403, 404, 405, 410)


@pytest.fixture(scope="module")
def shared_receiver() -> Iterator[Receiver]:
    """One receiver for a table of cases, each on its own path (stopping one takes 0.5 s)."""
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED), (201, Verdict.DELIVERED), (204, Verdict.DELIVERED), (299, Verdict.DELIVERED),
        (401, Verdict.DISABLE), (403, Verdict.DISABLE), (404, Verdict.DISABLE), (405, Verdict.DISABLE),
        (410, Verdict.DISABLE),
        (408, Verdict.RETRY), (425, Verdict.RETRY), (429, Verdict.RETRY), (500, Verdict.RETRY),
        (502, Verdict.RETRY), (503, Verdict.RETRY), (599, Verdict.RETRY), (None, Verdict.RETRY),
        (301, Verdict.FAIL), (302, Verdict.FAIL), (304, Verdict.FAIL), (400, Verdict.FAIL),
        (409, Verdict.FAIL), (422, Verdict.FAIL), (451, Verdict.FAIL),
    ],
)
def test_classify_follows_the_spec_table(status: int | None, verdict: Verdict) -> None:
    assert classify(status, DISABLE_ON) is verdict


def test_classify_uses_the_configured_disable_on() -> None:
    assert classify(404, [410]) is Verdict.FAIL
    assert classify(503, [503]) is Verdict.DISABLE


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    assert delivery.backoff_delay(0.5, 1, rng=lambda: 0.5) == pytest.approx(0.5)
    assert delivery.backoff_delay(0.5, 3, rng=lambda: 0.5) == pytest.approx(2.0)
    assert delivery.backoff_delay(0.5, 2, rng=lambda: 0.0) == pytest.approx(0.8)
    assert delivery.backoff_delay(0.5, 2, rng=lambda: 1.0) == pytest.approx(1.2)
    assert delivery.backoff_delay(0.5, 20, rng=lambda: 1.0) == 30.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("3", 3.0), ("0", 0.0), ("3600", 60.0), ("Sat, 28 Nov 2026 14:00:10 GMT", 10.0),
     ("Sat, 28 Nov 2026 13:00:00 GMT", 0.0), ("soon", None), (None, None)],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    now = 1795874400.0  # 2026-11-28T14:00:00Z
    assert delivery.parse_retry_after(value, now=now) == seconds


# ---------------------------------------------------------------------------
# on the wire, against the loopback receiver


def _endpoint(**changes: object) -> Endpoint:
    return Endpoint(name="crm", **changes)  # type: ignore[arg-type]


def _send(receiver: Receiver, endpoint: Endpoint, path: str = "/hook", settings: Settings | None = None,
          body: object = None, sleeps: list[float] | None = None) -> tuple[deliverylog.DeliveryRecord, Verdict]:
    settings = settings or Settings(backoff=0.01, timeout=2.0)
    prepared = delivery.prepare_endpoint(endpoint, settings, Path("moxiehook.toml"))
    body = catalog.sample("ClientCreate") if body is None else body
    job = Delivery("ClientCreate", receiver.url(path), body, deliverylog.encode_body(body), "evt_01TEST")
    recorded = sleeps if sleeps is not None else []
    wire = delivery.WireSender(None)
    try:
        return delivery.send(wire, prepared, job, settings, sleep=recorded.append)
    finally:
        wire.close()


@pytest.mark.parametrize(
    ("auth", "name", "value"),
    [
        (Auth("basic", username="ann", password="pw"), "authorization", "Basic YW5uOnB3"),
        (Auth("bearer", token="t0k"), "authorization", "Bearer t0k"),
        (Auth("custom", header="X-Api-Key", value="k3y"), "x-api-key", "k3y"),
    ],
)
def test_each_auth_mode_on_the_wire(receiver: Receiver, auth: Auth, name: str, value: str) -> None:
    record, verdict = _send(receiver, _endpoint(auth=auth))
    assert verdict is Verdict.DELIVERED
    assert receiver.requests[0].headers[name] == value
    logged = {k.lower(): v for k, v in record.request["headers"].items()}
    assert logged[name] == "***"


def test_no_auth_sends_no_authorization(receiver: Receiver) -> None:
    _send(receiver, _endpoint())
    assert "authorization" not in receiver.requests[0].headers


def test_headers_and_body_on_the_wire(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_KEY", "from-env")
    endpoint = _endpoint(headers={"X-Team": "ops", "X-Key": "${TEAM_KEY}"})
    record, _ = _send(receiver, endpoint, settings=Settings(origin="example.test", backoff=0.01))
    got = receiver.requests[0]
    assert got.method == "POST"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"] == f"moxiehook/{delivery.__version__}"
    assert got.headers["x-event-origin"] == "example.test"
    assert got.headers["x-event-type"] == "ClientCreate"
    assert got.headers["x-team"] == "ops" and got.headers["x-key"] == "from-env"
    assert got.json() == catalog.sample("ClientCreate")  # the bare object
    assert record.request["headers"]["X-Key"] == "***" and record.request["headers"]["X-Team"] == "ops"
    assert "from-env" not in json.dumps(record.to_dict())


def test_missing_variable_names_it() -> None:
    with pytest.raises(MissingVariableError, match="CRM_TOKEN"):
        delivery.prepare_endpoint(_endpoint(auth=Auth("bearer", token="${CRM_TOKEN}")), Settings(), None)


@pytest.mark.parametrize(
    ("status", "outcome", "attempts", "verdict"),
    [
        (200, "delivered", 1, Verdict.DELIVERED),
        (204, "delivered", 1, Verdict.DELIVERED),
        (401, "failed", 1, Verdict.DISABLE),
        (403, "failed", 1, Verdict.DISABLE),
        (404, "failed", 1, Verdict.DISABLE),
        (405, "failed", 1, Verdict.DISABLE),
        (410, "failed", 1, Verdict.DISABLE),
        (408, "failed", 3, Verdict.RETRY),
        (425, "failed", 3, Verdict.RETRY),
        (429, "failed", 3, Verdict.RETRY),
        (500, "failed", 3, Verdict.RETRY),
        (503, "failed", 3, Verdict.RETRY),
        (400, "failed", 1, Verdict.FAIL),
        (422, "failed", 1, Verdict.FAIL),
        (301, "failed", 1, Verdict.FAIL),
    ],
)
def test_every_row_of_the_table_on_the_wire(shared_receiver: Receiver, status: int, outcome: str,
                                            attempts: int, verdict: Verdict) -> None:
    path = f"/row/{status}"
    shared_receiver.answer(path, Answer(status=status, body="nope" if status >= 300 else "ok"))
    record, got = _send(shared_receiver, _endpoint(), path, settings=Settings(backoff=0.01, max_attempts=3))
    assert (record.outcome, len(record.attempts), got) == (outcome, attempts, verdict)
    assert len(shared_receiver.requests_to(path)) == attempts
    assert record.status == status and record.response is not None
    assert record.response["status"] == status
    assert (record.error is None) == (outcome == "delivered")


def test_a_retry_that_succeeds_is_delivered(receiver: Receiver) -> None:
    receiver.answer("/hook", Answer(status=503), Answer(status=200))
    sleeps: list[float] = []
    record, verdict = _send(receiver, _endpoint(), sleeps=sleeps)
    assert verdict is Verdict.DELIVERED and [a.status for a in record.attempts] == [503, 200]
    assert len(sleeps) == 1 and 0.008 <= sleeps[0] <= 0.012  # backoff 0.01 ± 20 %


def test_retry_after_is_honoured(receiver: Receiver) -> None:
    receiver.answer("/hook", Answer(status=429, headers={"Retry-After": "2"}), Answer(status=200))
    sleeps: list[float] = []
    record, _ = _send(receiver, _endpoint(), sleeps=sleeps)
    assert record.outcome == "delivered"
    assert sleeps == [2.0]


def test_timeout_is_retried_then_failed(receiver: Receiver) -> None:
    receiver.answer("/hook", Answer(delay=0.6))
    record, verdict = _send(receiver, _endpoint(timeout=0.2), settings=Settings(max_attempts=2, backoff=0.01))
    assert verdict is Verdict.RETRY and record.outcome == "failed"
    assert [a.status for a in record.attempts] == [None, None]
    assert "timeout" in (record.error or "") and record.response is None


@pytest.mark.parametrize("kind", ["wire", "httpx"])
def test_connection_refused_is_a_failure_without_response(kind: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    prepared = delivery.prepare_endpoint(_endpoint(), Settings(), None)
    job = Delivery("ClientCreate", f"http://127.0.0.1:{port}/hook", {}, b"{}", "evt_1")
    with httpx.Client() as client:
        sender = delivery.WireSender(None) if kind == "wire" else delivery.HttpxSender(client)
        record, verdict = delivery.send(sender, prepared, job, Settings(max_attempts=2), sleep=lambda s: None)
    assert record.error == "connection error: connection refused (after 2 attempts)"
    assert verdict is Verdict.RETRY and len(record.attempts) == 2
    assert record.outcome == "failed" and record.status is None and record.response is None
    assert "connection" in (record.error or "")


def test_redirect_is_not_followed(receiver: Receiver) -> None:
    receiver.answer("/hook", Answer(status=302, headers={"Location": receiver.url("/elsewhere")}))
    record, verdict = _send(receiver, _endpoint())
    assert verdict is Verdict.FAIL and record.outcome == "failed"
    assert receiver.requests_to("/elsewhere") == []
    assert "302 Found" in (record.error or "") and "/elsewhere" in (record.error or "")


def test_response_body_is_capped_in_the_log(receiver: Receiver) -> None:
    receiver.answer("/hook", Answer(status=200, body="x" * (200 * 1024)))
    record, _ = _send(receiver, _endpoint())
    assert record.response is not None and len(record.response["body"]) == 4096


def test_signed_attempts_verify_and_keep_the_webhook_id(receiver: Receiver,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from moxiehook.send import signing

    start = int(time.time())
    clock = iter(range(start, start + 10))
    monkeypatch.setattr(signing, "time", types.SimpleNamespace(time=lambda: next(clock)))
    receiver.answer("/hook", Answer(status=500), Answer(status=200))
    record, _ = _send(receiver, _endpoint(signing_secret=SECRET))
    first, second = receiver.requests
    for got in (first, second):
        standardwebhooks.Webhook(SECRET).verify(got.body, got.headers)  # raises on a mismatch
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "evt_01TEST"
    assert first.headers["webhook-timestamp"] != second.headers["webhook-timestamp"]
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]
    assert record.request["headers"]["webhook-signature"] == second.headers["webhook-signature"]


def test_encode_record_matches_the_log_module() -> None:
    body = {"name": "Zoë", "n": [1, 2.5, None]}
    record = deliverylog.DeliveryRecord(
        id="dlv_1", event_id="evt_1", event="ClientCreate", endpoint="crm", url="http://x/", mode="fire",
        replay_of=None, at="2026-01-01T00:00:00.000Z", outcome="failed", status=500, error="HTTP 500",
        duration_ms=1.5, attempts=[deliverylog.Attempt("2026-01-01T00:00:00.000Z", 500, "HTTP 500", 1.2)],
        request={"headers": {"Authorization": "***"}, "body": body},
        response={"status": 500, "headers": {"a": "b"}, "body": "é"},
    )
    line = deliverylog.encode_record(record, deliverylog.encode_body(body))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == json.loads(deliverylog.encode(record))


def test_an_attempt_ends_at_its_timeout_even_if_bytes_keep_dribbling() -> None:
    """Each read is bounded, and so is the whole attempt."""
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    stop = threading.Event()

    def dribble() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            for _ in range(40):  # 40 bytes over 4 s at most
                if stop.wait(0.1):
                    return
                try:
                    conn.sendall(b"a")
                except OSError:
                    return

    thread = threading.Thread(target=dribble, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    prepared = delivery.prepare_endpoint(_endpoint(timeout=0.5), Settings(), None)
    try:
        record, verdict = delivery.send(delivery.WireSender(None), prepared,
                                        Delivery("ClientCreate", url, {}, b"{}", "evt_1"), Settings(max_attempts=1))
    finally:
        stop.set()
        thread.join(5)
        server.close()
    assert verdict is Verdict.DELIVERED  # the status came in time; the body was cut short
    assert record.response is not None and len(record.response["body"]) < 40


def test_one_sender_reuses_its_connection_and_retries(receiver: Receiver) -> None:
    """One WireSender for several deliveries: answers and retries as usual, then a refused one."""
    receiver.answer("/hook", Answer(status=503), Answer(status=200))
    settings = Settings(backoff=0.01, timeout=2.0, max_attempts=3)
    prepared = delivery.prepare_endpoint(_endpoint(), settings, Path("moxiehook.toml"))
    body = catalog.sample("ClientCreate")
    job = Delivery("ClientCreate", receiver.url("/hook"), body, deliverylog.encode_body(body), "evt_01TEST")
    wire = delivery.WireSender(None)
    try:
        record, verdict = delivery.send(wire, prepared, job, settings, sleep=lambda s: None)
        assert verdict is Verdict.DELIVERED and [a.status for a in record.attempts] == [503, 200]
        assert [r.json() for r in receiver.requests] == [body, body]
        closed = Delivery("ClientCreate", "http://127.0.0.1:9/hook", body, deliverylog.encode_body(body), "evt_2")
        record, verdict = delivery.send(wire, prepared, closed, Settings(max_attempts=1), sleep=lambda s: None)
        assert verdict is Verdict.RETRY and record.outcome == "failed" and "connection error" in (record.error or "")
    finally:
        wire.close()
