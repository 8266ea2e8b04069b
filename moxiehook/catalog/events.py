"""The built-in event catalog: the 16 Moxie event types and their sample payloads.

SPEC §2 fixes the event names, the object each one carries and the Moxie field
names of that object. ``events`` lists the catalog, ``events show`` prints a
sample, and ``fire`` / ``test`` send a sample when the user gives no ``--data``.

Samples are the bare object Moxie would POST (no envelope, SPEC §1). They are
built from one base literal per object type plus small per-event overrides, so
a field name is spelled once and every variant of an object stays consistent.
Callers get a fresh deep copy, because ``--set`` and ``--count`` mutate it.

Stdlib only: this module is imported by commands that must start fast and by
core code that never touches the terminal or the network.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from moxiehook.errors import NotFoundError

__all__ = ["EVENTS", "EventType", "get_event", "is_known", "sample_payload"]


@dataclass(frozen=True)
class EventType:
    """One built-in event type, as listed by ``moxiehook events``."""

    name: str  # sent as X-Event-Type, e.g. "ClientCreate"
    object: str  # the object column of the SPEC §2 table, e.g. "Client"
    description: str  # one short sentence saying when Moxie sends it


# The object column of SPEC §2, spelled exactly as there (shown by `events`).
_CLIENT_OBJECT = "Client"
_DELIVERABLE_OBJECT = "Project task (deliverable)"
_MEETING_OBJECT = "Scheduled meeting"
_AGREEMENT_OBJECT = "Agreement (V2)"
_PROPOSAL_OBJECT = "Agreement (V1: proposals, quotes, contracts)"

# Ids are shared between objects so the samples tell one coherent story: the
# deliverable, meeting, agreement and proposal all belong to the same client.
_ACCOUNT_ID = 48213
_CLIENT_ID = "6543a1f2c9e77b2d4f1a0b3c"
_PROJECT_ID = "6543a20bc9e77b2d4f1a0b41"

_CLIENT: dict[str, Any] = {
    "id": _CLIENT_ID,
    "accountId": _ACCOUNT_ID,
    "name": "Acme Design Co.",
    "clientType": "Client",
    "initials": "AD",
    "address1": "350 Fifth Avenue",
    "city": "New York",
    "postal": "10118",
    "country": "US",
    "website": "https://acmedesign.example.com",
    "phone": "+1 212 555 0142",
    "color": "#4F7CAC",
    "currency": "USD",
    "hourlyAmount": 125.0,
    "paymentTerms": {
        "paymentDays": 30,
        "latePaymentFee": 1.5,
        "depositAmount": 25.0,
        "depositType": "Percentage",
    },
    "contacts": [
        {
            "id": "6543a1f2c9e77b2d4f1a0b3d",
            "clientId": _CLIENT_ID,
            "firstName": "Dana",
            "lastName": "Whitfield",
            "email": "dana@acmedesign.example.com",
            "phone": "+1 212 555 0143",
            "role": "Creative Director",
            "defaultContact": True,
            "invoiceContact": True,
            "portalAccess": True,
        }
    ],
    "created": "2026-11-02T15:04:05.123Z",
    "archive": False,
    "sampleData": False,
}

# Moxie nests a compact client in other objects rather than the full record;
# deriving it keeps the two in step.
_CLIENT_SUMMARY: dict[str, Any] = {
    key: _CLIENT[key] for key in ("id", "accountId", "name", "clientType", "initials", "color")
}

_DELIVERABLE: dict[str, Any] = {
    "id": "6543a2e7c9e77b2d4f1a0b52",
    "accountId": _ACCOUNT_ID,
    "clientId": _CLIENT_ID,
    "projectId": _PROJECT_ID,
    "name": "Homepage wireframes",
    "description": "Low-fidelity wireframes for the new homepage and navigation.",
    "status": "Not started",
    "dueDate": "2026-11-20T17:00:00.000Z",
    "created": "2026-11-03T09:12:44.517Z",
    "project": {
        "id": _PROJECT_ID,
        "accountId": _ACCOUNT_ID,
        "clientId": _CLIENT_ID,
        "name": "Website redesign",
        "active": True,
    },
    "client": _CLIENT_SUMMARY,
}

_MEETING: dict[str, Any] = {
    "id": "6543a3b1c9e77b2d4f1a0b67",
    "accountId": _ACCOUNT_ID,
    "meetingId": "6543a0d4c9e77b2d4f1a0b18",
    "clientId": _CLIENT_ID,
    "meetingStatus": "Scheduled",
    "meetingName": "Discovery call with Dana Whitfield",
    "schedulerName": "30-minute discovery call",
    "confirmedTime": {
        "start": "2026-11-10T16:00:00.000Z",
        "end": "2026-11-10T16:30:00.000Z",
    },
    "scheduledTimezone": "America/New_York",
    "formData": {
        "firstName": "Dana",
        "lastName": "Whitfield",
        "email": "dana@acmedesign.example.com",
        "phone": "+1 212 555 0143",
        "answers": [
            {
                "question": "What would you like to discuss?",
                "answer": "Scope and timeline for the website redesign.",
            }
        ],
    },
    "location": {"type": "Zoom"},
    "created": "2026-11-04T11:27:09.830Z",
}

# An agreement as first sent: the freelancer has signed, the client has not.
_AGREEMENT: dict[str, Any] = {
    "id": "6543a47fc9e77b2d4f1a0b7a",
    "accountId": _ACCOUNT_ID,
    "name": "Website redesign agreement",
    "client": _CLIENT_SUMMARY,
    "status": "Sent",
    "dateCreated": "2026-11-05T14:02:31.204Z",
    "dateCompleted": None,
    "fullyExecuted": False,
    "clientSigned": False,
    "userSigned": True,
}

_PROPOSAL: dict[str, Any] = {
    "id": "6543a55cc9e77b2d4f1a0b8e",
    "accountId": _ACCOUNT_ID,
    "client": _CLIENT_SUMMARY,
    "proposalStatus": "Sent",
    "proposalType": "Proposal",
    "dateSent": "2026-11-05T14:10:02.668Z",
    "dateSigned": None,
    "isFullyExecuted": False,
}


def _variant(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Return a deep copy of ``base`` with top-level ``changes`` applied.

    Copying here means no two catalog entries share a nested dict, so even a
    bug that mutated a stored sample could not leak into another event.
    """
    sample = copy.deepcopy(base)
    sample.update(copy.deepcopy(changes))
    return sample


# One row per event, in SPEC table order (``events`` lists them this way).
_CATALOG: tuple[tuple[EventType, dict[str, Any]], ...] = (
    (
        EventType("ClientCreate", _CLIENT_OBJECT, "A client or prospect was created."),
        _variant(_CLIENT),
    ),
    (
        EventType("ClientUpdate", _CLIENT_OBJECT, "A client's details were changed."),
        _variant(_CLIENT, hourlyAmount=150.0, website="https://acme.example.com"),
    ),
    (
        EventType("ClientDelete", _CLIENT_OBJECT, "A client was deleted."),
        _variant(_CLIENT),
    ),
    (
        EventType("DeliverableCreate", _DELIVERABLE_OBJECT, "A project task was created."),
        _variant(_DELIVERABLE),
    ),
    (
        EventType("DeliverableUpdate", _DELIVERABLE_OBJECT, "A project task was changed."),
        _variant(_DELIVERABLE, status="In progress", dueDate="2026-11-24T17:00:00.000Z"),
    ),
    (
        EventType("DeliverableDelete", _DELIVERABLE_OBJECT, "A project task was deleted."),
        _variant(_DELIVERABLE, status="In progress"),
    ),
    (
        EventType(
            "DeliverableApproval", _DELIVERABLE_OBJECT, "The client approved a project task."
        ),
        _variant(_DELIVERABLE, status="Approved"),
    ),
    (
        EventType("MeetingScheduled", _MEETING_OBJECT, "A meeting was booked through a scheduler."),
        _variant(_MEETING),
    ),
    (
        EventType("MeetingUpdated", _MEETING_OBJECT, "A scheduled meeting was rescheduled."),
        _variant(
            _MEETING,
            confirmedTime={
                "start": "2026-11-12T18:00:00.000Z",
                "end": "2026-11-12T18:30:00.000Z",
            },
        ),
    ),
    (
        EventType("MeetingCancelled", _MEETING_OBJECT, "A scheduled meeting was cancelled."),
        _variant(_MEETING, meetingStatus="Cancelled"),
    ),
    (
        EventType("AgreementSent", _AGREEMENT_OBJECT, "An agreement was sent to the client."),
        _variant(_AGREEMENT),
    ),
    (
        EventType("AgreementViewed", _AGREEMENT_OBJECT, "The client opened an agreement."),
        _variant(_AGREEMENT, status="Viewed"),
    ),
    (
        EventType("AgreementSigned", _AGREEMENT_OBJECT, "The client signed an agreement."),
        _variant(
            _AGREEMENT,
            status="Completed",
            dateCompleted="2026-11-06T10:45:18.392Z",
            fullyExecuted=True,
            clientSigned=True,
        ),
    ),
    (
        EventType("ProposalSent", _PROPOSAL_OBJECT, "A proposal, quote or contract was sent."),
        _variant(_PROPOSAL),
    ),
    (
        EventType(
            "ProposalViewed", _PROPOSAL_OBJECT, "The client opened a proposal, quote or contract."
        ),
        _variant(_PROPOSAL, proposalStatus="Viewed"),
    ),
    (
        EventType(
            "ProposalSigned", _PROPOSAL_OBJECT, "The client signed a proposal, quote or contract."
        ),
        _variant(
            _PROPOSAL,
            proposalStatus="Fully Executed",
            dateSigned="2026-11-06T10:51:40.075Z",
            isFullyExecuted=True,
        ),
    ),
)

EVENTS: tuple[EventType, ...] = tuple(event for event, _ in _CATALOG)

# Lookups are by exact name: event types are case-sensitive on the wire
# (X-Event-Type), so "clientcreate" is a user's own event, not ours.
_BY_NAME: dict[str, EventType] = {event.name: event for event in EVENTS}
_SAMPLES: dict[str, dict[str, Any]] = {event.name: sample for event, sample in _CATALOG}


def is_known(name: str) -> bool:
    """Tell whether ``name`` is one of the 16 built-in event types."""
    return name in _BY_NAME


def get_event(name: str) -> EventType:
    """Return the built-in event type called ``name``.

    Raises:
        NotFoundError: ``name`` is not in the catalog.
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise NotFoundError(f"unknown event '{name}' (see: moxiehook events)") from None


def sample_payload(name: str) -> dict[str, Any]:
    """Return a fresh deep copy of the sample payload of event ``name``.

    The copy is the caller's to mutate (``--set``, fresh ids for ``--count``).

    Raises:
        NotFoundError: ``name`` is not in the catalog, so there is no sample.
    """
    return copy.deepcopy(_SAMPLES[get_event(name).name])
