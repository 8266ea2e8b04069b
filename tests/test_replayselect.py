"""Replay selection: ids narrowed by filters, and chains of replays resent once, newest record."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from logrecords import START, delivery, iso, write

from moxiehook import log as logquery
from moxiehook.errors import NotFoundError, UsageError
from moxiehook.log import replay as replayselect
from moxiehook.log.records import EndpointRecord
from moxiehook.log.replay import ReplayQuery


def ids(entries: list[logquery.LogEntry]) -> list[str]:
    return [entry.data["id"] for entry in entries]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "log.jsonl"


def test_replay_needs_ids_or_a_filter(log: Path) -> None:
    with pytest.raises(UsageError, match="say what to replay"):
        replayselect.select_for_replay(log, ReplayQuery(limit=3))


def test_replay_ids_unknown_is_an_error(log: Path) -> None:
    known = delivery(0)
    write(log, known)
    with pytest.raises(NotFoundError, match="dlv_unknown"):
        replayselect.select_for_replay(log, ReplayQuery(ids=(known.id, "dlv_unknown")))


def test_replay_ids_are_narrowed_by_filters(log: Path) -> None:
    good, bad = delivery(0), delivery(1, outcome="failed", status=500)
    write(log, good, bad)
    assert ids(replayselect.select_for_replay(log, ReplayQuery(ids=(bad.id, good.id, bad.id)))) == [bad.id, good.id]
    assert ids(replayselect.select_for_replay(log, ReplayQuery(ids=(bad.id, good.id), failed=True))) == [bad.id]


def test_failed_selects_the_latest_record_of_each_undelivered_chain(log: Path) -> None:
    first = delivery(0, outcome="failed", status=500)
    again = delivery(1, outcome="failed", status=500, replay_of=first.id, event_id_=first.event_id)
    fixed = delivery(2, outcome="failed", status=500)
    fixed_replay = delivery(3, outcome="delivered", replay_of=fixed.id, event_id_=fixed.event_id)
    # a delivered record replayed later and failing: its chain was delivered once, so it is done
    once_ok = delivery(4)
    once_ok_replay = delivery(5, outcome="failed", status=500, replay_of=once_ok.id)
    skipped = delivery(6, outcome="skipped", status=None)
    write(log, first, again, fixed, fixed_replay, once_ok, once_ok_replay, skipped)

    assert ids(replayselect.select_for_replay(log, ReplayQuery(failed=True))) == [again.id]
    assert ids(replayselect.select_for_replay(log, ReplayQuery(skipped=True))) == [skipped.id]
    assert ids(replayselect.select_for_replay(log, ReplayQuery(failed=True, skipped=True))) == [again.id, skipped.id]
    assert ids(replayselect.select_for_replay(log, ReplayQuery(failed=True, skipped=True, limit=1))) == [again.id]


def test_a_record_replayed_twice_forms_one_chain(log: Path) -> None:
    origin = delivery(0, outcome="failed", status=500)
    one = delivery(1, outcome="failed", status=500, replay_of=origin.id)
    two = delivery(2, outcome="failed", status=500, replay_of=origin.id)
    three = delivery(3, outcome="failed", status=500, replay_of=one.id)
    write(log, origin, one, two, three)
    assert ids(replayselect.select_for_replay(log, ReplayQuery(failed=True))) == [three.id]
    write(log, delivery(4, replay_of=two.id))
    assert replayselect.select_for_replay(log, ReplayQuery(failed=True)) == []


def test_a_chain_whose_origin_was_trimmed_still_counts(log: Path) -> None:
    orphan = delivery(1, outcome="failed", status=500, replay_of="dlv_gone")
    write(log, orphan)
    assert ids(replayselect.select_for_replay(log, ReplayQuery(failed=True))) == [orphan.id]


def test_plain_filters_resend_each_chain_once(log: Path) -> None:
    origin = delivery(0, event="ClientUpdate")
    replayed = delivery(1, event="ClientUpdate", replay_of=origin.id)
    other = delivery(2, event="ClientCreate")
    billing = delivery(3, event="ClientUpdate", endpoint="billing")
    write(log, origin, replayed, other, billing,
          EndpointRecord(at=iso(START), endpoint="crm", action="disabled", reason="HTTP 401"))
    assert ids(replayselect.select_for_replay(log, ReplayQuery(event="ClientUpdate"))) == [replayed.id, billing.id]
    assert ids(replayselect.select_for_replay(log, ReplayQuery(endpoint="crm"))) == [replayed.id, other.id]
    since = ReplayQuery(since=START + timedelta(minutes=2))
    assert ids(replayselect.select_for_replay(log, since)) == [other.id, billing.id]


def test_chains_are_followed_in_hand_written_lines_too(log: Path) -> None:
    origin = delivery(0, outcome="failed", status=500)
    fixed = delivery(1, replay_of=origin.id)
    fixed.request["body"]["replay_of"] = None  # a payload field must not be taken for the record's
    write(log, origin)
    with log.open("a") as handle:  # spaces after separators, keys in another order
        handle.write(json.dumps(dict(reversed(list(fixed.to_dict().items())))) + "\n")
    assert replayselect.select_for_replay(log, ReplayQuery(failed=True)) == []
