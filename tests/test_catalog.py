"""moxiehook.catalog: Moxie's event catalog, its samples (package data) and their schemas.

Field-for-field shapes are checked against Moxie's reference in test_catalog_shapes.py; varied
payloads in test_catalog_vary.py.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from moxiehook import catalog
from moxiehook.catalog import EVENTS, EventType, get_event, is_known
from moxiehook.errors import NotFoundError, UsageError

# The catalog's table, written out by hand so a drift in the module is caught here.
CATALOG_TABLE: dict[str, tuple[str, list[str]]] = {
    "Client": ("documented", ["ClientCreate", "ClientUpdate", "ClientDelete"]),
    "Project task (deliverable)": (
        "documented", ["DeliverableCreate", "DeliverableUpdate", "DeliverableDelete", "DeliverableApproval"],
    ),
    "Scheduled meeting": ("documented", ["MeetingScheduled", "MeetingUpdated", "MeetingCancelled"]),
    "Agreement V1 (proposals, quotes, contracts)": ("documented", ["ProposalSent", "ProposalViewed", "ProposalSigned"]),
    "Agreement V2": ("documented", ["AgreementSent", "AgreementViewed", "AgreementSigned"]),
    "Project": ("inferred", ["ProjectCreate", "ProjectUpdate", "ProjectComplete"]),
    "Form submission": ("inferred", ["FormCompleted"]),
    "Time entry": ("inferred", ["TimerCreate", "TimerUpdate", "TimerDelete"]),
    "Pipeline opportunity": ("inferred", ["OpportunityCreate", "OpportunityUpdate", "OpportunityDelete"]),
    "Invoice": ("inferred", ["InvoiceSent", "PaymentReceived"]),
}  # fmt: skip
CATALOG_NAMES = [name for _, names in CATALOG_TABLE.values() for name in names]
OBJECT_OF = {name: obj for obj, (_, names) in CATALOG_TABLE.items() for name in names}
SOURCE_OF = {name: source for source, names in CATALOG_TABLE.values() for name in names}
PARTIAL = {"ProposalSent", "ProposalViewed", "ProposalSigned", "AgreementSent", "AgreementViewed", "AgreementSigned"}
DATA = Path(catalog.__file__).parent / "data"


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, value) pair at any depth of a JSON-like value, ``a.b[0].c`` style."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]")


# --- the catalog ------------------------------------------------------------


def test_exactly_the_28_spec_events_in_spec_order() -> None:
    names = [event.name for event in EVENTS]
    assert len(set(names)) == len(names) == 28
    assert names == CATALOG_NAMES
    assert catalog.names() == CATALOG_NAMES


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.name)
def test_each_event_has_its_spec_object_source_and_a_description(event: EventType) -> None:
    assert isinstance(event, EventType)
    assert event.object == OBJECT_OF[event.name]
    assert event.source == SOURCE_OF[event.name]
    assert event.partial is (event.name in PARTIAL)
    assert event.description.strip() and event.description.endswith(".") and "\n" not in event.description
    assert (event.shape_note is not None) is event.partial
    assert event.shape == (f"{event.source}, partial" if event.partial else event.source)


def test_event_type_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        EVENTS[0].name = "Other"  # type: ignore[misc]


@pytest.mark.parametrize("name", CATALOG_NAMES)
def test_is_known_and_get_event_for_every_known_event(name: str) -> None:
    assert is_known(name)
    assert get_event(name).name == name


@pytest.mark.parametrize("name", ["", "Nope", "ClientCreate ", "InvoicePaid", "clientcreate"])
def test_unknown_events(name: str) -> None:
    """Names are case-sensitive on the wire: ``clientcreate`` is not ours (but gets a suggestion)."""
    assert not is_known(name)
    for lookup in (get_event, catalog.sample, catalog.sample_text, catalog.schema):
        with pytest.raises(NotFoundError, match=re.escape(f"unknown event '{name}'")):
            lookup(name)


@pytest.mark.parametrize(
    ("typed", "meant"),
    [("ClientCreat", "ClientCreate"), ("clientcreate", "ClientCreate"), ("CLIENTCREATE", "ClientCreate"),
     ("MeetingCanceled", "MeetingCancelled"), ("InvoiceSend", "InvoiceSent"),
     ("DeliverableAproval", "DeliverableApproval")],
)  # fmt: skip
def test_a_near_miss_gets_the_name_it_is_close_to(typed: str, meant: str) -> None:
    with pytest.raises(NotFoundError, match=re.escape(f"unknown event '{typed}' (did you mean {meant}?)")):
        get_event(typed)
    with pytest.raises(UsageError, match=re.escape(f"(did you mean {meant}?)")):
        catalog.check_not_a_near_miss(typed)


def test_a_name_far_from_every_known_one_is_a_users_own_event() -> None:
    with pytest.raises(NotFoundError, match=re.escape("unknown event 'Nope' (see: moxiehook events)")):
        get_event("Nope")
    catalog.check_not_a_near_miss("InvoicePaidInFullByCheque")  # no error: not close to anything
    catalog.check_not_a_near_miss("ClientCreated", also_known=["ClientCreated"])  # mapped: the user's own
    with pytest.raises(UsageError, match=re.escape("did you mean OrderShipped?")):
        catalog.check_not_a_near_miss("OrderShiped", also_known=["OrderShipped"])
    with pytest.raises(UsageError, match=re.escape("; add --custom")):
        catalog.check_not_a_near_miss("ClientCreat", hint="add --custom")


# --- sample payloads --------------------------------------------------------


def test_one_sample_file_per_object_and_the_events_of_an_object_share_it() -> None:
    assert len(list(DATA.glob("*.json"))) == 10
    for _, names in CATALOG_TABLE.values():
        keys = {get_event(name).object_key for name in names}
        assert len(keys) == 1
        assert (DATA / f"{keys.pop()}.json").is_file()
        assert len({json.dumps(catalog.sample(name)) for name in names}) == 1


@pytest.mark.parametrize("name", CATALOG_NAMES)
def test_sample_is_the_data_file_as_it_is(name: str) -> None:
    text = (DATA / f"{get_event(name).object_key}.json").read_text(encoding="utf-8")
    assert catalog.sample_text(name) == text
    assert catalog.sample(name) == json.loads(text)
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"  # pretty, for people


@pytest.mark.parametrize("name", CATALOG_NAMES)
def test_sample_is_a_bare_json_object(name: str) -> None:
    sample = catalog.sample(name)
    assert isinstance(sample, dict)
    assert json.loads(json.dumps(sample)) == sample
    assert not {"event", "type", "data", "payload"} & sample.keys()  # no envelope: Moxie sends the bare object
    assert re.fullmatch(r"[0-9a-f]{24}", sample["id"])
    for path, value in walk(sample):
        if path.endswith("accountId"):
            assert type(value) is int, path


def test_the_sample_files_are_package_data() -> None:
    """An installed moxiehook (not only this checkout) has the samples: pyproject ships them."""
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    shipped = pyproject["tool"]["setuptools"]["package-data"]["moxiehook"]
    package = Path(catalog.__file__).parent.parent
    files = {path for pattern in shipped for path in package.glob(pattern)}
    assert set(DATA.glob("*.json")) <= files


def test_sample_returns_a_fresh_deep_copy() -> None:
    first = catalog.sample("ClientCreate")
    first["name"] = "Mutated"
    first["paymentTerms"]["paymentDays"] = 999
    first["contacts"][0]["email"] = "mutated@example.com"
    first["contacts"].append({})
    second = catalog.sample("ClientCreate")
    assert second["name"] != "Mutated"
    assert second["paymentTerms"]["paymentDays"] != 999
    assert second["contacts"][0]["email"] != "mutated@example.com"
    assert len(second["contacts"]) == 1
    assert first is not second


def test_changing_one_events_sample_does_not_leak_into_another() -> None:
    deliverable = catalog.sample("DeliverableCreate")
    deliverable["client"]["name"] = "Mutated"
    assert catalog.sample("DeliverableUpdate")["client"]["name"] != "Mutated"
    assert catalog.sample("AgreementSent")["client"]["name"] != "Mutated"


def test_the_samples_tell_one_consistent_story() -> None:
    """One client, one project, one account: the ids and names that recur agree across objects."""
    client, project = catalog.sample("ClientCreate"), catalog.sample("ProjectCreate")
    deliverable = catalog.sample("DeliverableCreate")
    assert deliverable["client"]["id"] == client["id"] and deliverable["client"]["name"] == client["name"]
    assert deliverable["project"]["id"] == project["id"] == deliverable["projectId"]
    assert all(contact["clientId"] == client["id"] for contact in client["contacts"])
    accounts, client_ids, project_ids = set(), set(), set()
    for name in CATALOG_NAMES:
        for path, value in walk(catalog.sample(name)):
            key = re.split(r"[.\]]", path)[-1]
            if key == "accountId":
                accounts.add(value)
            elif key == "clientId" and value is not None:
                client_ids.add(value)
            elif key == "projectId" and value is not None:
                project_ids.add(value)
    assert accounts == {client["accountId"]}
    assert client_ids == {client["id"]}
    assert project_ids == {project["id"]}


# --- schemas ----------------------------------------------------------------

SCHEMAS = {name: catalog.schema(name) for name in CATALOG_NAMES}


@pytest.mark.parametrize("name", CATALOG_NAMES)
def test_the_schema_is_draft_2020_12_and_the_sample_validates(name: str) -> None:
    schema = SCHEMAS[name]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(catalog.sample(name))
    assert schema["required"] == list(catalog.sample(name))
    assert ("cut short" in schema["description"]) is (name in PARTIAL)


def _wrong_value(value: Any) -> Any:
    """A value of another JSON type than ``value``."""
    if isinstance(value, str):
        return 42
    if isinstance(value, (bool, dict, list)):
        return "text"
    if isinstance(value, (int, float)):
        return "12" if isinstance(value, int) else True
    raise AssertionError(value)


def _set_at(payload: Any, path: str, value: Any) -> None:
    steps = [int(s) if s.isdigit() else s for s in re.findall(r"[^.\[\]]+", path)]
    for step in steps[:-1]:
        payload = payload[step]
    payload[steps[-1]] = value


@pytest.mark.parametrize("object_key", sorted({e.object_key for e in EVENTS}))
def test_a_wrong_type_anywhere_does_not_validate(object_key: str) -> None:
    """Every non-null field of every object, in turn given a value of another type, fails."""
    name = next(e.name for e in EVENTS if e.object_key == object_key)
    validator = Draft202012Validator(SCHEMAS[name])
    sample = catalog.sample(name)
    checked = 0
    for path, value in walk(sample):
        if not path or value is None:
            continue  # null in Moxie's sample: its type is unknown, anything validates
        broken = copy.deepcopy(sample)
        _set_at(broken, path, _wrong_value(value))
        assert not validator.is_valid(broken), path
        checked += 1
    assert checked > 10


@pytest.mark.parametrize(
    ("path", "value"),
    [("id", "6543A1F2C9E77B2D4F1A0B3C"), ("id", "6543a1f2c9e77b2d4f1a0b3"), ("created", "2026-10-26T14:03:23Z"),
     ("created", "2026-10-26 14:03:23.915Z"), ("color", "blue"), ("contacts[0].id", None), ("name", None),
     ("contacts[0].clientId", "x"), ("paymentTerms.fromProposalSignedDate", "yesterday")],
)  # fmt: skip
def test_a_malformed_or_null_value_does_not_validate(path: str, value: Any) -> None:
    client = catalog.sample("ClientCreate")
    _set_at(client, path, value)
    assert not Draft202012Validator(SCHEMAS["ClientCreate"]).is_valid(client)


def test_a_missing_field_does_not_validate_but_an_extra_one_does() -> None:
    validator = Draft202012Validator(SCHEMAS["ClientCreate"])
    client = catalog.sample("ClientCreate")
    del client["contacts"][0]["email"]
    assert not validator.is_valid(client)
    client = catalog.sample("ClientCreate")
    client["addedByMoxieLater"] = True  # Moxie adds fields over time: objects stay open
    assert validator.is_valid(client)


def test_a_field_null_in_moxies_sample_takes_any_value() -> None:
    validator = Draft202012Validator(SCHEMAS["ClientCreate"])
    for value in (None, "Owner", 3, {"a": 1}):
        client = catalog.sample("ClientCreate")
        client["contacts"][0]["role"] = value
        assert validator.is_valid(client)
    assert "real type unknown" in SCHEMAS["ClientCreate"]["properties"]["contacts"]["items"]["properties"]["role"][
        "description"]


def test_dates_carry_a_format_for_validators_that_check_formats() -> None:
    schema = SCHEMAS["InvoiceSent"]
    assert schema["properties"]["dateDue"]["format"] == "date"
    assert SCHEMAS["ClientCreate"]["properties"]["created"]["format"] == "date-time"
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    invoice = catalog.sample("InvoiceSent")
    invoice["dateDue"] = "2026-02-30"  # the pattern fits; the calendar does not
    assert not validator.is_valid(invoice)


def test_schema_returns_a_fresh_dict() -> None:
    schema = catalog.schema("ClientCreate")
    schema["properties"].clear()
    assert catalog.schema("ClientCreate")["properties"]


def test_the_catalog_imports_no_cli_or_network_library() -> None:
    for path in Path(catalog.__file__).parent.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        for banned in ("typer", "rich", "httpx", "click"):
            assert not re.search(rf"^\s*(import|from)\s+{banned}\b", source, re.MULTILINE), (path, banned)
