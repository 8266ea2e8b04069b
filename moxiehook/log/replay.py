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

from collections.abc import Callable, Iterator
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
from moxiehook.log.records import BadLineCallback, exclusive, replay_lock_path


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

    def merge(self, other: _Chain) -> _Chain:
        """One chain out of two that replayed the same record; the newer record stays latest."""
        newer, older = (self, other) if self.latest.offset > other.latest.offset else (other, self)
        newer.delivered |= older.delivered
        newer.matched |= older.matched
        return newer


# How the log writers begin each line (kind first, then the id).
_DELIVERY_PREFIX = b'{"kind":"delivery","id":"'
_ENDPOINT_PREFIX = b'{"kind":"endpoint",'


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def select_for_replay(
    path: Path, query: ReplayQuery, on_bad_line: BadLineCallback | None = None
) -> list[LogEntry]:
    """The records to resend, oldest first, at most ``query.limit``.

    Ids are resent as named (narrowed by any filter). With filters alone, each
    chain of replays counts once and its LATEST record is resent; with
    ``--failed``/``--skipped`` a chain holding any ``delivered`` record is
    done, so replaying twice resends nothing twice. Raises UsageError when
    nothing says what to replay and NotFoundError for an unknown id.
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
    else:
        chosen = sorted(_undone_chains(path, query, on_bad_line), key=lambda entry: entry.offset)
    return chosen if query.limit is None else chosen[: query.limit]


def _undone_chains(path: Path, query: ReplayQuery, on_bad_line: BadLineCallback | None) -> Iterator[LogEntry]:
    """The latest record of each chain the query selects, reading the log backwards.

    Going backwards, a replay is met before the record it replayed, so only
    the chains still waiting for an older record are held in memory, never
    the whole log.
    """
    waiting: dict[str, _Chain] = {}  # record id -> the chain of its later replays

    def settle(chain: _Chain) -> LogEntry | None:
        done = bool(query.outcomes) and chain.delivered
        return chain.latest if chain.matched and not done else None

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
        return query.could_match(line)

    for entry in entries_backward(path, could_matter, on_bad_line):
        data = entry.data
        if data.get("kind") == "endpoint":
            continue
        chain = waiting.pop(_text(data.get("id")) or "", None) or _Chain(entry)
        chain.delivered |= data.get("outcome") == "delivered"
        chain.matched |= query.matches(data)
        parent = _text(data.get("replay_of"))
        if parent is None:
            selected = settle(chain)
            if selected is not None:
                yield selected
        else:
            other = waiting.get(parent)
            waiting[parent] = chain if other is None else other.merge(chain)
    # Chains whose first record is no longer in the log (a trimmed log).
    for chain in waiting.values():
        selected = settle(chain)
        if selected is not None:
            yield selected
