"""The JSONL delivery log: one JSON object per line, appended under a lock, read without loading it.

- ``records``: the record dataclasses, encoding them, the locked one-write-per-line append.
- ``reading``: reading it backwards (tail) and forwards (stream), bad lines reported by number.
- ``filters``: which records to show (``--event``, ``--outcome``, ``--since``, …).
- ``following``: ``logs --follow``, each record once.
- ``ids``: delivery ids as typed (full, prefix, the short form ``logs`` shows) and finding them.
- ``times``: ``30m``, ``2h``, ``7d`` and ISO-8601 times (``--since``, ``--before``, ``--duration``).
- ``pruning``: dropping old records, atomically, under the writers' lock.
- ``replay``: which logged deliveries a replay resends (following ``replay_of`` chains).

Other packages import from here, not from the inner modules. Stdlib only.
"""

from moxiehook.log.filters import MATCH_ALL, LogFilter
from moxiehook.log.following import FOLLOW_INTERVAL, follow
from moxiehook.log.ids import ELLIPSIS, SHORT_ID_CHARS, IdPattern, find, find_many, short_id
from moxiehook.log.pruning import PruneResult, prune
from moxiehook.log.reading import (
    LogEntry,
    check_endpoint_filter,
    entries_backward,
    lines_backward,
    parse_entry,
    stream,
    tail,
    whole_lines_end,
)
from moxiehook.log.records import (
    BASE64_BODY,
    LOGGED_BODY_LIMIT,
    MAX_NESTING,
    TEXT_BODY,
    Attempt,
    DeliveryRecord,
    EndpointRecord,
    LogWriter,
    Record,
    body_to_resend,
    check_nesting,
    encode_body,
    encode_record,
    logged_content_type,
    open_log,
    raw_bytes,
    raw_fields,
    sent_bytes,
    shown_text,
    text_body,
    text_bytes,
    text_content_type,
)
from moxiehook.log.times import parse_duration, parse_when, record_time

__all__ = [
    "BASE64_BODY", "ELLIPSIS", "FOLLOW_INTERVAL", "LOGGED_BODY_LIMIT", "MATCH_ALL", "MAX_NESTING", "SHORT_ID_CHARS",
    "TEXT_BODY", "Attempt", "DeliveryRecord", "EndpointRecord", "IdPattern", "LogEntry", "LogFilter", "LogWriter",
    "PruneResult", "Record", "body_to_resend", "check_endpoint_filter", "check_nesting", "encode_body", "encode_record",
    "entries_backward", "find", "find_many", "follow", "lines_backward", "logged_content_type", "open_log",
    "parse_duration", "parse_entry", "parse_when", "prune", "raw_bytes", "raw_fields", "record_time", "short_id",
    "sent_bytes", "shown_text", "stream", "tail", "text_body", "text_bytes", "text_content_type",
    "whole_lines_end",
]
