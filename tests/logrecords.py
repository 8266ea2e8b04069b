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
