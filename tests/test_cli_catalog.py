"""The catalog where users type it: ``fire --vary``, ``--set`` into arrays, and suggestions for
mistyped event names in ``fire``, ``test --event``, ``map add``, ``logs --event`` and ``replay --event``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from logrecords import delivery, write

from moxiehook import catalog
from tests.conftest import Receiver

CRM = """
[endpoints.crm]
auth = { type = "bearer", token = "t0ken" }
[[endpoints.crm.mappings]]
event = "ClientCreate"
url = "URL/crm"
[[endpoints.crm.mappings]]
event = "DeliverableCreate"
url = "URL/deliverables"
[[endpoints.crm.mappings]]
event = "OrderShipped"
url = "URL/orders"
"""


@pytest.fixture
def crm(config_path: Path, receiver: Receiver) -> Path:
    config_path.write_text(config_path.read_text() + CRM.replace("URL", receiver.url("")))
    return config_path


@pytest.fixture
def log(config_path: Path) -> Path:
    return config_path.parent / "log.jsonl"


def dry_bodies(cli, *args: str) -> list[dict]:
    result = cli("fire", *args, "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    return [request["body"] for request in json.loads(result.stdout)]


# --- fire --vary --------------------------------------------------------------------------------


def test_vary_sends_different_schema_valid_bodies(cli, crm: Path, receiver: Receiver, log: Path) -> None:
    result = cli("fire", "DeliverableCreate", "--vary", "--seed", "11", "--count", "40")
    assert result.exit_code == 0, result.stderr
    bodies = [r.json() for r in receiver.requests_to("/deliverables")]
    assert len(bodies) == 40
    validator = Draft202012Validator(catalog.schema("DeliverableCreate"))
    assert all(validator.is_valid(body) for body in bodies)
    assert len({json.dumps(body, sort_keys=True) for body in bodies}) == 40
    logged = [json.loads(line)["request"]["body"] for line in log.read_text().splitlines()]
    assert sorted(map(json.dumps, logged)) == sorted(map(json.dumps, bodies))


def test_the_same_seed_gives_the_same_bodies_and_another_seed_others(cli, crm: Path) -> None:
    first = dry_bodies(cli, "ClientCreate", "--vary", "--seed", "5", "--count", "12")
    assert dry_bodies(cli, "ClientCreate", "--vary", "--seed", "5", "--count", "12") == first
    assert dry_bodies(cli, "ClientCreate", "--vary", "--seed", "6", "--count", "12") != first
    assert len({json.dumps(body) for body in first}) == 12


def test_without_a_seed_the_seed_drawn_is_printed_and_repeats_the_run(cli, crm: Path) -> None:
    result = cli("fire", "ClientCreate", "--vary", "--count", "3", "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    line = next(line for line in result.stderr.splitlines() if line.startswith("varied payloads: seed "))
    seed = line.split()[3]
    again = dry_bodies(cli, "ClientCreate", "--vary", "--count", "3", "--seed", seed)
    assert again == [request["body"] for request in json.loads(result.stdout)]


def test_a_set_value_wins_over_the_varied_one(cli, crm: Path) -> None:
    bodies = dry_bodies(cli, "ClientCreate", "--vary", "--seed", "3", "--count", "30",
                        "--set", "name=Fixed Ltd", "--set", "contacts[1].email=second@example.com")
    assert {body["name"] for body in bodies} == {"Fixed Ltd"}
    assert {body["contacts"][1]["email"] for body in bodies} == {"second@example.com"}
    assert len({json.dumps(body) for body in bodies}) == 30  # still varied everywhere else
    assert all(Draft202012Validator(catalog.schema("ClientCreate")).is_valid(body) for body in bodies)


def test_a_set_index_no_varied_copy_reaches_is_exit_2_before_anything_is_sent(
        rejected, crm: Path, receiver: Receiver) -> None:
    rejected("fire", "ClientCreate", "--vary", "--seed", "1", "--set", "contacts[9].email=x",
             match=("--set 'contacts[9].email=x': contacts[9] is past the end of the array in each of 200 varied",
                    "at most 5 elements"))
    assert receiver.requests == []


def test_vary_varies_a_data_payload_by_its_own_shape(cli, crm: Path, tmp_path: Path) -> None:
    (tmp_path / "order.json").write_text(json.dumps({"id": "6543a1f2c9e77b2d4f1a0b3c", "total": 12.5,
                                                     "lines": [{"sku": "A-1", "qty": 2}], "note": None}))
    bodies = dry_bodies(cli, "OrderShipped", "--data", "order.json", "--vary", "--seed", "2", "--count", "30")
    assert len({json.dumps(body) for body in bodies}) == 30
    assert all(set(body) == {"id", "total", "lines", "note"} for body in bodies)
    assert all(isinstance(body["total"], float) and isinstance(body["lines"], list) for body in bodies)


def test_seed_without_vary_is_a_usage_error(rejected, crm: Path) -> None:
    rejected("fire", "ClientCreate", "--seed", "3", match="--seed is for --vary")


# --- --set into arrays ------------------------------------------------------------------------------


def test_set_reaches_into_arrays(cli, crm: Path, receiver: Receiver) -> None:
    result = cli("fire", "ClientCreate", "--set", "contacts[0].email=zoë@example.com",
                 "--set", "contacts.0.firstName=Zoë", "--set", "paymentTerms.paymentDays=45")
    assert result.exit_code == 0, result.stderr
    body = receiver.requests_to("/crm")[0].json()
    assert body["contacts"][0]["email"] == "zoë@example.com" and body["contacts"][0]["firstName"] == "Zoë"
    assert body["paymentTerms"]["paymentDays"] == 45
    assert not {"contacts[0]", "contacts.0"} & body.keys()


@pytest.mark.parametrize(
    ("assignment", "message"),
    [("contacts[1].email=x", "contacts[1] is past the end (the array has 1 element)"),
     ("contacts.3.email=x", "contacts.3 is past the end"),
     ("name.first=x", "name is a string, not an object"),
     ("name[0]=x", "name is a string, not an array"),
     ("notes.text=x", "notes is null, not an object"),
     ("contacts.email=x", "contacts is an array, not an object"),
     ("nothing[0].email=x", "nothing is not in the payload"),
     ("contacts[x]=1", "is not a key or key[N]")],
)  # fmt: skip
def test_a_set_path_that_does_not_fit_is_exit_2_naming_it_and_nothing_is_sent(
        rejected, crm: Path, receiver: Receiver, assignment: str, message: str) -> None:
    rejected("fire", "ClientCreate", "--set", assignment, match=(f"--set {assignment!r}", message))
    assert receiver.requests == []


# --- suggestions for mistyped event names --------------------------------------------------------


@pytest.mark.parametrize(("typed", "meant"), [("ClientCreat", "ClientCreate"), ("clientcreate", "ClientCreate"),
                                              ("InvoiceSend", "InvoiceSent"), ("OrderShiped", "OrderShipped")])
def test_fire_of_a_near_miss_is_exit_2_with_the_suggestion(rejected, crm: Path, receiver: Receiver,
                                                           typed: str, meant: str) -> None:
    """Not exit 3 (no mapping) and not the advice to pass --data: the name is a typo."""
    line = rejected("fire", typed, match=(f"unknown event '{typed}'", f"did you mean {meant}?"))
    assert "--data" not in line
    line = rejected("fire", typed, "--data", "-", input="{}", match=f"did you mean {meant}?")
    assert receiver.requests == []


def test_fire_of_a_mapped_own_event_is_not_corrected(cli, crm: Path, receiver: Receiver) -> None:
    result = cli("fire", "OrderShipped", "--data", "-", input='{"order": 1}')
    assert result.exit_code == 0, result.stderr
    assert receiver.requests_to("/orders")[0].json() == {"order": 1}
    assert cli("fire", "SomethingElseEntirely", "--data", "-", input="{}").exit_code == 3  # own, unmapped


def test_test_event_near_miss_gets_the_suggestion(rejected, crm: Path, receiver: Receiver) -> None:
    rejected("test", "crm", "--event", "DeliverableCreat", match="did you mean DeliverableCreate?")
    assert receiver.requests == []


def test_map_add_refuses_a_near_miss_unless_custom(cli, rejected, crm: Path) -> None:
    rejected("map", "add", "crm", "MeetingScheduld", "http://127.0.0.1:9/x",
             match=("did you mean MeetingScheduled?", "add --custom"))
    result = cli("map", "add", "crm", "MeetingScheduld", "http://127.0.0.1:9/x", "--custom")
    assert result.exit_code == 0, result.stderr
    mapped = {m["event"] for m in tomllib.loads(crm.read_text())["endpoints"]["crm"]["mappings"]}
    assert "MeetingScheduld" in mapped
    assert cli("map", "add", "crm", "TicketOpened", "http://127.0.0.1:9/t").exit_code == 0  # far from all: own


def test_map_remove_of_a_near_miss_names_the_mapped_event(rejected, crm: Path) -> None:
    rejected("map", "remove", "crm", "DeliverableCreat", match=("no mapping for DeliverableCreat",
                                                                  "did you mean DeliverableCreate?"))


@pytest.mark.parametrize("command", [("logs",), ("replay",)])
def test_logs_and_replay_event_near_miss_is_exit_2(rejected, crm: Path, log: Path, receiver: Receiver,
                                                   command: tuple[str, ...]) -> None:
    write(log, delivery(0, event="ClientCreate", url=receiver.url("/crm")))
    rejected(*command, "--event", "ClientCreat", match="did you mean ClientCreate?")
    assert receiver.requests == []


def test_logs_and_replay_accept_any_name_the_log_holds(cli, crm: Path, log: Path, receiver: Receiver) -> None:
    write(log, delivery(0, event="ClientCreat", outcome="failed", status=500, url=receiver.url("/crm")))
    result = cli("logs", "--event", "ClientCreat", "--json")
    assert result.exit_code == 0, result.stderr
    assert [r["event"] for r in json.loads(result.stdout)] == ["ClientCreat"]
    result = cli("replay", "--event", "ClientCreat", "--failed")
    assert result.exit_code == 0, result.stderr
    assert len(receiver.requests) == 1
