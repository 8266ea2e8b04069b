"""``scenario run`` against a real receiver on 127.0.0.1: order, references as sent, the log's
``mode``/``scenario`` fields, stopping on a failed step, ``expect``, ``--skip``, ``--repeat``,
``--dry-run``, ``--json``, ``--app`` with a real Flask app, and ``from-log``."""

from __future__ import annotations

import base64
import json
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from moxiehook import scenario as scn
from tests.conftest import Answer, Receiver, run_moxiehook

EVENTS = ("ClientCreate", "ProjectCreate", "InvoiceSent", "PaymentReceived", "ClientUpdate", "ClientDelete")
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def configure(config_path: Path, receiver: Receiver, extra: str = "", events: tuple[str, ...] = EVENTS) -> None:
    mappings = "".join(f'[[endpoints.crm.mappings]]\nevent = "{e}"\nurl = "{receiver.url("/" + e)}"\n'
                       for e in events)
    config_path.write_text(textwrap.dedent(f"""\
        version = 1
        [settings]
        log_file = "log.jsonl"
        timeout = 2.0
        max_attempts = 2
        backoff = 0.01
        [endpoints.crm]
        auth = {{ type = "bearer", token = "s3cret" }}
        headers = {{ X-Team = "billing" }}
        signing_secret = "{SECRET}"
        """) + extra + mappings)


def log(config_path: Path) -> list[dict[str, Any]]:
    path = config_path.parent / "log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_project_to_payment_reaches_the_receiver_in_order_as_fire_sends(cli: Any, config_path: Path,
                                                                        receiver: Receiver) -> None:
    configure(config_path, receiver)
    result = cli("scenario", "run", "project-to-payment", "--seed", "4", "--json")
    assert result.exit_code == 0, result.stderr
    got = [r for r in receiver.requests]
    assert [r.headers["x-event-type"] for r in got] == ["ClientCreate", "ProjectCreate", "InvoiceSent",
                                                        "PaymentReceived"]
    bodies = [r.json() for r in got]
    client, project, invoice, payment = bodies
    assert project["clientId"] == invoice["clientId"] == payment["clientId"] == client["id"]
    assert payment["id"] == invoice["id"] and payment["total"] == invoice["total"] == 4500
    assert payment["amountDue"] == 0 and payment["payments"][0]["amount"] == invoice["total"]
    assert invoice["subTotal"] + invoice["tax"] - invoice["discountAmount"] == invoice["total"]
    assert project["feeSchedule"]["amount"] * 30 == invoice["total"]
    for request in got:  # auth, custom headers and signing, as fire sends them
        assert request.headers["authorization"] == "Bearer s3cret"
        assert request.headers["x-team"] == "billing"
        Webhook(SECRET).verify(request.body, {k: v for k, v in request.headers.items() if k.startswith("webhook-")})
    records = log(config_path)
    assert [r["mode"] for r in records] == ["scenario"] * 4
    runs = {r["scenario"]["run"] for r in records}
    assert len(runs) == 1 and next(iter(runs)).startswith("scn_")
    assert [r["scenario"]["step"] for r in records] == ["client", "project", "invoice", "payment"]
    assert {r["scenario"]["name"] for r in records} == {"project-to-payment"}
    assert records[0]["request"]["headers"]["Authorization"] == "***"
    document = json.loads(result.stdout)
    assert document["scenario"] == "project-to-payment" and document["run"] in runs
    assert [s["outcome"] for s in document["steps"]] == ["delivered"] * 4
    assert [s["deliveries"][0]["id"] for s in document["steps"]] == [r["id"] for r in records]
    # the same seed, the same story (bodies), but new deliveries
    again = cli("scenario", "run", "project-to-payment", "--seed", "4")
    assert again.exit_code == 0
    assert [r.json() for r in receiver.requests[4:]] == bodies


def test_a_failed_step_stops_the_run_and_later_steps_are_logged_skipped(cli: Any, config_path: Path,
                                                                        receiver: Receiver) -> None:
    configure(config_path, receiver)
    receiver.answer("/ProjectCreate", Answer(status=500))
    result = cli("scenario", "run", "project-to-payment", "--json")
    assert result.exit_code == 1
    assert [r.path for r in receiver.requests] == ["/ClientCreate", "/ProjectCreate", "/ProjectCreate"]
    records = log(config_path)
    assert [(r["scenario"]["step"], r["outcome"]) for r in records] == [
        ("client", "delivered"), ("project", "failed"), ("invoice", "skipped"), ("payment", "skipped")]
    for skipped in records[2:]:
        assert "step 'project' failed" in skipped["error"]
        assert skipped["request"]["body"]["clientId"] == records[0]["request"]["body"]["id"]
    document = json.loads(result.stdout)
    assert [s["outcome"] for s in document["steps"]] == ["delivered", "failed", "skipped", "skipped"]
    assert "step 'project' failed" in result.stderr


def test_continue_on_failure_goes_on_but_still_exits_1(cli: Any, config_path: Path, receiver: Receiver,
                                                       tmp_path: Path) -> None:
    configure(config_path, receiver)
    receiver.answer("/ClientCreate", Answer(status=422))
    path = tmp_path / "s.toml"
    path.write_text('[[steps]]\nname = "a"\nevent = "ClientCreate"\ncontinue_on_failure = true\n'
                    '[[steps]]\nname = "b"\nevent = "ClientUpdate"\nset = { id = "${a:id}" }\n'
                    '[[steps]]\nname = "c"\nevent = "ClientDelete"\n')
    result = cli("scenario", "run", str(path))
    assert result.exit_code == 1
    assert [r.path for r in receiver.requests] == ["/ClientCreate", "/ClientUpdate", "/ClientDelete"]
    assert [r["outcome"] for r in log(config_path)] == ["failed", "delivered", "delivered"]


def test_expect_alone_decides_success(cli: Any, config_path: Path, receiver: Receiver, tmp_path: Path) -> None:
    configure(config_path, receiver)
    receiver.answer("/ClientCreate", Answer(status=409))  # "already exists": what this step wants
    receiver.answer("/ClientUpdate", Answer(status=200))
    path = tmp_path / "s.toml"
    path.write_text('[[steps]]\nname = "a"\nevent = "ClientCreate"\nexpect = { status = 409 }\n'
                    '[[steps]]\nname = "b"\nevent = "ClientUpdate"\nexpect = { status = [204] }\n'
                    '[[steps]]\nname = "c"\nevent = "ClientDelete"\n')
    result = cli("scenario", "run", str(path), "--json")
    assert result.exit_code == 1
    steps = json.loads(result.stdout)["steps"]
    assert [s["outcome"] for s in steps] == ["delivered", "failed", "skipped"]
    assert "answered HTTP 200, expected 204" in steps[1]["error"]
    assert [r.path for r in receiver.requests] == ["/ClientCreate", "/ClientUpdate"]


def test_skip_leaves_a_step_out_unsent_and_unlogged(cli: Any, config_path: Path, receiver: Receiver) -> None:
    configure(config_path, receiver)
    result = cli("scenario", "run", "client-lifecycle", "--skip", "update", "--json")
    assert result.exit_code == 0, result.stderr
    assert [r.path for r in receiver.requests] == ["/ClientCreate", "/ClientDelete"]
    assert [r["scenario"]["step"] for r in log(config_path)] == ["create", "delete"]
    assert json.loads(result.stdout)["steps"][1] == {"name": "update", "event": "ClientUpdate",
                                                     "outcome": "skipped", "error": "left out by --skip",
                                                     "deliveries": []}


def test_a_step_without_a_mapping_sends_nothing_at_all(cli: Any, config_path: Path, receiver: Receiver) -> None:
    configure(config_path, receiver, events=("ClientCreate", "ClientUpdate"))
    result = cli("scenario", "run", "client-lifecycle")
    assert result.exit_code == 3
    assert "step 'delete': no mapping for ClientDelete" in result.stderr
    assert receiver.requests == []


def test_a_disabling_answer_disables_the_endpoint_and_stops_the_story(cli: Any, config_path: Path,
                                                                      receiver: Receiver) -> None:
    configure(config_path, receiver)
    receiver.answer("/ClientUpdate", Answer(status=401))
    result = cli("scenario", "run", "client-lifecycle")
    assert result.exit_code == 1
    assert "was disabled" in result.stderr
    assert [r["kind"] for r in log(config_path)] == ["delivery", "delivery", "endpoint", "delivery"]
    assert log(config_path)[-1]["outcome"] == "skipped"
    assert "enabled = false" in config_path.read_text()
    again = cli("scenario", "run", "client-lifecycle")  # every step skipped: nothing sent
    assert again.exit_code == 3 and len(receiver.requests) == 2


def test_repeat_runs_in_turn_each_with_its_own_ids_and_is_bounded(cli: Any, config_path: Path,
                                                                 receiver: Receiver) -> None:
    configure(config_path, receiver)
    result = cli("scenario", "run", "client-lifecycle", "--repeat", "3", "--seed", "1", "--json")
    assert result.exit_code == 0, result.stderr
    documents = json.loads(result.stdout)
    assert len(documents) == 3 and len({d["run"] for d in documents}) == 3
    ids = [r.json()["id"] for r in receiver.requests]
    assert len(ids) == 9 and len(set(ids)) == 3 and ids[0] == ids[1] == ids[2]
    for bad in ("0", "10001", "99999999999"):
        refused = cli("scenario", "run", "client-lifecycle", "--repeat", bad)
        assert refused.exit_code == 2 and "--repeat must be 1 to 10,000" in refused.stderr
    assert len(receiver.requests) == 9


def test_dry_run_prints_each_steps_request_and_sends_nothing(cli: Any, config_path: Path,
                                                            receiver: Receiver) -> None:
    configure(config_path, receiver)
    result = cli("scenario", "run", "client-lifecycle", "--dry-run", "--json", "--seed", "2")
    assert result.exit_code == 0, result.stderr
    requests = json.loads(result.stdout)
    assert [r["step"] for r in requests] == ["create", "update", "delete"]
    assert requests[0]["headers"]["Authorization"] == "***" and "webhook-signature" in requests[0]["headers"]
    assert requests[1]["body"]["id"] == requests[0]["body"]["id"]
    text = cli("scenario", "run", "client-lifecycle", "--dry-run")
    assert "# step update · ClientUpdate" in text.stdout and "POST http://127.0.0.1" in text.stdout
    assert receiver.requests == [] and not (config_path.parent / "log.jsonl").exists()


def test_vary_keeps_references_holding_on_the_wire(cli: Any, config_path: Path, receiver: Receiver) -> None:
    configure(config_path, receiver)
    for seed in ("1", "2", "3"):
        assert cli("scenario", "run", "project-to-payment", "--vary", "--seed", seed).exit_code == 0
    bodies = [r.json() for r in receiver.requests]
    for client, project, invoice, payment in zip(*[iter(bodies)] * 4, strict=True):
        assert project["clientId"] == invoice["clientId"] == payment["clientId"] == client["id"]
        assert payment["id"] == invoice["id"]
    assert len({b["id"] for b in bodies[::4]}) == 3


def test_from_log_makes_a_scenario_that_replays_the_story(cli: Any, config_path: Path, receiver: Receiver,
                                                          tmp_path: Path) -> None:
    configure(config_path, receiver)
    receiver.answer("/ClientUpdate", Answer(status=503), Answer(status=200))  # one retry: still one step
    assert cli("scenario", "run", "client-lifecycle", "--seed", "9").exit_code == 0
    sent = [r.json() for r in receiver.requests]
    out = tmp_path / "out" / "story.toml"
    result = cli("scenario", "from-log", "--last", "3", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "story.01-ClientCreate.json", "story.02-ClientUpdate.json", "story.03-ClientDelete.json", "story.toml"]
    assert json.loads((out.parent / "story.02-ClientUpdate.json").read_text()) == sent[1]
    assert cli("scenario", "validate", str(out)).exit_code == 0
    receiver.requests.clear()
    assert cli("scenario", "run", str(out)).exit_code == 0
    assert [r.json() for r in receiver.requests] == [sent[0], sent[2], sent[3]]
    refused = cli("scenario", "from-log", "--last", "3", "-o", str(out))
    assert refused.exit_code == 2 and "--force" in refused.stderr
    ids = [r["id"] for r in log(config_path)[:2]]
    two = cli("scenario", "from-log", *ids, "-o", str(tmp_path / "two.toml"))
    assert two.exit_code == 0
    assert scn.load_scenario(tmp_path / "two.toml").step_names() == ["ClientCreate", "ClientUpdate"]
    assert cli("scenario", "from-log").exit_code == 2
    assert cli("scenario", "from-log", "dlv_nope").exit_code != 0


def test_from_log_counts_relayed_retries_once() -> None:
    from moxiehook.log import DeliveryRecord

    def forward(n: int, body: dict[str, Any], event: str = "ClientCreate") -> DeliveryRecord:
        return DeliveryRecord(id=f"dlv_{n}", event_id=f"evt_{n}", event=event, endpoint="listen", url="http://x/",
                              mode="forward", replay_of=None, at=f"2026-01-01T00:00:0{n}.000Z", outcome="failed",
                              status=502, error=None, duration_ms=1.0, request={"headers": {}, "body": body})

    made = scn.from_records([forward(1, {"a": 1}), forward(2, {"a": 1}), forward(3, {"a": 2}),
                             forward(4, {"a": 1}, "ClientUpdate")], "s", "s", "")
    assert made.steps == 3
    assert [name for name, _ in made.files] == ["s.01-ClientCreate.json", "s.02-ClientCreate-2.json",
                                                "s.03-ClientUpdate.json"]


FLASK_APP = """
from flask import Flask, request

app = Flask(__name__)
clients = set()

@app.post("/ClientCreate")
def create():
    print("stored client", request.get_json()["id"])  # an app that prints: --json must stay JSON
    clients.add(request.get_json()["id"])
    return "", 204

@app.post("/ClientUpdate")
@app.post("/ClientDelete")
def change():
    if request.headers.get("Authorization") != "Bearer s3cret":
        return "no", 401
    return ("", 204) if request.get_json()["id"] in clients else ("unknown client", 404)
"""


def test_app_delivers_the_story_into_a_flask_app_in_process(config_path: Path, receiver: Receiver,
                                                            tmp_path: Path) -> None:
    configure(config_path, receiver)
    module = f"scenario_app_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(FLASK_APP)
    done = run_moxiehook("--config", str(config_path), "scenario", "run", "client-lifecycle", "--app",
                         f"{module}:app", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    steps = json.loads(done.stdout)["steps"]
    assert [s["deliveries"][0]["status"] for s in steps] == [204, 204, 204]
    assert "stored client" in done.stderr  # what the app printed went to stderr
    assert receiver.requests == []  # in-process: nothing went to the network
    # in-process records say so, as fire --app's do: a replay must never send them to their URL
    assert {r["mode"] for r in log(config_path)} == {"app"}
    assert [r["scenario"]["step"] for r in log(config_path)] == ["create", "update", "delete"]
    skipped = run_moxiehook("--config", str(config_path), "scenario", "run", "client-lifecycle", "--app",
                            f"{module}:app", "--skip", "create", cwd=tmp_path)
    assert skipped.returncode == 2  # update reads create's id: refused before anything is sent


@pytest.mark.parametrize("delay", ["250ms", "0.25s"])
def test_a_delay_waits_before_its_step_through_an_injectable_wait(delay: str, tmp_path: Path,
                                                                  config_path: Path, receiver: Receiver) -> None:
    from moxiehook.config import load_config
    from moxiehook.send import RunOptions

    configure(config_path, receiver)
    path = tmp_path / "s.toml"
    path.write_text(f'[[steps]]\nevent = "ClientCreate"\n[[steps]]\nevent = "ClientUpdate"\ndelay = "{delay}"\n')
    config = load_config(config_path)
    rendered = scn.render(scn.load_scenario(path), seed=1)
    waits: list[tuple[float, int]] = []

    def wait(seconds: float) -> bool:
        waits.append((seconds, len(receiver.requests)))
        return False

    result = scn.run_scenario(config_path, config, rendered, scn.plan(config, rendered, None),
                              RunOptions(concurrency=4), wait=wait)
    assert result.exit_code == 0
    assert waits == [(0.25, 1)]  # waited once, after the first step was answered, before the second

    def interrupted(seconds: float) -> bool:
        return True  # Ctrl-C during the delay: the later step is not started

    stopped = scn.run_scenario(config_path, config, rendered, scn.plan(config, rendered, None),
                               RunOptions(concurrency=1), wait=interrupted)
    assert [s.outcome for s in stopped.steps] == ["delivered", "skipped"]
    assert "not started" in (stopped.steps[1].error or "")
    assert len(receiver.requests) == 3


def test_validate_names_the_step_and_the_field_that_break_the_schema(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[[steps]]\nname = "ok"\nevent = "ClientCreate"\n'
                    '[[steps]]\nname = "bad"\nevent = "InvoiceSent"\nset = { total = "4500", id = "${ok:name}" }\n')
    result = cli("scenario", "validate", str(path))
    assert result.exit_code == 2
    assert "step 'bad' breaks the InvoiceSent schema at id" in result.stderr
    assert "total: expected integer, got string" in result.stderr
    document = json.loads(cli("scenario", "validate", str(path), "--json").stdout)
    assert document["valid"] is False
    assert {p["path"] for p in document["steps"][1]["problems"]} == {"id", "total"}


def test_a_scenario_delivery_is_replayed_like_a_fired_one(cli: Any, config_path: Path, receiver: Receiver) -> None:
    configure(config_path, receiver)
    receiver.answer("/ClientUpdate", Answer(status=422), Answer(status=200))
    assert cli("scenario", "run", "client-lifecycle").exit_code == 1
    failed = [r for r in log(config_path) if r["outcome"] == "failed"]
    assert [r["scenario"]["step"] for r in failed] == ["update"]
    result = cli("replay", "--failed")
    assert result.exit_code == 0, result.stderr
    assert receiver.requests[-1].path == "/ClientUpdate"
    assert receiver.requests[-1].body == receiver.requests[1].body


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_scenario_list_keeps_one_line_per_scenario_at_any_width(columns: int, tmp_path: Path) -> None:
    import re

    from tests.terminal import run_in_terminal

    code, screen = run_in_terminal("scenario", "list", cwd=tmp_path, columns=columns)
    assert code == 0
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in screen.splitlines() if line.strip()]
    assert len(lines) == 6  # the header and the five built-ins
    assert all(len(line) <= columns for line in lines), lines
    assert [line.split()[0] for line in lines[1:]] == ["agreement-signing", "client-lifecycle",
                                                       "meeting-lifecycle", "project-to-payment", "task-workflow"]
