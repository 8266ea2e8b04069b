"""Delivery ids as people type them: the full id, a unique prefix, or the short form ``logs`` shows.

``find``/``find_many`` look them up, reading the log backwards (the newest records are the ones
usually asked for).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from moxiehook.errors import NotFoundError, UsageError
from moxiehook.log.reading import LogEntry, entries_backward
from moxiehook.log.records import BadLineCallback

# A full delivery or event id: a prefix, "_" and a 26-character ULID.
_FULL_ID = re.compile(r"^[a-z]{3}_[0-9A-HJKMNP-TV-Z]{26}\Z")
# The short form keeps an id's LAST characters: ids made in one millisecond by one
# process differ only there (the random part is incremented), and 10 of them are
# 50 random bits, so two records of one log sharing them are rare (and reported).
SHORT_ID_CHARS = 10
ELLIPSIS = "…"


def short_id(record_id: str) -> str:
    """``dlv_…MPNJM7KNTY``: the form the ``logs`` table shows, accepted by ``logs show`` and ``replay``."""
    if not _FULL_ID.match(record_id):
        return record_id  # a hand-made id is shown as it is
    return f"{record_id[:4]}{ELLIPSIS}{record_id[-SHORT_ID_CHARS:]}"


@dataclass(frozen=True)
class IdPattern:
    """An id as typed: the full id, any unique prefix, or a short form (``dlv_…KNTY``, also ``dlv_...KNTY``)."""

    text: str
    prefix: str
    suffix: str = ""

    @classmethod
    def parse(cls, text: str) -> IdPattern:
        for mark in (ELLIPSIS, "..."):
            head, found, tail = text.partition(mark)
            if found:
                return cls(text, head.strip(), tail.strip())
        return cls(text, text.strip())

    def __post_init__(self) -> None:
        if not (self.prefix or self.suffix):
            raise UsageError(f"{self.text!r} is not a delivery id: give one from `moxiehook logs` (dlv_…)")

    @property
    def exact(self) -> bool:
        """A full id matches one record only: no need to read on for a second one."""
        return not self.suffix and bool(_FULL_ID.match(self.prefix))

    @property
    def needle(self) -> bytes:
        return max(self.prefix, self.suffix, key=len).encode()

    def matches(self, record_id: str) -> bool:
        if self.exact:
            return record_id == self.prefix
        return (len(record_id) >= len(self.prefix) + len(self.suffix)
                and record_id.startswith(self.prefix) and record_id.endswith(self.suffix))


def find(path: Path, record_id: str, on_bad_line: BadLineCallback | None = None) -> LogEntry:
    """The delivery record this id (full, prefix or short form) names; NotFoundError if none or several."""
    found = find_many(path, [record_id], on_bad_line)
    return found[record_id]


def find_many(path: Path, ids: list[str], on_bad_line: BadLineCallback | None = None) -> dict[str, LogEntry]:
    """The delivery records these ids name (as typed: full, a unique prefix, a short form), by id typed.

    Read backwards. A full id stops its search at its record; a prefix or a
    short form is looked for in the whole log, since it must name exactly one
    record. Raises NotFoundError naming ids that match no record, or several.
    """
    patterns = {text: IdPattern.parse(text) for text in dict.fromkeys(ids)}
    matches: dict[str, dict[str, LogEntry]] = {text: {} for text in patterns}

    def open_patterns() -> list[IdPattern]:
        # A full id is done once found; a partial one once it matched two records (ambiguous).
        return [p for p in patterns.values() if len(matches[p.text]) < (1 if p.exact else 2)]

    searching = open_patterns()
    needles = [p.needle for p in searching]

    def could_match(line: bytes) -> bool:
        return any(needle in line for needle in needles) or b"\\u" in line

    for entry in entries_backward(path, could_match, on_bad_line):
        record_id = entry.data.get("id")
        if entry.data.get("kind") == "endpoint" or not isinstance(record_id, str):
            continue
        for pattern in searching:
            if pattern.matches(record_id):
                matches[pattern.text].setdefault(record_id, entry)
        searching = open_patterns()
        if not searching:
            break
        needles = [p.needle for p in searching]
    missing = [text for text in patterns if not matches[text]]
    if missing:
        names = ", ".join(missing)
        raise NotFoundError(f"no delivery {names} in the log {path} (see: moxiehook logs)")
    for text, found in matches.items():
        if len(found) > 1:
            raise NotFoundError(
                f"{text!r} names more than one delivery (at least {' and '.join(found)}): give more of the id"
            )
    return {text: next(iter(found.values())) for text, found in matches.items()}

