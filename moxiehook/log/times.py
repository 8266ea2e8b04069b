"""Lengths of time and moments as people type them (``30s``, ``2h``, ``7d``, ISO-8601).

Used by ``--since``/``--before`` to pick log records, and by ``fire --duration`` for a load run's
length, so both speak the same units (s, m, h, d).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from moxiehook.errors import UsageError

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(text: str) -> float:
    """A length of time in seconds: ``30s``, ``2m``, ``1.5h``, ``7d``, or a bare number of seconds.

    The units of ``--since``'s durations; ``UsageError`` for anything else.
    """
    match = _SPAN.match(text)
    if match is None:
        raise UsageError(f"invalid duration {text!r}: use a number of seconds or a duration like 30s, 2m, 1h")
    return float(match[1]) * _UNIT_SECONDS[match[2] or "s"]


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """``--since``: an ISO-8601 time, or a duration back from ``now`` (``30m``, ``2h``, ``7d``).

    A time without a zone is local time, as in ``journalctl --since``; the
    result is always timezone-aware.
    """
    match = _DURATION.match(text)
    if match:
        now = now or datetime.now(UTC)
        try:
            return now - timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])
        except OverflowError:  # e.g. 99999999999d: before year 1
            raise UsageError(f"invalid time {text!r}: that is further back than datetime can go") from None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"invalid time {text!r}: use an ISO-8601 time (2026-11-28T14:00:00Z) "
            "or a duration like 30m, 2h, 7d"
        ) from None
    if moment.tzinfo:
        return moment
    try:
        return moment.astimezone()
    except (ValueError, OverflowError):  # 0001-01-01 west of UTC, 9999-12-31 east of it
        raise UsageError(f"invalid time {text!r}: in local time that is beyond what datetime can hold") from None


def record_time(data: dict[str, Any]) -> datetime | None:
    """A record's ``at`` as an aware datetime, or None when missing or malformed."""
    at = data.get("at")
    if not isinstance(at, str):
        return None
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


