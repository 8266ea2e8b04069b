"""Choosing what ``replay`` resends: by id, or by filters over chains of replays.

Every replay is logged as a new delivery record whose ``replay_of`` names the
record it resent, so a delivery and its replays form a chain (a record may
be replayed more than once; all of those replays join the one chain). The
rule for ``replay --failed`` / ``--skipped``:

- a chain holding a ``delivered`` record is done: the event got through
  once, so it is never resent again;
- an undone chain is resent once, and what is resent is its NEWEST record
  (the latest attempt, which carries the newest ``replay_of`` link).

That is what makes running ``replay --failed`` twice safe: the second run
sees the first run's replays in the log and resends nothing twice. With
plain filters (``--event``, ``--endpoint``, ``--since``) each chain likewise
counts once, by its newest record. Ids given by name are resent as named.

The log is read backwards, as by ``reading``, so memory holds only the
chains still waiting for an older record, never the whole log.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from moxiehook.errors import UsageError
from moxiehook.log.filters import LogFilter
from moxiehook.log.ids import find_many
from moxiehook.log.reading import LogEntry, entries_backward
from moxiehook.log.records import BadLineCallback, exclusive, replay_lock_path, text_body


def exclusive_turn(path: Path, on_wait: Callable[[], None] | None = None) -> AbstractContextManager[None]:
    """Hold the log's replay lock while a replay selects what to resend and sends it.

    Selection reads which deliveries are still undone; two replays selecting
    at once would both see the same failures and both resend them. Taking
    turns, the second one selects after the first has logged its records, and
    finds nothing left to resend. ``on_wait`` is called when it has to wait.
    Writers (``fire``, ``listen --forward-to``) do not take this lock.
    """
    return exclusive(replay_lock_path(path), on_wait)


@dataclass(frozen=True)
class ReplayQuery:
    """What ``replay`` was asked to resend: ids, filters, or both (ids narrowed by the filters)."""

    ids: tuple[str, ...] = ()
    failed: bool = False
    skipped: bool = False
    event: str | None = None
    endpoint: str | None = None
    since: datetime | None = None
    limit: int | None = None
    app: bool = False  # --app given: in-process (mode app) records may be resent, into that app

    @property
    def has_filter(self) -> bool:
        return bool(self.failed or self.skipped or self.event or self.endpoint or self.since)

    @cached_property
    def outcomes(self) -> frozenset[str]:
        """The outcomes asked for with ``--failed``/``--skipped`` (empty: any)."""
        return frozenset(name for name, on in (("failed", self.failed), ("skipped", self.skipped)) if on)

    @cached_property
    def _filter(self) -> LogFilter:
        """The plain filters; ``outcomes`` is checked apart since it may name two outcomes."""
        return LogFilter(event=self.event, endpoint=self.endpoint, since=self.since)

    def could_match(self, line: bytes) -> bool:
        """A cheap check on the raw line: False only when ``matches`` would surely be False."""
        if b"\\u" in line:
            return True
        if self.outcomes and not any(outcome.encode() in line for outcome in self.outcomes):
            return False
        return self._filter.could_match(line)

    def matches(self, data: dict[str, Any]) -> bool:
        """One delivery record against the filters (chains aside)."""
        if data.get("kind") == "endpoint":
            return False
        if self.outcomes and data.get("outcome") not in self.outcomes:
            return False
        return self._filter.matches(data)


@dataclass
class _Chain:
    """A delivery and its replays (linked by ``replay_of``), as far as read so far."""

    latest: LogEntry
    delivered: bool = False
    matched: bool = False
    in_process: bool = False  # some record of it is mode app: the chain never goes to the network

    def merge(self, other: _Chain) -> _Chain:
        """One chain out of two that replayed the same record; the newer record stays latest."""
        newer, older = (self, other) if self.latest.offset > other.latest.offset else (other, self)
        newer.delivered |= older.delivered
        newer.matched |= older.matched
        newer.in_process |= older.in_process
        return newer


APP_MODE = "app"  # an in-process delivery (fire --app): replayed only into an app, with --app
# How the log writers begin each line (kind first, then the id), and write the forward mode.
_FORWARD_MODE = b'"mode":"forward"'
_DELIVERY_PREFIX = b'{"kind":"delivery","id":"'
_ENDPOINT_PREFIX = b'{"kind":"endpoint",'


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_STRICT = json.JSONDecoder(parse_constant=_reject_constant)  # NaN and Infinity are not JSON


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def select_for_replay(
    path: Path, query: ReplayQuery, on_bad_line: BadLineCallback | None = None
) -> list[LogEntry]:
    """The records to resend, oldest first, at most ``query.limit`` (see ``select``)."""
    return select(path, query, on_bad_line).entries


@dataclass
class Selection:
    """What ``select`` chose, and how many undone events it left out (each said by ``replay``)."""

    entries: list[LogEntry]
    # In-process (mode app) deliveries, left out without --app: they never go to the network.
    left_out_app: int = 0
    # The relay's copies (mode forward) of deliveries whose sender's record (fire, replay…) is
    # in the same log and is resent instead: one event, one replay.
    left_out_relayed: int = 0


def select(path: Path, query: ReplayQuery, on_bad_line: BadLineCallback | None = None) -> Selection:
    """What to resend, oldest first, at most ``query.limit``, and what was left out and why.

    Ids are resent as named (narrowed by any filter); an id naming an in-process
    (``app``) record needs ``query.app``. With filters alone, each event counts
    once and its LATEST record is resent (see the module's rules); with
    ``--failed``/``--skipped`` an event delivered once is done, so replaying
    twice resends nothing twice. Raises UsageError when nothing says what to
    replay and NotFoundError for an unknown id.
    """
    if not query.ids and not query.has_filter:
        raise UsageError(
            "say what to replay: delivery ids, or a filter (--failed, --skipped, --event, --endpoint, --since)"
        )
    if query.ids:
        ids = list(dict.fromkeys(query.ids))
        found = find_many(path, ids, on_bad_line)
        # Two forms of one id (full and short) name one record: it is resent once.
        unique = {found[text].offset: found[text] for text in ids}.values()
        chosen = [entry for entry in unique if not query.has_filter or query.matches(entry.data)]
        in_process = [str(entry.data.get("id")) for entry in chosen if entry.data.get("mode") == APP_MODE]
        if in_process and not query.app:
            raise UsageError(
                f"delivery {in_process[0]} was made in-process (mode app), so it is never sent over the network: "
                "replay it into the app with --app MODULE:ATTR; nothing was sent"
            )
        selection = Selection(chosen)
    else:
        selection = _undone_events(path, query, on_bad_line)
        selection.entries.sort(key=lambda entry: entry.offset)
    if query.limit is not None:
        selection.entries = selection.entries[: query.limit]
    return selection


_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def event_key(data: dict[str, Any]) -> bytes:
    """What makes two logged requests attempts of one event: event type, body and ``webhook-id``.

    A sender retrying sends the same event type and the same body bytes (and, when it
    signs, the same ``webhook-id``); the log keeps the body as parsed JSON, compared
    here in one canonical form. A digest keeps the memory of a big log small.
    """
    request = data.get("request")
    request = request if isinstance(request, dict) else {}
    headers = request.get("headers")
    headers = headers if isinstance(headers, dict) else {}
    webhook_id = next((value for name, value in headers.items()
                       if isinstance(name, str) and name.lower() == "webhook-id"), None)
    try:
        body = _CANONICAL.encode(request.get("body"))
    except (TypeError, ValueError, RecursionError):
        body = repr(request.get("body"))
    # The JSON array ends where the body starts: the two parts cannot run into each other. The
    # text `a` and the JSON string `"a"` are different bytes on the wire: different events.
    head = json.dumps([data.get("event"), webhook_id if isinstance(webhook_id, str) else None,
                       request.get("body_format") if text_body(request) else None])
    digest = hashlib.sha256(head.encode("utf-8", "surrogatepass"))
    digest.update(body.encode("utf-8", "surrogatepass"))
    return digest.digest()


def _undone_events(path: Path, query: ReplayQuery, on_bad_line: BadLineCallback | None) -> Selection:
    """The latest record of each event the query selects, reading the log backwards.

    Going backwards, a replay is met before the record it replayed, so only the
    chains still waiting for an older record are held in memory, with one small
    entry per relayed event and per selected delivery, never the whole log.
    Chains rooted in ``forward`` records join into one event by ``event_key``
    (a sender's retries arrive as separate requests); a chain rooted in a
    sender's record (``fire``, ``test``…) stays its own event, and takes the
    place of the relay's copies of it in the same log.
    """
    waiting: dict[str, _Chain] = {}  # record id -> the chain of its later replays
    # Relayed events the query selects: event key -> the chains of its forwards, merged. Of the
    # others only the key is kept, and only when delivered (that ends the event): 32 bytes each.
    relayed: dict[bytes, _Chain] = {}
    relayed_delivered: set[bytes] = set()
    senders: list[tuple[bytes, _Chain]] = []  # chains rooted in a sender's record that the query selects
    sender_delivered: set[bytes] = set()

    def could_matter(line: bytes) -> bool:
        # Most lines of a big log are first deliveries that neither match nor end a
        # waiting chain: tell them apart without json.loads. Lines in another
        # shape than the writer's (a hand edit) are simply parsed.
        if line.startswith(_ENDPOINT_PREFIX):
            return False
        if not line.startswith(_DELIVERY_PREFIX):
            return True
        # The record's own replay_of comes before the body (which might hold one too).
        key = line.find(b'"replay_of":')
        if key < 0 or not line.startswith(b"null", key + len(b'"replay_of":')):
            return True
        if waiting:
            id_end = line.find(b'"', len(_DELIVERY_PREFIX))
            if line[len(_DELIVERY_PREFIX):id_end].decode("utf-8", "replace") in waiting:
                return True
        if query.could_match(line):
            return True
        if _FORWARD_MODE in line[:key]:
            # A relayed attempt the query cannot select changes nothing, unless it was delivered:
            # then its event is done, and only the event's key is kept (no record is built).
            return _note_delivered_forward(line, key)
        return False

    def _note_delivered_forward(line: bytes, key: int) -> bool:
        """Keep the key of a delivered forward; True when the line must be read the ordinary way."""
        outcome = line.find(b'"outcome":', key)
        attempts = line.find(b'"attempts":', key)
        if outcome < 0 or (0 <= attempts < outcome):
            return True  # not in the writer's order: read it whole
        if not line.startswith(b'"delivered"', outcome + len(b'"outcome":')):
            return False
        try:
            data = _STRICT.decode(line.decode("utf-8"))
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            return True  # a bad line: reported as one by the ordinary path
        if not (isinstance(data, dict) and data.get("mode") == "forward" and data.get("replay_of") is None
                and data.get("outcome") == "delivered"):
            return True
        relayed_delivered.add(event_key(data))
        return False

    for entry in entries_backward(path, could_matter, on_bad_line):
        data = entry.data
        if data.get("kind") == "endpoint":
            continue
        chain = waiting.pop(_text(data.get("id")) or "", None) or _Chain(entry)
        chain.delivered |= data.get("outcome") == "delivered"
        chain.matched |= query.matches(data)
        chain.in_process |= data.get("mode") == APP_MODE
        parent = _text(data.get("replay_of"))
        if parent is not None:
            other = waiting.get(parent)
            waiting[parent] = chain if other is None else other.merge(chain)
        elif data.get("mode") == "forward":
            key = event_key(data)
            if chain.delivered:
                relayed_delivered.add(key)
            if chain.matched or key in relayed:
                other = relayed.get(key)
                relayed[key] = chain if other is None else other.merge(chain)
        elif chain.matched or chain.delivered:
            key = event_key(data)
            if chain.delivered:
                sender_delivered.add(key)
            if chain.matched:
                senders.append((key, chain))
    # Chains whose first record is no longer in the log (a trimmed log): each its own event.
    senders.extend((f"trimmed:{parent}".encode(), chain) for parent, chain in waiting.items() if chain.matched)

    # --failed/--skipped: an event delivered once is done. A sender's record and the relay's
    # copies of it share that; two senders' records never do (fire --count sends equal bodies).
    outcomes = bool(query.outcomes)
    selection = Selection([])
    resent_by_sender: set[bytes] = set()

    def take(chain: _Chain) -> None:
        if chain.in_process and not query.app:
            selection.left_out_app += 1
        else:
            selection.entries.append(chain.latest)

    for key, chain in senders:
        done = chain.delivered or key in relayed_delivered
        if not (outcomes and done):
            take(chain)
            resent_by_sender.add(key)
    for key, chain in relayed.items():
        done = chain.delivered or key in relayed_delivered or key in sender_delivered
        if not (outcomes and done):
            if key in resent_by_sender:
                selection.left_out_relayed += 1
            else:
                take(chain)
    return selection
