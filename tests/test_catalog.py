"""Tests for moxiehook.catalog.events: the SPEC §2 event catalog and its sample payloads."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from moxiehook.catalog import events as catalog
from moxiehook.catalog.events import EVENTS, EventType, get_event, is_known, sample_payload
from moxiehook.errors import NotFoundError

# SPEC §2 table, written out by hand so a drift in the module is caught here.
SPEC_TABLE: dict[str, list[str]] = {
    "Client": ["ClientCreate", "ClientUpdate", "ClientDelete"],
    "Project task (deliverable)": [
        "DeliverableCreate",
        "DeliverableUpdate",
        "DeliverableDelete",
        "DeliverableApproval",
    ],
    "Scheduled meeting": ["MeetingScheduled", "MeetingUpdated", "MeetingCancelled"],
    "Agreement (V2)": ["AgreementSent", "AgreementViewed", "AgreementSigned"],
    "Agreement (V1: proposals, quotes, contracts)": [
        "ProposalSent",
        "ProposalViewed",
        "ProposalSigned",
    ],
}
SPEC_NAMES = [name for names in SPEC_TABLE.values() for name in names]
OBJECT_OF = {name: obj for obj, names in SPEC_TABLE.items() for name in names}

# Field lists of SPEC §2, per object type.
CLIENT_FIELDS = {
    "id", "accountId", "name", "clientType", "initials", "address1", "city", "postal",
    "country", "website", "phone", "color", "currency", "hourlyAmount", "paymentTerms",
    "contacts", "created", "archive", "sampleData",
}  # fmt: skip
PAYMENT_TERMS_FIELDS = {"paymentDays", "latePaymentFee", "depositAmount", "depositType"}
CONTACT_FIELDS = {
    "id", "clientId", "firstName", "lastName", "email", "phone", "role",
    "defaultContact", "invoiceContact", "portalAccess",
}  # fmt: skip
OBJECT_FIELDS = {
    "Client": CLIENT_FIELDS,
    "Project task (deliverable)": {
        "id", "clientId", "projectId", "name", "status", "dueDate", "project", "client",
    },
    "Scheduled meeting": {
        "id", "meetingId", "clientId", "meetingStatus", "meetingName", "schedulerName",
        "confirmedTime", "scheduledTimezone", "formData", "location",
    },
    "Agreement (V2)": {
        "id", "accountId", "name", "client", "status", "dateCreated", "dateCompleted",
        "fullyExecuted", "clientSigned", "userSigned",
    },
    "Agreement (V1: proposals, quotes, contracts)": {
        "id", "accountId", "client", "proposalStatus", "proposalType", "dateSent",
        "dateSigned", "isFullyExecuted",
    },
}  # fmt: skip

ISO_MS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
HEX24 = re.compile(r"^[0-9a-f]{24}$")


def walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Yield every (key, value) pair at any depth of a JSON-like value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def is_date_key(key: str) -> bool:
    return key in {"created", "start", "end"} or key.startswith("date") or key.endswith("Date")


def is_id_key(key: str) -> bool:
    return key == "id" or (key.endswith("Id") and key != "accountId")


# --- the catalog ------------------------------------------------------------


def test_exactly_the_16_spec_events_in_spec_order() -> None:
    names = [event.name for event in EVENTS]
    assert len(EVENTS) == 16
    assert len(set(names)) == 16
    assert names == SPEC_NAMES


def test_each_event_has_its_spec_object_and_a_description() -> None:
    for event in EVENTS:
        assert isinstance(event, EventType)
        assert event.object == OBJECT_OF[event.name]
        assert event.description.strip()
        assert event.description.endswith(".")
        assert "\n" not in event.description


def test_event_type_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        EVENTS[0].name = "Other"  # type: ignore[misc]


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_is_known_and_get_event_for_every_known_event(name: str) -> None:
    assert is_known(name)
    assert get_event(name).name == name


@pytest.mark.parametrize("name", ["", "Nope", "clientcreate", "ClientCreate ", "InvoiceSent"])
def test_unknown_events(name: str) -> None:
    assert not is_known(name)
    with pytest.raises(NotFoundError, match=re.escape(f"unknown event '{name}'")):
        get_event(name)
    with pytest.raises(NotFoundError) as info:
        sample_payload(name)
    assert f"'{name}'" in str(info.value)
    assert "moxiehook events" in str(info.value)


# --- sample payloads --------------------------------------------------------


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_sample_is_a_json_serialisable_dict_with_the_spec_fields(name: str) -> None:
    sample = sample_payload(name)
    assert isinstance(sample, dict)
    assert json.loads(json.dumps(sample)) == sample
    missing = OBJECT_FIELDS[OBJECT_OF[name]] - sample.keys()
    assert not missing, f"{name} sample lacks {sorted(missing)}"
    # Bare object, no envelope (SPEC §1).
    assert not {"event", "type", "data", "payload"} & sample.keys()


def test_sample_payload_returns_a_fresh_deep_copy() -> None:
    first = sample_payload("ClientCreate")
    first["name"] = "Mutated"
    first["paymentTerms"]["paymentDays"] = 999
    first["contacts"][0]["email"] = "mutated@example.com"
    first["contacts"].append({})
    second = sample_payload("ClientCreate")
    assert second["name"] != "Mutated"
    assert second["paymentTerms"]["paymentDays"] != 999
    assert second["contacts"][0]["email"] != "mutated@example.com"
    assert len(second["contacts"]) == 1
    assert first is not second


def test_shared_nested_objects_do_not_leak_between_events() -> None:
    # Deliverables and agreements both nest a compact client; mutating one
    # event's copy must not change another event's sample.
    deliverable = sample_payload("DeliverableCreate")
    deliverable["client"]["name"] = "Mutated"
    assert sample_payload("AgreementSent")["client"]["name"] != "Mutated"
    assert sample_payload("DeliverableUpdate")["client"]["name"] != "Mutated"


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_ids_are_24_lowercase_hex_and_account_id_is_int(name: str) -> None:
    sample = sample_payload(name)
    ids = [(key, value) for key, value in walk(sample) if is_id_key(key)]
    assert ids, f"{name} sample has no id"
    for key, value in ids:
        assert isinstance(value, str) and HEX24.match(value), f"{name}: {key}={value!r}"
    for key, value in walk(sample):
        if key == "accountId":
            assert type(value) is int, f"{name}: accountId={value!r}"


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_dates_are_iso_8601_with_ms_and_z(name: str) -> None:
    payload = sample_payload(name)
    dates = [(k, v) for k, v in walk(payload) if is_date_key(k)]
    set_dates = [(k, v) for k, v in dates if v is not None]
    assert set_dates, f"{name} sample has no date: {sorted(payload)}"
    for key, value in set_dates:
        assert isinstance(value, str) and ISO_MS_Z.match(value), f"{name}: {key}={value!r}"
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")  # a real calendar date


def test_client_sample_has_every_spec_client_and_contact_field() -> None:
    client = sample_payload("ClientCreate")
    assert CLIENT_FIELDS <= client.keys()
    assert client["clientType"] in {"Client", "Prospect"}
    assert PAYMENT_TERMS_FIELDS <= client["paymentTerms"].keys()
    assert isinstance(client["contacts"], list) and client["contacts"]
    for contact in client["contacts"]:
        assert CONTACT_FIELDS <= contact.keys()
        assert contact["clientId"] == client["id"]
    assert isinstance(client["archive"], bool)
    assert isinstance(client["sampleData"], bool)


def test_nested_objects_have_their_spec_shape() -> None:
    deliverable = sample_payload("DeliverableCreate")
    assert deliverable["project"]["id"] == deliverable["projectId"]
    assert deliverable["client"]["id"] == deliverable["clientId"]
    assert {"id", "name", "initials", "color"} <= deliverable["client"].keys()
    meeting = sample_payload("MeetingScheduled")
    assert {"start", "end"} <= meeting["confirmedTime"].keys()
    assert {"firstName", "lastName", "email"} <= meeting["formData"].keys()
    assert "type" in meeting["location"]
    for name in ("AgreementSent", "ProposalSent"):
        assert {"id", "name"} <= sample_payload(name)["client"].keys()


def test_variants_differ_sensibly() -> None:
    create, update = sample_payload("ClientCreate"), sample_payload("ClientUpdate")
    assert create["id"] == update["id"]
    assert create != update

    assert sample_payload("MeetingScheduled")["meetingStatus"] == "Scheduled"
    assert sample_payload("MeetingCancelled")["meetingStatus"] == "Cancelled"
    assert (
        sample_payload("MeetingUpdated")["confirmedTime"]
        != sample_payload("MeetingScheduled")["confirmedTime"]
    )

    assert "approv" in sample_payload("DeliverableApproval")["status"].lower()
    assert sample_payload("DeliverableUpdate") != sample_payload("DeliverableCreate")

    sent, signed = sample_payload("AgreementSent"), sample_payload("AgreementSigned")
    assert (sent["clientSigned"], sent["fullyExecuted"], sent["dateCompleted"]) == (
        False,
        False,
        None,
    )
    assert signed["clientSigned"] is True and signed["fullyExecuted"] is True
    assert signed["dateCompleted"] is not None
    assert sample_payload("AgreementViewed")["status"] != sent["status"]

    p_sent, p_signed = sample_payload("ProposalSent"), sample_payload("ProposalSigned")
    assert p_sent["isFullyExecuted"] is False and p_sent["dateSigned"] is None
    assert p_signed["isFullyExecuted"] is True and p_signed["dateSigned"] is not None
    assert sample_payload("ProposalViewed")["proposalStatus"] != p_sent["proposalStatus"]


def test_module_imports_no_cli_or_network_library() -> None:
    source = open(catalog.__file__, encoding="utf-8").read()
    for banned in ("typer", "rich", "httpx"):
        assert not re.search(rf"^\s*(import|from)\s+{banned}\b", source, re.MULTILINE)
