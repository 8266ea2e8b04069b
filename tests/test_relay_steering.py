"""Where the relay sends: only to the ``--forward-to`` origin, never where a sender steers it.

Hostile request targets are written on a raw socket (an HTTP client would fix them up), to a real
``listen --forward-to`` process; two loopback receivers stand for the app and for "somewhere else".
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from moxiehook.log.records import Attempt, DeliveryRecord, LogWriter
from tests import test_listen_forward
from tests.conftest import Receiver, run_moxiehook
from tests.test_listen_forward import free_port, post

relay = test_listen_forward.relay  # the fixture: a real listen --forward-to process


@pytest.fixture
def elsewhere() -> Receiver:
    """A second server on loopback: nothing may ever reach it."""
    other = Receiver().start()
    yield other
    other.stop()


def records(folder: Path) -> list[dict]:
    """The delivery records of the config-less log listen writes in ``folder``."""
    path = folder / "moxiehook-log.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if json.loads(line).get("kind") == "delivery"]


def raw(url: str, target: str, body: bytes = b'{"id": 1}') -> tuple[int, bytes]:
    """Send ``POST <target> HTTP/1.1`` exactly as written; the status and body of the answer."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"POST {target} HTTP/1.1\r\nHost: {host}:{port}\r\nX-Event-Type: ClientCreate\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), rest


HOSTILE = [
    "@127.0.0.1:{other}/x",  # userinfo: base + '@host:port/x' reached another port
    "0/x",  # base 'http://127.0.0.1:5000' + '0/x' was port 50000
    ":{other}/x",
    "127.0.0.1:{other}",  # authority-form
    "[::1]:{other}/x", "@[::1]:{other}/x",  # IPv6 literals
    "*",  # asterisk-form
    "x/y",
    "/../x", "/hooks/../../x", "/%2e%2e/x", "/%2E%2e/x", "/a/./x", "/a/%2e/x", "/%2e/x",
    "/x#fragment",
    "/x\\..\\y",
]


@pytest.mark.parametrize("target", HOSTILE)
def test_a_target_that_is_not_origin_form_is_400_and_goes_nowhere(relay, receiver: Receiver, elsewhere: Receiver,
                                                                   tmp_path: Path, target: str) -> None:
    listener = relay(receiver.url("/base"))
    status, body = raw(listener.url, target.format(other=elsewhere.port))
    assert status == 400, body
    assert b"request target" in body
    assert receiver.requests == [] and elsewhere.requests == []
    assert records(tmp_path) == []  # nothing was forwarded, so nothing is logged to replay
    code, _, stderr = listener.stop()
    assert code == 0 and "Traceback" not in stderr


@pytest.mark.parametrize("target", [
    "http://127.0.0.1:{other}/hooks/a?b=1",
    "http://evil.example/hooks/a?b=1",
    "https://user:pw@127.0.0.1:{other}/hooks/a?b=1",
    "http://[::1]:{other}/hooks/a?b=1",
    "HTTP://127.0.0.1:{other}/hooks/a?b=1",
])
def test_an_absolute_form_target_is_reduced_to_its_path_on_the_forward_to_origin(
        relay, receiver: Receiver, elsewhere: Receiver, tmp_path: Path, target: str) -> None:
    listener = relay(receiver.url("/base"))
    status, _ = raw(listener.url, target.format(other=elsewhere.port))
    assert status == 200
    [got] = receiver.requests
    assert got.path == "/base/hooks/a?b=1"
    assert elsewhere.requests == []
    listener.stop()
    [record] = records(tmp_path)
    assert record["url"] == receiver.url("/base/hooks/a?b=1")


def test_a_leading_double_slash_stays_a_path_on_the_origin(relay, receiver: Receiver, elsewhere: Receiver) -> None:
    listener = relay(receiver.url(""))
    status, _ = raw(listener.url, f"//127.0.0.1:{elsewhere.port}/x")
    assert status in (200, 400)
    assert elsewhere.requests == []
    assert all(r.path.endswith("/x") for r in receiver.requests)
    listener.stop()


def test_502_and_504_bodies_do_not_reveal_the_apps_url(relay, tmp_path: Path) -> None:
    dead = free_port()
    listener = relay(f"http://127.0.0.1:{dead}/secret-base")
    status, _, body = post(listener.url, "/hooks/x", b"{}", {"X-Event-Type": "ClientCreate"})
    assert status == 502
    assert b"secret-base" not in body and str(dead).encode() not in body
    assert b"did not answer" in body
    listener.stop()


def hostile_record(url: str) -> DeliveryRecord:
    at = "2026-11-28T14:00:00.000Z"
    return DeliveryRecord(
        id="dlv_01HOSTILE0000000000000000", event_id="evt_01HOSTILE0000000000000000", event="ClientCreate",
        endpoint="listen", url=url, mode="forward", replay_of=None, at=at, outcome="failed", status=500,
        error="HTTP 500", duration_ms=1.0, attempts=[Attempt(at, 500, None, 1.0)],
        request={"method": "POST", "headers": {"X-Event-Type": "ClientCreate"}, "body": {"id": 1}},
        response=None)


@pytest.mark.parametrize("shape", [
    "http://127.0.0.1:{app}@127.0.0.1:{other}/x",  # what the old relay logged for '@127.0.0.1:OTHER/x'
    "http://127.0.0.1:{app}@[::1]:{other}/x",
    "http://127.0.0.1:{app}/../x",
    "http://127.0.0.1:{app}/%2e%2e/x",
    "http://127.0.0.1:{app}/x#y",
])
def test_replay_of_an_already_logged_hostile_forward_record_sends_nothing(
        tmp_path: Path, receiver: Receiver, elsewhere: Receiver, shape: str) -> None:
    with LogWriter(tmp_path / "moxiehook-log.jsonl") as writer:
        writer.append(hostile_record(shape.format(app=receiver.port, other=elsewhere.port)))
    for args in (["dlv_01HOSTILE0000000000000000"], ["--failed"]):
        result = run_moxiehook("replay", *args, cwd=tmp_path, timeout=30)
        assert result.returncode == 2, result.stderr
        assert "nothing was sent" in result.stderr and "--to" in result.stderr
        assert "Traceback" not in result.stderr
    assert receiver.requests == [] and elsewhere.requests == []


def test_replay_to_of_a_hostile_record_goes_where_to_says(tmp_path: Path, receiver: Receiver,
                                                          elsewhere: Receiver) -> None:
    with LogWriter(tmp_path / "moxiehook-log.jsonl") as writer:
        writer.append(hostile_record(f"http://127.0.0.1:{receiver.port}@127.0.0.1:{elsewhere.port}/x"))
    result = run_moxiehook("replay", "dlv_01HOSTILE0000000000000000", "--to", receiver.url("/fixed"),
                           cwd=tmp_path, timeout=30)
    assert result.returncode == 0, result.stderr
    assert [r.path for r in receiver.requests] == ["/fixed"] and elsewhere.requests == []


def test_forward_to_with_userinfo_is_refused(tmp_path: Path) -> None:
    result = run_moxiehook("listen", "--port", "0", "--forward-to", "http://u:p@127.0.0.1:9", cwd=tmp_path,
                           timeout=20)
    assert result.returncode == 2
    assert "holds credentials" in result.stderr


@pytest.mark.parametrize("target", ["/%252e%252e/x", "/a%2f..%2fx", "/a%2F%2E%2E%2Fx", "/x%5c..%5cy"])
def test_encoded_dot_segments_and_backslashes_are_refused_however_deep(relay, receiver: Receiver,
                                                                       target: str) -> None:
    listener = relay(receiver.url("/base"))
    status, _ = raw(listener.url, target)
    assert status == 400
    assert receiver.requests == []
    listener.stop()
