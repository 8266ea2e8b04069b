"""Which records to show: ``--event``, ``--endpoint``, ``--outcome``, ``--status``, ``--since``.

A filter first looks at the raw line (``could_match``: a bytes search, no parsing), then at the
parsed record (``matches``): that is what makes filtering a large log fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from moxiehook.errors import UsageError
from moxiehook.log.records import OUTCOMES
from moxiehook.log.times import record_time


@dataclass(frozen=True)
class LogFilter:
    """Which records to show. Unset fields match everything.

    ``event``, ``outcome`` and ``status`` describe deliveries, so an
    ``endpoint`` record (disabled/enabled) matches only when none of them is
    set; ``endpoint`` and ``since`` apply to both kinds.
    """

    event: str | None = None
    endpoint: str | None = None
    outcome: str | None = None
    status: int | None = None
    since: datetime | None = None

    def __post_init__(self) -> None:
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise UsageError(f"invalid outcome {self.outcome!r}: use one of {', '.join(OUTCOMES)}")

    @property
    def is_empty(self) -> bool:
        return not (self.event or self.endpoint or self.outcome or self.status is not None or self.since)

    @property
    def deliveries_only(self) -> bool:
        return bool(self.event or self.outcome or self.status is not None)

    @cached_property
    def _needles(self) -> tuple[bytes, ...]:
        values = (self.event, self.endpoint, self.outcome, None if self.status is None else str(self.status))
        return tuple(value.encode() for value in values if value)

    def could_match(self, line: bytes) -> bool:
        """A cheap check on the raw line: False only when it surely cannot match.

        A JSON string may spell a character as ``\\uXXXX``; such a line is
        left to the exact check rather than risk missing it.
        """
        return all(needle in line for needle in self._needles) or b"\\u" in line

    def matches(self, data: dict[str, Any]) -> bool:
        """The exact check on a parsed line."""
        if self.endpoint is not None and data.get("endpoint") != self.endpoint:
            return False
        if data.get("kind") == "endpoint":
            if self.deliveries_only:
                return False
        elif (
            (self.event is not None and data.get("event") != self.event)
            or (self.outcome is not None and data.get("outcome") != self.outcome)
            or (self.status is not None and data.get("status") != self.status)
        ):
            return False
        if self.since is not None:
            moment = record_time(data)
            return moment is not None and moment >= self.since
        return True


MATCH_ALL = LogFilter()

