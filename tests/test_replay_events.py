"""How many times ``replay`` resends: one event, one replay; in-process records never go to the network.

Selection is tested on hand-written logs; the CLI against real relays, a real loopback app and a real
Flask app loaded with ``--app``.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from logrecords import delivery, write

from moxiehook.log import replay as replayselect
from moxiehook.log.records import DeliveryRecord
from moxiehook.log.replay import ReplayQuery
from tests import test_listen_forward
from tests.conftest import Answer, Receiver, run_moxiehook
from tests.test_listen_forward import post

relay = test_listen_forward.relay  # the fixture: a real listen --forward-to process

BODY = b'{"id":"cl_1","name":"Acme"}'


def forward(n: int, *, outcome: str = "failed", body: Any = None, event: str = "ClientCreate",
            webhook_id: str | None = None) -> DeliveryRecord:
    """A record as ``listen --forward-to`` writes it: one per request that came in."""
    record = delivery(n, outcome=outcome, status=200 if outcome == "delivered" else 500, event=event,
                      endpoint="listen", url="http://127.0.0.1:5000/hooks")
    headers = {"X-Event-Type": event, **({"webhook-id": webhook_id} if webhook_id else {})}
    return replace(record, mode="forward", request={"method": "POST", "headers": headers,
                                                    "body": body if body is not None else {"id": "cl_1"}})


def ids(selection: replayselect.Selection) -> list[str]:
    return [entry.data["id"] for entry in selection.entries]


# ---------------------------------------------------------------------------
# selection


def test_a_senders_three_retries_relayed_are_one_event_resent_once_newest_first(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    attempts = [forward(n) for n in range(3)]
    other = forward(3, body={"id": "cl_2"})
    write(log, *attempts, other)
    selection = replayselect.select(log, ReplayQuery(failed=True))
    assert ids(selection) == [attempts[-1].id, other.id]
    # plain filters count each event once too
    assert ids(replayselect.select(log, ReplayQuery(event="ClientCreate"))) == [attempts[-1].id, other.id]


def test_an_event_a_later_forward_delivered_is_not_resent(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    write(log, forward(0), forward(1), forward(2, outcome="delivered"), forward(3, body={"id": "cl_2"}))
    assert len(replayselect.select(log, ReplayQuery(failed=True)).entries) == 1


def test_signed_requests_with_different_webhook_ids_are_different_events(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    write(log, forward(0, webhook_id="msg_1"), forward(1, webhook_id="msg_1"), forward(2, webhook_id="msg_2"),
          forward(3, event="ClientUpdate"))
    assert len(replayselect.select(log, ReplayQuery(failed=True)).entries) == 3


def test_a_replay_of_one_attempt_that_delivered_ends_the_event(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    first, second = forward(0), forward(1)
    fixed = replace(delivery(2, replay_of=first.id), endpoint="listen", request=first.request)
    write(log, first, second, fixed)
    assert replayselect.select(log, ReplayQuery(failed=True)).entries == []
    again = replace(delivery(3, outcome="failed", status=500, replay_of=second.id), endpoint="listen",
                    request=first.request)
    write(log, again)
    assert replayselect.select(log, ReplayQuery(failed=True)).entries == []  # delivered once: done


def test_the_senders_record_is_replayed_and_the_relays_copies_left_out(tmp_path: Path) -> None:
    """fire -> listen --forward-to -> app, both logging into one log: the fire record is the one resent."""
    log = tmp_path / "log.jsonl"
    body = {"id": "cl_1"}
    copies = [forward(n, body=body) for n in range(3)]  # the relay logs each attempt as it passes
    fired = replace(delivery(4, outcome="failed", status=500),
                    request={"headers": {"X-Event-Type": "ClientCreate"}, "body": body})
    write(log, *copies, fired)
    selection = replayselect.select(log, ReplayQuery(failed=True))
    assert ids(selection) == [fired.id]
    assert selection.left_out_relayed == 1
    # only the relay's view asked for (its endpoint): then the relayed event is the one resent
    assert ids(replayselect.select(log, ReplayQuery(failed=True, endpoint="listen"))) == [copies[-1].id]


def test_fire_count_copies_with_equal_bodies_stay_separate_events(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    body = {"name": "no id"}
    copies = [replace(delivery(n, outcome="failed", status=500), request={"headers": {}, "body": body})
              for n in range(2)]
    delivered = replace(delivery(3), request={"headers": {}, "body": body})
    write(log, *copies, delivered)
    assert ids(replayselect.select(log, ReplayQuery(failed=True))) == [c.id for c in copies]


def test_app_records_are_left_out_without_app_and_refused_by_id(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    in_process = replace(delivery(0, outcome="failed", status=500), mode="app")
    network = delivery(1, outcome="failed", status=500)
    write(log, in_process, network)
    selection = replayselect.select(log, ReplayQuery(failed=True))
    assert ids(selection) == [network.id] and selection.left_out_app == 1
    assert ids(replayselect.select(log, ReplayQuery(failed=True, app=True))) == [in_process.id, network.id]
    with pytest.raises(Exception, match="--app"):
        replayselect.select(log, ReplayQuery(ids=(in_process.id,)))


# ---------------------------------------------------------------------------
# the CLI, with real processes


def write_config(folder: Path, url: str, attempts: int = 1) -> Path:
    path = folder / "moxiehook.toml"
    path.write_text(f'version = 1\n\n[settings]\nlog_file = "log.jsonl"\ntimeout = 5\nmax_attempts = {attempts}\n'
                    f'backoff = 0.01\n\n[endpoints.crm]\nauth = {{ type = "none" }}\n\n'
                    f'[[endpoints.crm.mappings]]\nevent = "ClientCreate"\nurl = "{url}"\n')
    return path


def records(path: Path) -> list[dict[str, Any]]:
    return [r for r in map(json.loads, path.read_text().splitlines()) if r.get("kind") == "delivery"]


def test_a_relayed_event_retried_three_times_is_replayed_once(relay, receiver: Receiver, tmp_path: Path) -> None:
    receiver.answer("/hooks/x", Answer(status=500))
    config = write_config(tmp_path, receiver.url("/unused"))
    listener = relay(receiver.url(""), config=config)
    for _ in range(3):  # the sender's own retries: three separate requests
        status, _, _ = post(listener.url, "/hooks/x", BODY, {"X-Event-Type": "ClientCreate"})
        assert status == 500
    listener.stop()
    receiver.answer("/hooks/x", Answer(status=200))  # the app is fixed
    result = run_moxiehook("--config", str(config), "replay", "--failed", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(receiver.requests) == 4  # three relayed, one replayed
    again = run_moxiehook("--config", str(config), "replay", "--failed", cwd=tmp_path)
    assert again.returncode == 0 and "nothing to replay" in again.stderr
    assert len(receiver.requests) == 4


def test_fire_through_its_own_relay_is_replayed_once(relay, receiver: Receiver, tmp_path: Path) -> None:
    receiver.answer("/hooks/clients", Answer(status=500))
    config = write_config(tmp_path, "http://127.0.0.1:9/unused", attempts=3)
    listener = relay(receiver.url(""), config=config)
    config.write_text(config.read_text().replace("http://127.0.0.1:9/unused", f"{listener.url}/hooks/clients"))
    fired = run_moxiehook("--config", str(config), "fire", "ClientCreate", cwd=tmp_path)
    assert fired.returncode == 1
    assert len(receiver.requests) == 3
    assert [r["mode"] for r in records(tmp_path / "log.jsonl")] == ["forward"] * 3 + ["fire"]
    receiver.answer("/hooks/clients", Answer(status=200))
    result = run_moxiehook("--config", str(config), "replay", "--failed", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "left out 1 relayed copies" in result.stderr
    assert len(receiver.requests) == 4  # one replay, through the relay, not two
    again = run_moxiehook("--config", str(config), "replay", "--failed", cwd=tmp_path)
    assert "nothing to replay" in again.stderr
    assert len(receiver.requests) == 4
    listener.stop()


FLASK_APP = '''
import json
from pathlib import Path

from flask import Flask, request

app = Flask(__name__)


@app.post("/hooks/<path:name>")
def hook(name):
    with Path("received.jsonl").open("a") as out:
        out.write(json.dumps({"path": request.path, "event": request.headers.get("X-Event-Type"),
                              "body": request.get_json()}) + "\\n")
    return {"ok": True}
'''


@pytest.fixture
def app_folder(tmp_path: Path, receiver: Receiver) -> tuple[Path, DeliveryRecord]:
    """A folder with a Flask app module, a config and a log holding one failed in-process delivery.

    The logged URL is the loopback receiver's: a replay that went to the network would reach it.
    """
    (tmp_path / "hooks_app.py").write_text(textwrap.dedent(FLASK_APP))
    config = write_config(tmp_path, receiver.url("/hooks/clients"))
    record = replace(delivery(0, outcome="failed", status=500, url=receiver.url("/hooks/clients")), mode="app")
    write(tmp_path / "log.jsonl", record)
    return config, record


def test_replay_of_an_app_record_needs_app_and_never_goes_to_the_network(
        app_folder: tuple[Path, DeliveryRecord], receiver: Receiver, tmp_path: Path) -> None:
    config, record = app_folder
    refused = run_moxiehook("--config", str(config), "replay", record.id, cwd=tmp_path)
    assert refused.returncode == 2
    assert "--app" in refused.stderr and "nothing was sent" in refused.stderr
    left_out = run_moxiehook("--config", str(config), "replay", "--failed", cwd=tmp_path)
    assert left_out.returncode == 0, left_out.stderr
    assert "left out 1 in-process deliveries" in left_out.stderr
    assert receiver.requests == []
    assert not (tmp_path / "received.jsonl").exists()


def test_replay_of_an_app_record_with_app_goes_in_process_and_is_logged_as_app(
        app_folder: tuple[Path, DeliveryRecord], receiver: Receiver, tmp_path: Path) -> None:
    config, record = app_folder
    result = run_moxiehook("--config", str(config), "replay", "--failed", "--app", "hooks_app:app", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [got] = [json.loads(line) for line in (tmp_path / "received.jsonl").read_text().splitlines()]
    assert got == {"path": "/hooks/clients", "event": "ClientCreate", "body": record.request["body"]}
    assert receiver.requests == []
    replayed = records(tmp_path / "log.jsonl")[-1]
    assert (replayed["mode"], replayed["replay_of"], replayed["outcome"]) == ("app", record.id, "delivered")
    again = run_moxiehook("--config", str(config), "replay", "--failed", "--app", "hooks_app:app", cwd=tmp_path)
    assert "nothing to replay" in again.stderr
    both = run_moxiehook("--config", str(config), "replay", record.id, "--app", "hooks_app:app", "--to",
                         receiver.url("/x"), cwd=tmp_path)
    assert both.returncode == 2 and "--to" in both.stderr and "--app" in both.stderr
    assert receiver.requests == []


# ---------------------------------------------------------------------------
# without a config file


def test_without_a_config_logs_and_replay_read_the_log_listen_wrote(relay, receiver: Receiver,
                                                                     tmp_path: Path) -> None:
    receiver.answer("/hooks/x", Answer(status=500))
    listener = relay(receiver.url(""))  # no config anywhere
    status, _, _ = post(listener.url, "/hooks/x", BODY, {"X-Event-Type": "ClientCreate",
                                                         "Authorization": "Bearer from-moxie"})
    assert status == 500
    _, _, stderr = listener.stop()
    assert "moxiehook-log.jsonl" in stderr and "`moxiehook logs` shows them" in stderr
    assert not (tmp_path / "moxiehook.toml").exists()
    [record] = records(tmp_path / "moxiehook-log.jsonl")

    shown = run_moxiehook("logs", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "failed" in shown.stdout and "ClientCreate" in shown.stdout
    one = run_moxiehook("logs", "show", record["id"], "--json", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["id"] == record["id"]

    receiver.answer("/hooks/x", Answer(status=200))
    replayed = run_moxiehook("replay", "--failed", cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    assert "without auth" in replayed.stderr
    assert "authorization" not in receiver.requests[-1].headers
    assert receiver.requests[-1].body == BODY

    pruned = run_moxiehook("logs", "prune", "--before", "2000-01-01T00:00:00Z", cwd=tmp_path)
    assert pruned.returncode == 0, pruned.stderr
    assert len(records(tmp_path / "moxiehook-log.jsonl")) == 2


def test_a_chain_that_began_in_process_stays_in_process(tmp_path: Path) -> None:
    """An older moxiehook replayed app records as mode replay: the chain is still never sent to the network."""
    log = tmp_path / "log.jsonl"
    in_process = replace(delivery(0, outcome="failed", status=500), mode="app")
    old_replay = delivery(1, outcome="failed", status=500, replay_of=in_process.id, event_id_=in_process.event_id)
    write(log, in_process, old_replay)
    selection = replayselect.select(log, ReplayQuery(failed=True))
    assert selection.entries == [] and selection.left_out_app == 1
