"""The ``listen`` receiver: auth and signature checks, answers, --save, binding errors."""

from __future__ import annotations

import base64
import hmac
import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from moxiehook.config.model import Auth, Endpoint
from moxiehook.errors import MissingVariableError, UsageError, ValidationError
from moxiehook.receive import server as receiver_module
from moxiehook.receive.server import (
    Check,
    ReceivedRequest,
    ReceiverConfig,
    RunningReceiver,
    build_check,
    check_for_endpoint,
    check_request,
    start_receiver,
)
from moxiehook.send.signing import secret_bytes, signature_headers

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"x" * 32).decode()
BODY = b'{"id": "abc", "name": "Acme"}'


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def post(url: str, body: bytes = BODY, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """POST with urllib; the status and the answer's text, 4xx included."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def serve() -> Iterator:
    """Start receivers on a free loopback port; every one is stopped at the end."""
    started: list[RunningReceiver] = []
    seen: list[ReceivedRequest] = []

    def start(check: Check | None = None, **options) -> RunningReceiver:
        config = ReceiverConfig(port=0, check=check or Check(), **options)
        running = start_receiver(config, on_request=seen.append)
        started.append(running)
        return running

    start.seen = seen  # type: ignore[attr-defined]
    yield start
    for running in started:
        running.stop()


AUTH_CASES = [
    # (auth, headers sent, accepted, reason expected when refused)
    (Auth(), {}, True, None),
    (Auth(), {"Authorization": "Bearer anything"}, True, None),
    (Auth("basic", username="ann", password="pw"), {"Authorization": basic("ann", "pw")}, True, None),
    (Auth("basic", username="ann", password="pw"), {"Authorization": "basic " + basic("ann", "pw")[6:]}, True, None),
    (Auth("basic", username="ann", password="pw"), {"Authorization": basic("ann", "nope")}, False,
     "wrong username or password"),
    (Auth("basic", username="ann", password="pw"), {"Authorization": basic("bob", "pw")}, False,
     "wrong username or password"),
    (Auth("basic", username="ann", password="pw"), {"Authorization": "Basic %%%"}, False, "not valid base64"),
    (Auth("basic", username="ann", password="pw"), {"Authorization": "Bearer pw"}, False, "not Basic auth"),
    (Auth("basic", username="ann", password="pw"), {}, False, "missing Authorization header"),
    (Auth("bearer", token="tok"), {"Authorization": "Bearer tok"}, True, None),
    (Auth("bearer", token="tok"), {"Authorization": "Bearer tok2"}, False, "wrong bearer token"),
    (Auth("bearer", token="tok"), {"Authorization": "Bearer "}, False, "wrong bearer token"),
    (Auth("bearer", token="tok"), {"Authorization": "Token tok"}, False, "not a Bearer token"),
    (Auth("bearer", token="tok"), {}, False, "missing Authorization header"),
    (Auth("custom", header="X-Api-Key", value="k1"), {"x-api-key": "k1"}, True, None),
    (Auth("custom", header="X-Api-Key", value="k1"), {"X-Api-Key": "k2"}, False, "wrong X-Api-Key value"),
    (Auth("custom", header="X-Api-Key", value="k1"), {"Authorization": "k1"}, False, "missing X-Api-Key header"),
]


@pytest.mark.parametrize(("auth", "headers", "accepted", "reason"), AUTH_CASES)
def test_check_request_for_each_auth_mode(auth: Auth, headers: dict[str, str], accepted: bool,
                                          reason: str | None) -> None:
    result = check_request(build_check(auth), headers, BODY)
    assert result.ok is accepted
    assert result.auth_ok is (None if auth.type == "none" else accepted)
    assert result.signature_ok is None
    if reason is None:
        assert result.reason is None
    else:
        assert reason in (result.reason or "")


@pytest.mark.parametrize(("auth", "headers", "accepted", "reason"), AUTH_CASES)
def test_receiver_answers_401_with_the_reason_or_the_chosen_status(
    serve, auth: Auth, headers: dict[str, str], accepted: bool, reason: str | None
) -> None:
    running = serve(build_check(auth), status=202)
    status, text = post(running.url + "/hook", headers=headers)
    if accepted:
        assert (status, text) == (202, "")
    else:
        assert status == 401
        assert text == f"unauthorized: {reason}\n" or (reason or "") in text
    [seen] = serve.seen
    assert (seen.method, seen.path, seen.status, seen.body) == ("POST", "/hook", status, BODY)


@pytest.mark.parametrize(
    ("auth", "headers"),
    [
        (Auth("basic", username="ann", password="pw"), {"Authorization": basic("ann", "pw")}),
        (Auth("bearer", token="tok"), {"Authorization": "Bearer tok"}),
        (Auth("custom", header="X-Api-Key", value="k1"), {"X-Api-Key": "k1"}),
    ],
)
def test_credentials_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch, auth: Auth,
                                                   headers: dict[str, str]) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a, b):  # type: ignore[no-untyped-def]
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(receiver_module.hmac, "compare_digest", spy)
    assert check_request(build_check(auth), headers, BODY).ok
    assert calls, "credentials must be compared with hmac.compare_digest"
    assert all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in calls)


def test_non_ascii_credentials_compare_as_bytes() -> None:
    # A token outside visible ASCII cannot be sent as a header: refused up front.
    with pytest.raises(ValidationError, match="not visible ASCII"):
        build_check(Auth("bearer", token="clé"))
    check = build_check(Auth("bearer", token="cle"))
    # http.server hands header bytes over decoded as latin-1
    received = "Bearer " + "clé".encode().decode("latin-1")
    assert not check_request(check, {"Authorization": received}, BODY).ok
    assert check_request(check, {"Authorization": "Bearer cle"}, BODY).ok


def test_variables_are_expanded_and_a_missing_one_names_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "from-env")
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    endpoint = Endpoint(name="crm", auth=Auth("bearer", token="${HOOK_TOKEN}"), signing_secret="${HOOK_SECRET}")
    check = check_for_endpoint(endpoint)
    assert check.auth.token == "from-env"
    assert check.signing_key == secret_bytes(SECRET)
    monkeypatch.delenv("HOOK_TOKEN")
    with pytest.raises(MissingVariableError, match="HOOK_TOKEN"):
        check_for_endpoint(endpoint)


def signed(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    return signature_headers(secret_bytes(secret), "evt_1", body, timestamp=timestamp)


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        (signed(BODY, OTHER_SECRET), BODY, "no webhook-signature matches"),
        (signed(BODY), BODY.replace(b"Acme", b"Evil"), "no webhook-signature matches"),
        (signed(BODY, timestamp=int(time.time()) - 600), BODY, "s off (tolerance 300 s)"),
        ({}, BODY, "missing webhook-id"),
    ],
    ids=["wrong-secret", "tampered-body", "ten-minutes-old", "unsigned"],
)
def test_a_bad_signature_is_answered_401_with_the_reason(serve, headers: dict[str, str], body: bytes,
                                                         reason: str) -> None:
    running = serve(build_check(signing_secret=SECRET))
    status, text = post(running.url + "/hook", body=body, headers=headers)
    assert status == 401
    assert text.startswith("unauthorized: signature: ")
    assert reason in text
    [seen] = serve.seen
    assert seen.check.signature_ok is False
    assert seen.check.auth_ok is None


def test_a_right_signature_and_token_are_accepted(serve) -> None:
    running = serve(build_check(Auth("bearer", token="tok"), signing_secret=SECRET))
    headers = {**signed(BODY), "Authorization": "Bearer tok"}
    assert post(running.url + "/hook", headers=headers) == (204, "")
    [seen] = serve.seen
    assert (seen.check.ok, seen.check.auth_ok, seen.check.signature_ok) == (True, True, True)


def test_both_failures_are_reported_together(serve) -> None:
    running = serve(build_check(Auth("bearer", token="tok"), signing_secret=SECRET))
    status, text = post(running.url + "/hook", headers={**signed(BODY, OTHER_SECRET), "Authorization": "Bearer x"})
    assert status == 401
    assert "wrong bearer token" in text and "signature:" in text


def test_save_writes_one_json_line_per_request_without_credentials(serve, tmp_path: Path) -> None:
    save = tmp_path / "received.jsonl"
    running = serve(build_check(Auth("custom", header="X-Api-Key", value="k1")), save=save)
    post(running.url + "/a", headers={"X-Api-Key": "k1", "X-Event-Type": "ClientCreate"})
    post(running.url + "/b", body=b"not json", headers={"X-Api-Key": "bad", "Authorization": "Bearer t"})
    running.stop()
    lines = save.read_text().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert (first["method"], first["path"], first["status"], first["auth_ok"]) == ("POST", "/a", 204, True)
    assert first["body"] == json.loads(BODY)
    assert first["headers"]["X-Event-Type"] == "ClientCreate"
    assert first["headers"]["X-Api-Key"] == "***"
    assert (second["path"], second["status"], second["auth_ok"], second["body"]) == ("/b", 401, False, "not json")
    assert second["reason"] == "wrong X-Api-Key value"
    assert second["headers"]["Authorization"] == "***"
    assert "k1" not in save.read_text() and "Bearer t" not in save.read_text()


def test_keep_alive_serves_several_requests_on_one_connection(serve) -> None:
    running = serve()
    connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=5)
    try:
        for index in range(3):
            connection.request("POST", f"/n{index}", body=BODY, headers={"Content-Type": "application/json"})
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 204
            assert answer.getheader("Connection") != "close"
    finally:
        connection.close()
    assert [seen.path for seen in serve.seen] == ["/n0", "/n1", "/n2"]


def test_a_chunked_body_is_read_whole(serve) -> None:
    running = serve()
    connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=5)
    try:
        connection.request("POST", "/chunked", body=iter([b'{"a": ', b"1}"]), encode_chunked=True,
                           headers={"Transfer-Encoding": "chunked"})
        assert connection.getresponse().status == 204
    finally:
        connection.close()
    [seen] = serve.seen
    assert seen.json_body() == (True, {"a": 1})


def test_a_port_in_use_is_a_usage_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UsageError, match=f"cannot listen on 127.0.0.1:{port}"):
            start_receiver(ReceiverConfig(port=port))


@pytest.mark.parametrize(
    ("options", "message"),
    [({"status": 99}, "--status 99"), ({"delay": -1.0}, "--delay"), ({"delay": float("nan")}, "--delay nan"),
     ({"delay": float("inf")}, "--delay inf")],
)
def test_bad_answer_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        start_receiver(ReceiverConfig(port=0, **options))


def test_stop_frees_the_port() -> None:
    running = start_receiver(ReceiverConfig(port=0))
    port = running.port
    running.stop()
    running.stop()  # idempotent
    again = start_receiver(ReceiverConfig(port=port))
    again.stop()


def test_a_non_ascii_signature_is_answered_401(serve) -> None:
    running = serve(build_check(signing_secret=SECRET))
    headers = {**signed(BODY), "webhook-signature": "v1,é"}
    connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=5)
    try:
        connection.putrequest("POST", "/hook")
        for name, value in headers.items():
            connection.putheader(name, value.encode("utf-8"))
        connection.putheader("Content-Length", str(len(BODY)))
        connection.endheaders(BODY)
        answer = connection.getresponse()
        assert answer.status == 401
        assert b"signature" in answer.read()
    finally:
        connection.close()
