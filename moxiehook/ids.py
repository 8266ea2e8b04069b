"""Time-sortable unique ids (ULID-like): ``dlv_…`` for deliveries, ``evt_…`` for events.

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


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


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
