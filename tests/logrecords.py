"""Building delivery-log fixtures from record objects (shared by the log and replay tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from moxiehook.ids import delivery_id, event_id
from moxiehook.log.records import Attempt, DeliveryRecord, EndpointRecord, LogWriter

START = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def delivery(n: int = 0, *, outcome: str = "delivered", status: int | None = 200, event: str = "ClientCreate",
             endpoint: str = "crm", replay_of: str | None = None, event_id_: str | None = None,
             url: str = "https://crm.example.com/hooks") -> DeliveryRecord:
    """A delivery record made ``n`` minutes after START."""
    at = iso(START + timedelta(minutes=n))
    return DeliveryRecord(
        id=delivery_id(), event_id=event_id_ or event_id(), event=event, endpoint=endpoint, url=url,
        mode="replay" if replay_of else "fire", replay_of=replay_of, at=at, outcome=outcome, status=status,
        error=None, duration_ms=3.5, attempts=[Attempt(at=at, status=status, error=None, duration_ms=3.4)],
        request={"headers": {"Authorization": "***"}, "body": {"id": f"c{n}", "name": "Acme"}},
        response=None if status is None else {"status": status, "headers": {}, "body": "ok"},
    )


def write(path: Path, *records: DeliveryRecord | EndpointRecord) -> None:
    with LogWriter(path) as writer:
        for record in records:
            writer.append(record)


def busy_records(url: str, forward: bool = False) -> list[DeliveryRecord]:
    """Eight records as a user's log holds them: delivered and failed (long errors), two event types
    and endpoints, today's and older ones, a replay, and (``forward``) a relayed one. ``url`` is
    formatted with the record's number: ``url.format(n=n)``."""
    today = datetime.now(UTC).replace(microsecond=0)
    records: list[DeliveryRecord] = []
    for n in range(8):
        record = delivery(n, outcome="failed" if n % 2 else "delivered", status=503 if n % 2 else 200,
                          event="DeliverableApproval" if n % 3 == 0 else "ClientCreate",
                          endpoint="billing-service" if n % 2 else "crm", url=url.format(n=n))
        if n % 2:
            record.error = "connection error: [Errno 111] Connection refused (after 3 attempts)"
        if n >= 4:
            record.at = iso(today - timedelta(minutes=10 - n))
        if n == 5:
            record.mode, record.replay_of = "replay", records[1].id
        if n == 6 and forward:
            record.mode = "forward"
        records.append(record)
    return records
