"""Standard Webhooks signatures: sign outgoing deliveries, verify incoming ones.

Signed content is ``"{webhook-id}.{webhook-timestamp}.{body}"``; the signature
is ``v1,`` + base64 of HMAC-SHA256 keyed with the secret's bytes (the base64
after ``whsec_``). Written with the stdlib ``hmac``: a dozen lines, no extra
dependency, and checked in the tests against the ``standardwebhooks`` package.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

PREFIX = "whsec_"
TOLERANCE_SECONDS = 5 * 60
MAX_TIMESTAMP_DIGITS = 12  # Unix seconds until the year 33658


class SignatureMismatch(Exception):
    """Raised by ``verify`` with a reason a person can act on."""


def secret_bytes(secret: str) -> bytes:
    """The HMAC key: the bytes encoded after ``whsec_`` (the config validated the form)."""
    return base64.b64decode(secret[len(PREFIX):] if secret.startswith(PREFIX) else secret)


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one attempt."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(key: bytes, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The three headers a signed attempt carries; the timestamp is 'now' unless given."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(key, msg_id, ts, body),
    }


def verify(key: bytes, headers: Mapping[str, str], body: bytes, now: float | None = None) -> None:
    """Check a received request like a Standard Webhooks receiver; raise ``SignatureMismatch``.

    ``headers`` must be looked up case-insensitively (lower-cased names are fine).
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not (msg_id and stamp and signatures):
        raise SignatureMismatch("missing webhook-id, webhook-timestamp or webhook-signature header")
    # Digits only, and few of them: int() would take " 12", "-1" or "1_000", and a
    # 400-digit value parses but overflows the float arithmetic below.
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= MAX_TIMESTAMP_DIGITS):
        shown = stamp if len(stamp) <= 40 else f"{stamp[:40]}…"
        raise SignatureMismatch(f"webhook-timestamp {shown!r} is not a Unix time")
    timestamp = int(stamp)
    current = time.time() if now is None else now
    if abs(current - timestamp) > TOLERANCE_SECONDS:
        raise SignatureMismatch(f"webhook-timestamp is {int(current - timestamp)} s off "
                                f"(tolerance {TOLERANCE_SECONDS} s)")
    expected = sign(key, msg_id, timestamp, body).partition(",")[2]
    # A receiver may get several space-separated signatures (key rotation).
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        # Bytes, not str: compare_digest raises TypeError on a non-ASCII str.
        if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
            return
    raise SignatureMismatch("no webhook-signature matches (wrong secret or modified body)")
