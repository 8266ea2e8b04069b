"""``replay`` through the CLI, against the real loopback receiver."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from conftest import Answer, Receiver
from logrecords import delivery, write

from moxiehook import log as logquery
from moxiehook.log.records import DeliveryRecord
from moxiehook.send import signing

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


@pytest.fixture
def log(config_path: Path) -> Path:
    return config_path.parent / "log.jsonl"


@pytest.fixture
def crm(config_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Endpoint ``crm`` with its CURRENT auth (a ${VAR} token), a custom header and a signing secret."""
    monkeypatch.setenv("CRM_TOKEN", "current-token")
    with config_path.open("a") as handle:
        handle.write(f"""
[endpoints.crm]
auth = {{ type = "bearer", token = "${{CRM_TOKEN}}" }}
headers = {{ "X-Team" = "ops" }}
signing_secret = "{SECRET}"
""")
    return config_path


def logged(log: Path) -> list[DeliveryRecord]:
    return [entry.record for entry in logquery.stream(log)]  # type: ignore[misc]


def failed_to(receiver: Receiver, path: str = "/hook", **kwargs: object) -> DeliveryRecord:
    return delivery(0, outcome="failed", status=500, url=receiver.url(path), **kwargs)  # type: ignore[arg-type]


def test_replay_by_id_resends_the_same_event_with_current_auth(cli, crm: Path, log: Path,
                                                               receiver: Receiver) -> None:
    original = failed_to(receiver)
    write(log, delivery(1), original)
    result = cli("replay", original.id)
    assert result.exit_code == 0, result.stderr
    assert "1 delivered, 0 failed, 0 skipped" in result.stderr
    (request,) = receiver.requests
    assert request.path == "/hook"
    assert request.json() == original.request["body"]
    assert request.headers["authorization"] == "Bearer current-token"
    assert request.headers["x-team"] == "ops"
    assert request.headers["x-event-type"] == "ClientCreate"
    assert request.headers["webhook-id"] == original.event_id  # receivers can deduplicate
    signing.verify(signing.secret_bytes(SECRET), request.headers, request.body)
    new = logged(log)[-1]
    assert (new.mode, new.replay_of, new.outcome, new.event_id) == ("replay", original.id, "delivered",
                                                                   original.event_id)
    assert new.request["headers"]["Authorization"] == "***"


def test_replay_to_another_url(cli, crm: Path, log: Path, receiver: Receiver) -> None:
    original = failed_to(receiver, "/old")
    write(log, original)
    result = cli("replay", original.id, "--to", receiver.url("/new"))
    assert result.exit_code == 0, result.stderr
    assert [r.path for r in receiver.requests] == ["/new"]
    assert logged(log)[-1].url == receiver.url("/new")


def test_failed_chain_is_resent_once_per_run_until_delivered(cli, crm: Path, log: Path, receiver: Receiver) -> None:
    receiver.answer("/hook", Answer(status=400))  # failed at once, no retry: one request per delivery
    original = delivery(0, outcome="failed", status=400, url=receiver.url("/hook"))
    write(log, original)
    assert cli("replay", original.id).exit_code == 1  # failed twice now
    assert len(receiver.requests) == 1

    result = cli("replay", "--failed")
    assert result.exit_code == 1
    assert len(receiver.requests) == 2  # only the chain's latest record, once

    receiver.answer("/hook", Answer(status=200))
    result = cli("replay", "--failed")
    assert result.exit_code == 0, result.stderr
    assert len(receiver.requests) == 3
    chain = logged(log)
    assert [r.replay_of for r in chain] == [None, chain[0].id, chain[1].id, chain[2].id]
    assert {r.event_id for r in chain} == {original.event_id}

    result = cli("replay", "--failed")
    assert (result.exit_code, result.stdout) == (0, "")
    assert "nothing to replay" in result.stderr
    assert len(receiver.requests) == 3


def test_filters_select_and_limit(cli, crm: Path, log: Path, receiver: Receiver) -> None:
    records = [delivery(n, outcome="failed", status=500, url=receiver.url(f"/{n}"),
                        event="ClientUpdate" if n % 2 else "ClientCreate") for n in range(5)]
    write(log, *records, delivery(9, outcome="skipped", status=None, url=receiver.url("/skipped")))
    result = cli("replay", "--failed", "--event", "ClientCreate", "--limit", "2")
    assert result.exit_code == 0, result.stderr
    assert sorted(r.path for r in receiver.requests) == ["/0", "/2"]  # sent concurrently
    assert cli("replay", "--skipped").exit_code == 0
    assert receiver.requests[-1].path == "/skipped"


def test_replay_json_is_the_run_summary(cli, crm: Path, log: Path, receiver: Receiver) -> None:
    original = failed_to(receiver)
    write(log, original)
    result = cli("replay", "--failed", "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert (document["delivered"], document["failed"], document["skipped"]) == (1, 0, 0)
    assert [d["replay_of"] for d in document["deliveries"]] == [original.id]
    nothing = cli("replay", "--failed", "--json")
    assert nothing.exit_code == 0
    assert json.loads(nothing.stdout)["deliveries"] == []


def test_dry_run_sends_nothing(cli, crm: Path, log: Path, receiver: Receiver) -> None:
    original = failed_to(receiver)
    write(log, original)
    before = log.read_bytes()
    result = cli("replay", original.id, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert f"POST {receiver.url('/hook')}" in result.stdout
    assert "current-token" not in result.stdout
    assert "Authorization: ***" in result.stdout
    assert receiver.requests == []
    assert log.read_bytes() == before
    (request,) = json.loads(cli("replay", original.id, "--dry-run", "--json").stdout)
    assert request["body"] == original.request["body"]
    assert request["headers"]["webhook-id"] == original.event_id


def test_disabled_endpoint_is_skipped_unless_included(cli, crm: Path, log: Path, receiver: Receiver) -> None:
    original = failed_to(receiver)
    write(log, original)
    assert cli("endpoint", "disable", "crm", "--reason", "maintenance").exit_code == 0
    dry = cli("replay", original.id, "--dry-run")
    assert "endpoint 'crm' is disabled" in dry.stderr
    result = cli("replay", original.id)
    assert result.exit_code == 3  # nothing was sent, as with fire
    assert "endpoint 'crm' is disabled" in result.stderr
    assert receiver.requests == []
    skipped = logged(log)[-1]
    assert (skipped.outcome, skipped.replay_of) == ("skipped", original.id)

    result = cli("replay", "--skipped", "--include-disabled")
    assert result.exit_code == 0, result.stderr
    assert len(receiver.requests) == 1
    assert logged(log)[-1].replay_of == skipped.id


def test_an_answer_in_disable_on_disables_the_endpoint(cli, crm: Path, log: Path, receiver: Receiver) -> None:
    receiver.answer("/hook", Answer(status=401))
    write(log, failed_to(receiver))
    result = cli("replay", "--failed")
    assert result.exit_code == 1
    assert "endpoint 'crm' was disabled" in result.stderr
    assert cli("endpoint", "status", "crm").exit_code == 1


@pytest.mark.parametrize(("args", "message"), [
    ((), "error: say what to replay"),
    (("dlv_unknown",), "error: no delivery dlv_unknown"),
    (("--failed", "--since", "soon"), "error: --since: invalid time 'soon'"),
    (("--failed", "--to", "ftp://example.com/x"), "error: --to: URL 'ftp://example.com/x' must start with"),
])
def test_usage_errors_send_nothing(cli, crm: Path, log: Path, receiver: Receiver, args: tuple[str, ...],
                                   message: str) -> None:
    write(log, failed_to(receiver))
    before = log.read_bytes()
    result = cli("replay", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert receiver.requests == []
    assert log.read_bytes() == before


def test_an_endpoint_gone_from_the_config_sends_nothing(cli, crm: Path, log: Path, receiver: Receiver) -> None:
    write(log, failed_to(receiver), failed_to(receiver, endpoint="billing"))
    before = log.read_bytes()
    result = cli("replay", "--failed")
    assert result.exit_code == 2
    assert "endpoint 'billing' is no longer in the config" in result.stderr
    assert receiver.requests == []
    assert log.read_bytes() == before
    assert cli("replay", "--failed", "--endpoint", "crm").exit_code == 0
    assert len(receiver.requests) == 1


def test_nothing_logged_yet(cli, crm: Path, log: Path) -> None:
    result = cli("replay", "--failed")
    assert (result.exit_code, result.stdout) == (0, "")
    assert "no deliveries logged yet" in result.stderr


def test_a_bad_line_is_skipped_with_a_warning(cli, crm: Path, log: Path, receiver: Receiver) -> None:
    with log.open("ab") as handle:
        handle.write(b'{"kind":"delivery","id":"dlv_torn",\n')
    write(log, failed_to(receiver))
    result = cli("replay", "--failed")
    assert result.exit_code == 0
    assert "warning: log.jsonl line 1 is not a valid log record; skipped" in result.stderr
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("field, value", [
    ("duration_ms", "x"), ("request", "x"), ("event", 5), ("status", True), ("attempts", [1]),
    ("attempts", [{"duration_ms": "slow"}]), ("response", {"headers": "x"}), ("replay_of", 7),
])
def test_a_hand_edited_record_with_a_wrong_type_is_skipped_like_a_bad_line(
        cli, crm: Path, log: Path, receiver: Receiver, field: str, value: object) -> None:
    """`logs`, `logs show` and `replay --failed` skip it with the bad-line warning; no traceback."""
    good = failed_to(receiver)
    edited = failed_to(receiver).to_dict()
    edited[field] = value
    write(log, good)
    with log.open("a") as handle:
        handle.write(json.dumps(edited) + "\n")
    warning = "warning: log.jsonl line 2 is not a valid log record; skipped\n"
    for args in (("logs",), ("logs", "--json"), ("logs", "--outcome", "failed")):
        result = cli(*args)
        assert (result.exit_code, result.stderr) == (0, warning), args
        assert good.id in result.stdout and edited["id"] not in result.stdout
    result = cli("logs", "show", edited["id"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [warning.strip(), f"error: no delivery {edited['id']} in the log {log} "
                                          "(see: moxiehook logs)"]
    result = cli("replay", "--failed")
    assert result.exit_code == 0, result.stderr
    assert warning in result.stderr
    assert [r.json() for r in receiver.requests] == [good.request["body"]]


def test_two_replays_at_once_resend_each_failure_once(crm: Path, log: Path, receiver: Receiver) -> None:
    """Real processes: the second `replay --failed` waits for the first, then finds nothing left to resend."""
    import os
    import subprocess
    import sys
    import time

    receiver.default = Answer(status=204, delay=1.0)  # the first run is still sending when the second starts
    failures = [delivery(n, outcome="failed", status=500, url=receiver.url(f"/hook/{n}")) for n in range(5)]
    write(log, *failures)
    env = {**os.environ, "CRM_TOKEN": "t"}
    command = [sys.executable, "-m", "moxiehook", "replay", "--failed", "--json"]
    first = subprocess.Popen(command, cwd=crm.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    deadline = time.monotonic() + 30
    while not receiver.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert receiver.requests, "the first replay never sent"
    second = subprocess.run(command, cwd=crm.parent, env=env, capture_output=True, text=True, timeout=60)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert json.loads(out)["delivered"] == 5
    assert second.returncode == 0, second.stderr
    assert "another replay of this log is running: waiting for it to finish" in second.stderr
    assert json.loads(second.stdout)["delivered"] == 0
    assert sorted(r.path for r in receiver.requests) == [f"/hook/{n}" for n in range(5)]


def test_a_text_body_is_shown_and_resent_as_text(cli, crm: Path, log: Path, receiver: Receiver) -> None:
    """A record whose body was text (``"body_format": "text"``): ``logs show`` and ``replay --dry-run``
    show the text itself, not a JSON string, and replay sends it with its Content-Type."""
    original = failed_to(receiver)
    original.request = {"headers": {"Content-Type": "text/csv"}, "body": "a,b\n1,2", "body_format": "text"}
    write(log, original)
    shown = cli("logs", "show", original.id)
    assert "request body (text, not JSON)\n  a,b\n  1,2\n" in shown.stdout, shown.stdout
    dry = cli("replay", original.id, "--dry-run")
    assert "\n\na,b\n1,2\n" in dry.stdout and "Content-Type: text/csv" in dry.stdout, dry.stdout
    (request,) = json.loads(cli("replay", original.id, "--dry-run", "--json").stdout)
    assert (request["body"], request["body_format"]) == ("a,b\n1,2", "text")
    assert cli("replay", original.id).exit_code == 0
    assert (receiver.requests[-1].body, receiver.requests[-1].headers["content-type"]) == (b"a,b\n1,2", "text/csv")
