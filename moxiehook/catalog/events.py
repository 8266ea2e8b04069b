"""The built-in event catalog: Moxie's 28 event types and one sample payload per object.

Moxie's help centre fixes the event names, the object each one carries, and whether
Moxie documents that object's shape (its help centre) or it is inferred from third-party
integrations. Create, update and delete events of one object carry the same object shape, so
the events of an object share its sample: ``data/<object_key>.json``, a JSON file shipped as
package data and written field for field after Moxie's published sample (every field path,
the same JSON types, ``null`` where Moxie's sample has null). Keeping the samples as data,
not Python literals, lets ``events show`` print them as they are and lets a receiver's own
tests read the very same files.

Callers get a fresh copy on every call, because ``--set`` and ``--count`` change it.
Stdlib only: this module is imported by commands that must start fast.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from moxiehook.errors import NotFoundError, UsageError
from moxiehook.suggest import did_you_mean

__all__ = [
    "EVENTS", "EventType", "check_not_a_near_miss", "get_event", "is_known", "names", "sample", "sample_text",
]

Source = Literal["documented", "inferred"]


@dataclass(frozen=True)
class EventType:
    """One built-in event type, as listed by ``moxiehook events``."""

    name: str  # sent as X-Event-Type, e.g. "ClientCreate"
    object: str  # the object it carries, as `events` names it, e.g. "Client"
    description: str  # one sentence saying when Moxie sends it
    source: Source  # "documented": Moxie's help centre shows the shape; "inferred": third parties
    partial: bool  # Moxie's published sample is cut short: fields after the cut are unknown
    object_key: str  # the sample's file stem, e.g. "client" for data/client.json

    @property
    def shape(self) -> str:
        """Where the sample's shape comes from, in a word or two (the ``events`` table)."""
        return f"{self.source}, partial" if self.partial else self.source

    @property
    def shape_note(self) -> str | None:
        """What a partial shape leaves out, for people (``events``, ``events schema``)."""
        return "Moxie's published sample is cut short: the rest of its shape is unknown." if self.partial else None


def _events(object_key: str, title: str, source: Source, partial: bool, *rows: tuple[str, str]) -> list[EventType]:
    return [EventType(name, title, description, source, partial, object_key) for name, description in rows]


# Grouped by object, documented objects first; `events` lists them this way.
EVENTS: tuple[EventType, ...] = tuple(
    _events("client", "Client", "documented", False,
            ("ClientCreate", "A client or prospect was created."),
            ("ClientUpdate", "A client's details, contacts or payment terms were changed."),
            ("ClientDelete", "A client was deleted."))
    + _events("deliverable", "Project task (deliverable)", "documented", False,
              ("DeliverableCreate", "A project task (deliverable) was created."),
              ("DeliverableUpdate", "A project task was changed (status, dates, assignees)."),
              ("DeliverableDelete", "A project task was deleted."),
              ("DeliverableApproval", "A project task moved to a client-workflow status that asks for approval."))
    + _events("meeting", "Scheduled meeting", "documented", False,
              ("MeetingScheduled", "A meeting was booked through a scheduler."),
              ("MeetingUpdated", "A scheduled meeting was changed or rescheduled."),
              ("MeetingCancelled", "A scheduled meeting was cancelled."))
    + _events("proposal", "Agreement V1 (proposals, quotes, contracts)", "documented", True,
              ("ProposalSent", "A legacy (V1) proposal, quote or contract was sent."),
              ("ProposalViewed", "The client opened a legacy (V1) proposal, quote or contract."),
              ("ProposalSigned", "The client signed a legacy (V1) proposal, quote or contract."))
    + _events("agreement", "Agreement V2", "documented", True,
              ("AgreementSent", "An agreement (V2) was sent to the client."),
              ("AgreementViewed", "The client opened an agreement (V2)."),
              ("AgreementSigned", "An agreement (V2) was signed."))
    + _events("project", "Project", "inferred", False,
              ("ProjectCreate", "A project was created."),
              ("ProjectUpdate", "A project's details, dates or fee schedule were changed."),
              ("ProjectComplete", "A project was marked complete."))
    + _events("form", "Form submission", "inferred", False,
              ("FormCompleted", "Someone submitted one of the account's forms."))
    + _events("timer", "Time entry", "inferred", False,
              ("TimerCreate", "A time entry was created (a timer stopped or time logged by hand)."),
              ("TimerUpdate", "A time entry was changed."),
              ("TimerDelete", "A time entry was deleted."))
    + _events("opportunity", "Pipeline opportunity", "inferred", False,
              ("OpportunityCreate", "An opportunity was added to the sales pipeline."),
              ("OpportunityUpdate", "A pipeline opportunity was changed or moved to another stage."),
              ("OpportunityDelete", "A pipeline opportunity was deleted."))
    + _events("invoice", "Invoice", "inferred", False,
              ("InvoiceSent", "An invoice was sent to the client."),
              ("PaymentReceived", "A payment was recorded against an invoice (Moxie's real body may differ)."))
)  # fmt: skip

_DATA = Path(__file__).with_name("data")

# Lookups are by exact name: event types are case-sensitive on the wire
# (X-Event-Type), so "clientcreate" is a user's own event, not ours (and gets a suggestion).
_BY_NAME: dict[str, EventType] = {event.name: event for event in EVENTS}


def names() -> list[str]:
    """The 28 event names, in catalog order (what a mistyped name is compared with)."""
    return list(_BY_NAME)


def is_known(name: str) -> bool:
    """Tell whether ``name`` is one of the built-in event types."""
    return name in _BY_NAME


def _unknown_event(name: str) -> str:
    """The message for an event name outside the catalog, with the closest name if one is near."""
    suggestion = did_you_mean(name, _BY_NAME)
    return f"unknown event {name!r}{suggestion}" if suggestion else f"unknown event {name!r} (see: moxiehook events)"


def check_not_a_near_miss(name: str, also_known: Iterable[str] = (), hint: str = "") -> None:
    """Refuse a name that is not known but close to a known one: a typo, or a case slip.

    Known names are the catalog's and ``also_known`` (the user's own events, e.g. those mapped
    in the config). A name that is neither known nor close to one is a user's own event, and
    passes. ``hint`` is added to the message (how to insist on the name).

    Raises:
        UsageError: ``name`` is a near miss; the message suggests the name it is close to.
    """
    if name in _BY_NAME:
        return
    others = set(also_known)
    if name in others:
        return
    suggestion = did_you_mean(name, [*_BY_NAME, *sorted(others)])
    if suggestion:
        raise UsageError(f"unknown event {name!r}{suggestion}" + (f"; {hint}" if hint else ""))


def get_event(name: str) -> EventType:
    """Return the built-in event type called ``name``.

    Raises:
        NotFoundError: ``name`` is not in the catalog (the message suggests a near name).
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise NotFoundError(_unknown_event(name)) from None


@cache
def _sample_file(object_key: str) -> str:
    # Package data beside this module (setuptools installs packages unzipped). Not through
    # importlib.resources: importing it costs `events show` 2 ms of a 60 ms start-up.
    return (_DATA / f"{object_key}.json").read_text(encoding="utf-8")


def sample_text(event: str) -> str:
    """The sample of ``event`` exactly as its data file holds it (pretty JSON, ending in a newline)."""
    return _sample_file(get_event(event).object_key)


def sample(event: str) -> dict[str, Any]:
    """A fresh copy of the sample payload of ``event``: the caller's to change.

    Raises:
        NotFoundError: ``event`` is not in the catalog, so there is no sample.
    """
    import json  # imported on use, like the data file

    payload: dict[str, Any] = json.loads(sample_text(event))
    return payload
