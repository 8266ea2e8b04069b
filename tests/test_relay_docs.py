"""The relay and replay pages show what moxiehook prints: their quoted lines are checked against real runs."""

from __future__ import annotations

from pathlib import Path

from tests import test_listen_forward
from tests.conftest import Receiver, run_moxiehook
from tests.test_listen_forward import free_port, post
from tests.test_relay_steering import raw

relay = test_listen_forward.relay  # the fixture: a real listen --forward-to process
DOCS = Path(__file__).resolve().parent.parent / "docs" / "guide"


def test_the_listen_page_quotes_the_relays_real_answers(relay, receiver: Receiver, tmp_path: Path) -> None:
    page = (DOCS / "listen.md").read_text()
    port = free_port()
    refused = run_moxiehook("listen", "--port", str(port), "--forward-to", f"http://localhost:{port}",
                            cwd=tmp_path, timeout=20)
    assert refused.returncode == 2
    assert refused.stderr.strip().replace(str(port), "8799") in page

    listener = relay(f"http://127.0.0.1:{free_port()}")
    _, _, body = post(listener.url, "/hooks/clients", b'{"id":1}', {"X-Event-Type": "ClientCreate"})
    assert body.decode().strip() in page
    _, body = raw(listener.url, "@127.0.0.1:22/x")
    assert body.decode().strip() in page
    listener.stop()


def test_the_logs_page_quotes_replays_real_warnings(tmp_path: Path) -> None:
    from dataclasses import replace

    from logrecords import delivery, write

    page = (DOCS / "logs.md").read_text()
    write(tmp_path / "moxiehook-log.jsonl", replace(delivery(0, outcome="failed", status=500), mode="app"),
          replace(delivery(1, outcome="failed", status=500), endpoint="listen", mode="forward"))
    result = run_moxiehook("replay", "--failed", "--dry-run", cwd=tmp_path, timeout=30)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] in page and lines[0].startswith("left out 1 in-process deliveries")
    assert lines[1] in page and lines[1].startswith("warning: endpoint 'listen'")
