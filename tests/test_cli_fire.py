"""``fire`` and ``test`` through the CLI, against the loopback receiver."""

from __future__ import annotations

import json
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import standardwebhooks

from moxiehook import catalog
from tests.conftest import Answer, Receiver, run_moxiehook

TOKEN = "s3cr3t-t0ken-value"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def write_config(path: Path, receiver: Receiver, endpoints: str) -> Path:
    text = path.read_text() + endpoints.replace("URL", receiver.url(""))
    path.write_text(text)
    return path


CRM = """
[endpoints.crm]
auth = { type = "bearer", token = "${CRM_TOKEN}" }
headers = { "X-Team" = "ops" }
[[endpoints.crm.mappings]]
event = "ClientCreate"
url = "URL/crm"
"""

BILLING = """
[endpoints.billing]
auth = { type = "custom", header = "X-Api-Key", value = "literal-key" }
[[endpoints.billing.mappings]]
event = "ClientCreate"
url = "URL/billing"
[[endpoints.billing.mappings]]
event = "MeetingScheduled"
url = "URL/billing-meetings"
"""


def log_records(config_path: Path) -> list[dict]:
    log = config_path.parent / "log.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CRM_TOKEN", TOKEN)
    return TOKEN


def test_fire_sends_the_wire_format_and_logs(cli, config_path: Path, receiver: Receiver, token: str) -> None:
    write_config(config_path, receiver, CRM + BILLING)
    result = cli("fire", "ClientCreate")
    assert result.exit_code == 0, result.stderr
    assert "2 delivered, 0 failed, 0 skipped" in result.stderr
    crm = receiver.requests_to("/crm")[0]
    assert crm.headers["authorization"] == f"Bearer {TOKEN}"
    assert crm.headers["x-team"] == "ops" and crm.headers["x-event-type"] == "ClientCreate"
    assert crm.headers["x-event-origin"] == "withmoxie.com"
    assert crm.json() == catalog.sample("ClientCreate")
    assert receiver.requests_to("/billing")[0].headers["x-api-key"] == "literal-key"
    records = log_records(config_path)
    assert {r["endpoint"] for r in records} == {"crm", "billing"}
    assert all(r["outcome"] == "delivered" and r["mode"] == "fire" for r in records)
    assert records[0]["event_id"] == records[1]["event_id"]  # one event, two URLs
    text = (config_path.parent / "log.jsonl").read_text()
    assert TOKEN not in text and "literal-key" not in text


def test_fire_data_set_count_and_json(cli, config_path: Path, receiver: Receiver, token: str,
                                      tmp_path: Path) -> None:
    write_config(config_path, receiver, CRM)
    (tmp_path / "client.json").write_text(json.dumps({"id": "6543a1f2c9e77b2d4f1a0b3c", "name": "A"}))
    result = cli("fire", "ClientCreate", "--data", "client.json", "--set", "name=Bob",
                 "--set", "meta.rank=3", "--count", "3", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["delivered"], doc["failed"], doc["skipped"], doc["disabled"]) == (3, 0, 0, [])
    assert len(doc["deliveries"]) == 3
    bodies = [r.json() for r in receiver.requests_to("/crm")]
    assert {b["name"] for b in bodies} == {"Bob"} and {b["meta"]["rank"] for b in bodies} == {3}
    assert len({b["id"] for b in bodies}) == 3
    assert TOKEN not in result.stdout


def test_fire_data_from_stdin(cli, config_path: Path, receiver: Receiver, token: str) -> None:
    write_config(config_path, receiver, CRM)
    result = cli("fire", "ClientCreate", "--data", "-", input='{"custom": true}')
    assert result.exit_code == 0, result.stderr
    assert receiver.requests_to("/crm")[0].json() == {"custom": True}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "missing.json"], "no such file"),
        (["--data", "bad.json"], "not valid JSON"),
        (["--set", "name"], "KEY=VALUE"),
        (["--count", "0"], "--count"),
        (["--concurrency", "0"], "--concurrency"),
        (["--endpoint", "nope"], "unknown endpoint 'nope'"),
        (["--set", "name.first=A"], "not an object"),
    ],
)
def test_fire_usage_errors_send_nothing(cli, config_path: Path, receiver: Receiver, token: str,
                                        tmp_path: Path, args: list[str], message: str) -> None:
    write_config(config_path, receiver, CRM)
    (tmp_path / "bad.json").write_text("{oops")
    result = cli("fire", "ClientCreate", *args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert receiver.requests == [] and log_records(config_path) == []


def test_an_event_outside_the_catalog_needs_data(cli, config_path: Path, receiver: Receiver) -> None:
    result = cli("fire", "InvoicePaid")
    assert result.exit_code == 2 and "--data" in result.stderr


def test_nothing_matched_exits_3(cli, config_path: Path, receiver: Receiver, token: str) -> None:
    write_config(config_path, receiver, CRM + BILLING)
    assert cli("fire", "ClientDelete").exit_code == 3
    result = cli("fire", "MeetingScheduled", "--endpoint", "crm")
    assert result.exit_code == 3 and "no mapping" in result.stderr
    assert receiver.requests == []


def test_missing_variable_exits_2_and_sends_nothing(cli, config_path: Path, receiver: Receiver) -> None:
    write_config(config_path, receiver, BILLING + CRM)  # billing needs nothing; crm needs CRM_TOKEN
    result = cli("fire", "ClientCreate")
    assert result.exit_code == 2 and "CRM_TOKEN" in result.stderr
    assert receiver.requests == [] and log_records(config_path) == []


def test_dry_run_masks_secrets_and_sends_nothing(cli, config_path: Path, receiver: Receiver, token: str) -> None:
    write_config(config_path, receiver, CRM + BILLING)
    text = cli("fire", "ClientCreate", "--dry-run")
    assert text.exit_code == 0, text.stderr
    assert "POST " + receiver.url("/crm") in text.stdout and "Authorization: ***" in text.stdout
    as_json = cli("fire", "ClientCreate", "--dry-run", "--json", "--count", "2")
    requests = json.loads(as_json.stdout)
    assert len(requests) == 4 and requests[0]["headers"]["Authorization"] == "***"
    assert requests[0]["method"] == "POST" and requests[0]["body"]["name"] == "Acme Design Co."
    for output in (text.stdout, text.stderr, as_json.stdout):
        assert TOKEN not in output and "literal-key" not in output
    assert receiver.requests == [] and log_records(config_path) == []


def test_a_401_mid_run_disables_the_endpoint(cli, config_path: Path, receiver: Receiver, token: str) -> None:
    write_config(config_path, receiver, CRM)
    receiver.answer("/crm", *[Answer(status=200)] * 5, Answer(status=401))
    result = cli("fire", "ClientCreate", "--count", "20", "--concurrency", "1")
    assert result.exit_code == 1
    url = receiver.url("/crm")
    reason = f"HTTP 401 Unauthorized from POST {url}"
    assert (f"⚠ endpoint 'crm' was disabled: {reason}\n"
            f"  fix the server or the config, then: moxiehook --config {config_path} endpoint enable crm"
            ) in result.stderr
    assert "5 delivered, 1 failed, 14 skipped; disabled: crm" in result.stderr
    assert len(receiver.requests) == 6
    crm = tomllib.loads(config_path.read_text())["endpoints"]["crm"]
    assert crm["enabled"] is False and crm["disabled_reason"] == reason and crm["disabled_at"]
    records = log_records(config_path)
    outcomes = [r["outcome"] for r in records if r["kind"] == "delivery"]
    assert outcomes.count("delivered") == 5 and outcomes.count("failed") == 1 and outcomes.count("skipped") == 14
    assert [r for r in records if r["kind"] == "endpoint"] == [
        {"kind": "endpoint", "at": crm["disabled_at"], "endpoint": "crm", "action": "disabled", "reason": reason}
    ]


def test_a_disable_with_concurrency_skips_the_rest(cli, config_path: Path, receiver: Receiver,
                                                   token: str) -> None:
    write_config(config_path, receiver, CRM)
    receiver.answer("/crm", Answer(status=410))
    result = cli("fire", "ClientCreate", "--count", "30", "--concurrency", "4", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["disabled"][0]["endpoint"] == "crm"
    assert doc["delivered"] == 0 and doc["failed"] + doc["skipped"] == 30
    assert doc["failed"] == len(receiver.requests) <= 4 + 4  # only those already in flight were sent


def test_fire_skips_a_disabled_endpoint(cli, config_path: Path, receiver: Receiver, token: str) -> None:
    write_config(config_path, receiver, CRM)
    cli("endpoint", "disable", "crm", "--reason", "maintenance")
    result = cli("fire", "ClientCreate")
    assert result.exit_code == 3
    assert "crm" in result.stderr and "maintenance" in result.stderr
    assert receiver.requests == []
    skipped = [r for r in log_records(config_path) if r["kind"] == "delivery"]
    assert [r["outcome"] for r in skipped] == ["skipped"] and "maintenance" in skipped[0]["error"]


def test_test_sends_to_a_disabled_endpoint_and_enable_re_enables(cli, config_path: Path,
                                                                  receiver: Receiver) -> None:
    write_config(config_path, receiver, BILLING)
    cli("endpoint", "disable", "billing", "--reason", "was down")
    result = cli("test", "billing", "--enable")
    assert result.exit_code == 0, result.stderr
    assert {r.path for r in receiver.requests} == {"/billing", "/billing-meetings"}
    assert receiver.requests_to("/billing-meetings")[0].json() == catalog.sample("MeetingScheduled")
    assert tomllib.loads(config_path.read_text())["endpoints"]["billing"]["enabled"] is True
    assert {r["mode"] for r in log_records(config_path) if r["kind"] == "delivery"} == {"test"}


def test_test_enable_keeps_it_disabled_on_failure(cli, config_path: Path, receiver: Receiver) -> None:
    write_config(config_path, receiver, BILLING)
    cli("endpoint", "disable", "billing")
    receiver.answer("/billing", Answer(status=400))
    result = cli("test", "billing", "--event", "ClientCreate", "--enable")
    assert result.exit_code == 1 and len(receiver.requests) == 1
    assert tomllib.loads(config_path.read_text())["endpoints"]["billing"]["enabled"] is False


def test_signed_fire_verifies(cli, config_path: Path, receiver: Receiver) -> None:
    signed = BILLING.replace('value = "literal-key" }', f'value = "literal-key" }}\nsigning_secret = "{SECRET}"')
    write_config(config_path, receiver, signed)
    result = cli("fire", "ClientCreate")
    assert result.exit_code == 0, result.stderr
    got = receiver.requests[0]
    standardwebhooks.Webhook(SECRET).verify(got.body, got.headers)
    record = log_records(config_path)[0]
    assert got.headers["webhook-id"] == record["event_id"]
    assert record["request"]["headers"]["webhook-signature"] == got.headers["webhook-signature"]
    assert SECRET not in (config_path.parent / "log.jsonl").read_text()


def test_concurrent_processes_leave_whole_unique_records(config_path: Path, receiver: Receiver) -> None:
    write_config(config_path, receiver, BILLING)
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(
            lambda _: run_moxiehook("--config", str(config_path), "fire", "ClientCreate", "--count", "40",
                                    "--concurrency", "4"),
            range(4)))
    assert [r.returncode for r in runs] == [0, 0, 0, 0], [r.stderr for r in runs]
    records = log_records(config_path)  # json.loads fails on a torn line
    assert len(records) == 160 and len({r["id"] for r in records}) == 160
    assert len({r["request"]["body"]["id"] for r in records}) == 160
    assert len(receiver.requests) == 160


def _nested(depth: int) -> dict:
    """``{"id": …, "deep": [[…[1]…]]}``: arrays and objects ``depth`` levels deep in all."""
    body = 1
    for _ in range(depth - 1):
        body = [body]  # type: ignore[assignment]
    return {"id": "c1", "deep": body}


def test_a_payload_nested_deeper_than_the_log_can_read_back_is_refused_before_sending(
        config_path: Path, receiver: Receiver, token: str) -> None:
    """Real processes: what `fire` sends, `logs`, `logs show` and `replay` read back; deeper is exit 2."""
    from moxiehook.log import MAX_NESTING

    write_config(config_path, receiver, CRM)
    folder = config_path.parent
    env = {"CRM_TOKEN": token}
    for depth in (MAX_NESTING + 1, 900):
        (folder / "deep.json").write_text(json.dumps(_nested(depth)))
        for extra in ((), ("--dry-run",)):
            result = run_moxiehook("fire", "ClientCreate", "--data", "deep.json", *extra, cwd=folder, env=env)
            assert result.returncode == 2, (depth, result.stderr)
            assert result.stderr.startswith("error: the payload nests arrays and objects more than 256 deep")
            assert "Traceback" not in result.stderr
    result = run_moxiehook("fire", "ClientCreate", "--set", "deep=" + json.dumps(_nested(MAX_NESTING + 1)["deep"]),
                           cwd=folder, env=env)
    assert result.returncode == 2 and "nothing was sent" in result.stderr
    assert receiver.requests == [] and not (folder / "log.jsonl").exists()

    (folder / "deep.json").write_text(json.dumps(_nested(MAX_NESTING)))
    result = run_moxiehook("fire", "ClientCreate", "--data", "deep.json", cwd=folder, env=env)
    assert result.returncode == 0, result.stderr
    (record,) = json.loads(run_moxiehook("logs", "--json", cwd=folder).stdout)
    assert record["request"]["body"] == _nested(MAX_NESTING)
    shown = run_moxiehook("logs", "show", record["id"], "--json", cwd=folder)
    assert (shown.returncode, shown.stderr) == (0, "")
    replayed = run_moxiehook("replay", record["id"], cwd=folder, env=env)
    assert replayed.returncode == 0, replayed.stderr
    assert [r.json() for r in receiver.requests] == [_nested(MAX_NESTING)] * 2
