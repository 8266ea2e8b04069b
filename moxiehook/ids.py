"""Time-sortable unique ids (ULID-like): ``dlv_…`` for deliveries, ``evt_…`` for events;
and ``now_iso()``, the one timestamp format of the config and the log.

26 Crockford base32 characters: 48 bits of milliseconds since the epoch, then
80 random bits. Ids made later sort later; within one millisecond in one
process the random part is incremented, so they stay in creation order.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80
_lock = threading.Lock()
_last_ms = -1
_last_random = 0


# Crockford base32 of 5 bits is one character; two characters (10 bits) come from
# one table look-up, so a 130-bit value needs 13 look-ups instead of 26 divmods.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]


def _encode(value: int, length: int) -> str:
    """``value`` as ``length`` base32 characters (``length`` even), most significant first."""
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 0x3FF] for shift in range(5 * (length - 2), -1, -10)])


def ulid() -> str:
    """A new 26-character ULID string."""
    global _last_ms, _last_random
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms == _last_ms:
            _last_random = (_last_random + 1) % (1 << _RANDOM_BITS)
        else:
            _last_ms = now_ms
            _last_random = int.from_bytes(os.urandom(10), "big")
        return _encode((now_ms << _RANDOM_BITS) | _last_random, 26)


def delivery_id() -> str:
    return "dlv_" + ulid()


def event_id() -> str:
    return "evt_" + ulid()


_second: tuple[int, str] = (-1, "")  # (Unix second, its "YYYY-MM-DDTHH:MM:SS"), replaced whole


def now_iso() -> str:
    """Now as the log writes it: ISO-8601 UTC with milliseconds and ``Z``.

    The one clock format of moxiehook (config's ``disabled_at``, every log
    record, ``listen``'s lines). The date and time of day are formatted once per
    second, since a busy run asks for it twice per delivery.
    """
    global _second
    ns = time.time_ns()
    second, fraction = divmod(ns, 1_000_000_000)
    cached = _second
    if cached[0] != second:
        cached = _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{fraction // 1_000_000:03d}Z"
