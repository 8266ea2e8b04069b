"""``scenario from-log``: logged deliveries become a scenario that replays them in order.

Real traffic (say, what ``listen --forward-to`` relayed) is the best story to test a receiver
with. Each event becomes one step, in the order it was first logged: the attempts of one event
(a record's retries, its replays, a sender's own retries relayed as separate requests) are one
step, as ``replay`` counts them. An event is known by its ``event_id``; a relayed (``forward``)
record by its event type, its body and its ``webhook-id`` when signed, since each request a
sender retries gets a record of its own.

Each step's body goes to a JSON file beside the scenario file (TOML has no null, and a body is
data, not a story): ``story.toml`` gets ``story.01-ClientCreate.json``, … and steps that say
``data = "story.01-ClientCreate.json"``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import tomli_w

from moxiehook.config import check_event_name
from moxiehook.errors import MoxiehookError
from moxiehook.log import DeliveryRecord, encode_body, text_body
from moxiehook.scenario.model import STEP_NAME, ScenarioError

MAX_STEPS = 1000  # as a scenario file may hold
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class FromLog:
    """The scenario file's text, and each data file's name (beside it) and JSON text."""

    toml: str
    files: tuple[tuple[str, str], ...]
    steps: int


def event_key(record: DeliveryRecord) -> tuple[Any, ...]:
    """What makes two records attempts of one event (see the module's docstring)."""
    if record.mode == "forward":
        headers = {str(k).lower(): v for k, v in (record.request.get("headers") or {}).items()}
        return ("forward", record.event, encode_body(record.request.get("body")), headers.get("webhook-id"),
                record.request.get("body_format") if text_body(record.request) else None)
    return ("event", record.event_id)


def from_records(records: Iterable[DeliveryRecord], stem: str, name: str, description: str) -> FromLog:
    """A scenario of ``records`` (oldest first), one step per event, data files named after ``stem``."""
    events: dict[tuple[Any, ...], DeliveryRecord] = {}
    for record in sorted(records, key=lambda r: r.at or ""):
        events.setdefault(event_key(record), record)
    if not events:
        raise ScenarioError("no delivery to make a scenario of")
    if len(events) > MAX_STEPS:
        raise ScenarioError(f"{len(events)} events: a scenario has at most {MAX_STEPS} steps (use fewer ids or a "
                            "smaller --last)")
    steps: list[dict[str, Any]] = []
    files: list[tuple[str, str]] = []
    used: set[str] = set()
    width = max(2, len(str(len(events))))
    for record in events.values():  # every event a scenario can hold, or nothing is written
        if "body" not in (record.request or {}):
            raise ScenarioError(f"delivery {record.id} has no logged body, so it cannot be a step (as it cannot be "
                                "replayed); nothing was written")
        if text_body(record.request):
            raise ScenarioError(f"delivery {record.id} was relayed with a body that is not JSON, and a scenario step "
                                "sends JSON; leave it out (give the ids of the others) or resend it with replay")
        try:
            check_event_name(record.event)
        except MoxiehookError as exc:
            raise ScenarioError(f"delivery {record.id}: {_unprefixed(str(exc))}; a scenario step cannot send it "
                                "(leave it out: give the ids of the others)") from None
    for number, record in enumerate(events.values(), start=1):
        step = _step_name(record.event, used)
        used.add(step)
        filename = f"{stem}.{number:0{width}d}-{_UNSAFE.sub('-', step)}.json"
        body = record.request.get("body")
        try:
            text = json.dumps(body, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
            text.encode("utf-8")
        except (ValueError, UnicodeEncodeError) as exc:
            raise ScenarioError(f"delivery {record.id}: its body cannot be written as a JSON file: {exc}") from None
        files.append((filename, text))
        steps.append({"name": step, "event": record.event, "data": filename})
    try:  # tomli_w quotes every value; one [[steps]] table per step reads better than one long array
        text = tomli_w.dumps({"name": name, "description": description})
        text += "".join("\n[[steps]]\n" + tomli_w.dumps(step) for step in steps)
    except (ValueError, TypeError) as exc:
        raise ScenarioError(f"the scenario cannot be written as TOML: {exc}") from None
    return FromLog(text, tuple(files), len(steps))


def _unprefixed(message: str) -> str:
    """``event: invalid event name …`` without the key it begins with."""
    return message.split(": ", 1)[1] if message.startswith("event: ") else message


def _step_name(event: str, used: set[str]) -> str:
    base = event if STEP_NAME.match(event) else (_UNSAFE.sub("-", event).strip("-.") or "step")[:56]
    name, n = base, 2
    while name in used:
        name, n = f"{base}-{n}", n + 1
    return name
