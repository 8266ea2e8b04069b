"""The JSONL delivery log.

- ``records``: the record dataclasses, encoding them, the locked one-write-per-line append.
- ``query``: reading it backwards (tail), filters, follow, finding a record by id.
- ``replay``: which logged deliveries a replay resends (following ``replay_of`` chains).

Other packages import from here, not from the inner modules. Stdlib only.
"""

from moxiehook.log.query import parse_duration
from moxiehook.log.records import (
    LOGGED_BODY_LIMIT,
    MAX_NESTING,
    Attempt,
    DeliveryRecord,
    EndpointRecord,
    LogWriter,
    Record,
    check_nesting,
    encode_body,
    encode_record,
)

__all__ = [
    "LOGGED_BODY_LIMIT", "MAX_NESTING", "Attempt", "DeliveryRecord", "EndpointRecord", "LogWriter", "Record",
    "check_nesting", "encode_body", "encode_record", "parse_duration",
]
