"""A relay that forwards to itself: refused at start when it can be seen, a 508 at run time when not."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from moxiehook.receive import is_self_forward
from tests import test_listen_forward
from tests.conftest import Receiver, run_moxiehook
from tests.test_listen_forward import free_port, post

relay = test_listen_forward.relay  # the fixture: a real listen --forward-to process


@pytest.mark.parametrize(("host", "target"), [
    ("127.0.0.1", "http://127.0.0.1:{port}"),
    ("127.0.0.1", "http://localhost:{port}/hooks"),
    ("127.0.0.1", "http://0.0.0.0:{port}"),
    ("0.0.0.0", "http://127.0.0.1:{port}"),
    ("0.0.0.0", "http://localhost:{port}"),
    ("0.0.0.0", "http://127.0.0.2:{port}"),
    ("localhost", "http://127.0.0.1:{port}"),
])
def test_forwarding_to_its_own_address_is_refused_at_start(tmp_path: Path, host: str, target: str) -> None:
    port = free_port()
    result = run_moxiehook("listen", "--host", host, "--port", str(port), "--forward-to", target.format(port=port),
                           cwd=tmp_path, timeout=20)
    assert result.returncode == 2, result.stderr
    assert "is this listen's own address" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "moxiehook-log.jsonl").exists() or not (tmp_path / "moxiehook-log.jsonl").read_text()


def test_the_check_tells_another_port_or_another_loopback_address_apart() -> None:
    assert is_self_forward("http://127.0.0.1:8787", "127.0.0.1", 8787)
    assert is_self_forward("https://localhost", "0.0.0.0", 443)
    assert not is_self_forward("http://127.0.0.1:8788", "127.0.0.1", 8787)
    assert not is_self_forward("http://127.0.0.2:8787", "127.0.0.1", 8787)  # another socket
    assert not is_self_forward("http://[::1]:8787", "127.0.0.1", 8787)  # another family, another socket
    assert not is_self_forward("http://no-such-host.invalid:8787", "127.0.0.1", 8787)  # cannot be us


def test_port_0_is_checked_once_bound(tmp_path: Path) -> None:
    """With --port 0 the port is known only once bound: a forward to it is still refused (exit 2)."""
    result = run_moxiehook("listen", "--port", "0", "--forward-to", "http://127.0.0.1:0", cwd=tmp_path, timeout=20)
    assert result.returncode == 2, result.stderr


def test_a_loop_through_two_relays_is_a_508_not_64_forwards(tmp_path: Path) -> None:
    first_port, second_port = free_port(), free_port()
    processes = []
    try:
        for port, other in ((first_port, second_port), (second_port, first_port)):
            ready = tmp_path / f"ready-{port}"
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "moxiehook", "listen", "--port", str(port), "--forward-to",
                 f"http://127.0.0.1:{other}", "--ready-file", str(ready)],
                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            for _ in range(400):  # bounded: 20 s
                if ready.exists() or processes[-1].poll() is not None:
                    break
                time.sleep(0.05)
            assert ready.exists(), processes[-1].communicate(timeout=10)
        status, _, body = post(f"http://127.0.0.1:{first_port}", "/hooks/x", b'{"id": 1}',
                               {"X-Event-Type": "ClientCreate"}, timeout=30)
        assert status == 508, body
        assert b"loop detected" in body
    finally:
        for process in processes:
            process.terminate()
        outputs = [process.communicate(timeout=30) for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    lines = (tmp_path / "moxiehook-log.jsonl").read_text().splitlines()
    # first -> second -> first (refused: 508), so two forwards in all, each answered 508
    records = [json.loads(line) for line in lines]
    assert [r["status"] for r in records] == [508, 508]
    assert "→ 508 not forwarded: loop detected" in outputs[0][0]


def test_the_app_sees_one_via_entry_naming_this_relay(relay, receiver: Receiver) -> None:
    listener = relay(receiver.url(""))
    status, _, _ = post(listener.url, "/hooks/x", b"{}", {"Via": "1.1 moxie-edge"})
    assert status == 200
    [got] = receiver.requests
    assert got.headers["via"].startswith("1.1 moxie-edge, 1.1 moxiehook-")
    listener.stop()
