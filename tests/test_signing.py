"""Standard Webhooks signing: the spec's test vector, and `listen` rejecting bad
signatures from a real `fire` (which then disables the endpoint like any 401)."""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import standardwebhooks

from moxiehook.send import signing
from tests.conftest import run_moxiehook
from tests.test_cli_listen import listen, write_config  # noqa: F401 - `listen` is a fixture

RIGHT = "whsec_" + base64.b64encode(b"r" * 32).decode()
WRONG = "whsec_" + base64.b64encode(b"w" * 32).decode()


def test_the_standard_webhooks_test_vector() -> None:
    # The example from the Standard Webhooks specification, computed by hand there.
    key = signing.secret_bytes("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signature = signing.sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_headers_verify_with_the_reference_library() -> None:
    body = b'{"id": "abc", "name": "Acme"}'
    headers = signing.signature_headers(signing.secret_bytes(RIGHT), "evt_01ABC", body)
    assert standardwebhooks.Webhook(RIGHT).verify(body, headers) == {"id": "abc", "name": "Acme"}
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(WRONG).verify(body, headers)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda h, b: (h, b + b" "), "no webhook-signature matches"),
        (lambda h, b: ({**h, "webhook-timestamp": str(int(time.time()) - 600)}, b), "s off"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-id"}, b), "missing"),
    ],
    ids=["tampered-body", "ten-minutes-old", "missing-id"],
)
def test_verify_refuses_with_a_reason(change, reason: str) -> None:
    key = signing.secret_bytes(RIGHT)
    body = b'{"ok": true}'
    headers, sent = change(signing.signature_headers(key, "evt_1", body), body)
    with pytest.raises(signing.SignatureMismatch, match=reason):
        signing.verify(key, headers, sent)
    signing.verify(key, signing.signature_headers(key, "evt_1", body), body)  # the untouched one passes


# ---------------------------------------------------------------------------
# `listen --signing-secret` driven by a real `fire`


def signed_endpoint(name: str, secret: str, url: str) -> str:
    return (f'auth = {{ type = "none" }}\nsigning_secret = "{secret}"\n'
            f'[[endpoints.{name}.mappings]]\nevent = "ClientCreate"\nurl = "{url}"')


def fire(config: Path, cwd: Path) -> tuple[int, str]:
    result = run_moxiehook("--config", str(config), "fire", "ClientCreate", cwd=cwd)
    return result.returncode, result.stderr


def endpoint_state(config: Path, name: str) -> dict:
    return tomllib.loads(config.read_text())["endpoints"][name]


def test_listen_accepts_the_right_secret_and_a_wrong_one_disables_the_endpoint(listen, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    listener = listen("--signing-secret", RIGHT, "--save", "saved.jsonl")
    config = write_config(tmp_path / "moxiehook.toml", {
        "good": signed_endpoint("good", RIGHT, listener.url("/good")),
        "bad": signed_endpoint("bad", WRONG, listener.url("/bad")),
    })

    code, stderr = fire(config, tmp_path)

    assert code == 1
    assert "endpoint 'bad' was disabled: HTTP 401" in stderr
    assert endpoint_state(config, "good")["enabled"] is True
    assert endpoint_state(config, "bad")["enabled"] is False
    listener.stop()
    saved = {s["path"]: s for s in map(json.loads, (tmp_path / "saved.jsonl").read_text().splitlines())}
    assert (saved["/good"]["status"], saved["/good"]["signature_ok"]) == (204, True)
    assert (saved["/bad"]["status"], saved["/bad"]["signature_ok"]) == (401, False)
    assert "no webhook-signature matches" in saved["/bad"]["reason"]
    log = (tmp_path / "log.jsonl").read_text()
    assert RIGHT not in log and WRONG not in log  # the secret never reaches the log


class TamperingProxy:
    """Forwards each request to ``target_port`` with one byte of the body changed."""

    def __init__(self, target_port: int) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                tampered = body.replace(b"Client", b"Cl1ent", 1)
                assert tampered != body
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                upstream = http.client.HTTPConnection("127.0.0.1", target_port, timeout=10)
                upstream.request("POST", self.path, body=tampered, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                self.send_response(answer.status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tampering_proxy() -> Iterator:
    proxies: list[TamperingProxy] = []

    def start(port: int) -> TamperingProxy:
        proxies.append(TamperingProxy(port))
        return proxies[-1]

    yield start
    for proxy in proxies:
        proxy.close()


def test_listen_rejects_a_tampered_body(listen, tampering_proxy, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    listener = listen("--signing-secret", RIGHT, "--save", "saved.jsonl")
    proxy = tampering_proxy(listener.port)
    config = write_config(tmp_path / "moxiehook.toml", {
        "crm": signed_endpoint("crm", RIGHT, f"http://127.0.0.1:{proxy.port}/crm"),
    })

    code, stderr = fire(config, tmp_path)

    assert code == 1
    assert "endpoint 'crm' was disabled: HTTP 401" in stderr
    assert endpoint_state(config, "crm")["enabled"] is False
    listener.stop()
    [saved] = map(json.loads, (tmp_path / "saved.jsonl").read_text().splitlines())
    assert saved["status"] == 401 and "no webhook-signature matches" in saved["reason"]


def test_listen_rejects_a_signature_ten_minutes_old(listen, cli, tmp_path: Path, monkeypatch) -> None:  # noqa: F811 - the fixture
    listener = listen("--signing-secret", RIGHT, "--save", "saved.jsonl")
    config = write_config(tmp_path / "moxiehook.toml", {
        "crm": signed_endpoint("crm", RIGHT, listener.url("/crm")),
    })
    # fire in-process with the signer's clock ten minutes behind (only the signer's).
    behind = time.time() - 600

    class SlowClock:
        @staticmethod
        def time() -> float:
            return behind

    monkeypatch.setattr(signing, "time", SlowClock)

    result = cli("fire", "ClientCreate", config=config)

    assert result.exit_code == 1
    assert "endpoint 'crm' was disabled: HTTP 401" in result.stderr
    assert endpoint_state(config, "crm")["enabled"] is False
    listener.stop()
    [saved] = map(json.loads, (tmp_path / "saved.jsonl").read_text().splitlines())
    assert saved["status"] == 401 and "tolerance 300 s" in saved["reason"]
