"""Moxie's events: the catalog of event types, their samples and schemas, and payload building.

- ``events``: the 28 event types, the object each carries, and its sample (``data/*.json``).
- ``schema``: the JSON Schema (draft 2020-12) of each event's payload, derived from its sample.
- ``payload``: ``--data``, ``--set`` (paths into arrays) and the fresh-id copies of ``--count``.
- ``vary``: seeded varied copies valid under the schema (``fire --vary``).

Only ``events`` and ``schema`` are imported with the package; the others load when one of their names is
first used (PEP 562), so ``events`` and ``map add`` start fast and only ``--vary`` loads the
generator.

Other packages import from here, not from the inner modules. Stdlib only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from moxiehook.catalog.events import (
    EVENTS,
    EventType,
    check_not_a_near_miss,
    get_event,
    is_known,
    names,
    sample,
    sample_text,
)
from moxiehook.catalog.schema import schema  # eager: a lazy name would be shadowed by the submodule
from moxiehook.lazy import lazy_getattr

# name -> the inner module that defines it, imported when the name is first used (PEP 562):
# `events` and `map add` need only the event list, not payload building or the generator.
_LAZY = {
    "Assignment": "payload", "PathError": "payload", "apply_overrides": "payload", "copies": "payload",
    "parse_assignment": "payload", "parse_path": "payload", "path_text": "payload", "read_data": "payload",
    "check_json": "payload", "strict_loads": "payload",
    "new_seed": "vary", "varied": "vary", "varied_copier": "vary",
}  # fmt: skip

if TYPE_CHECKING:
    from moxiehook.catalog.payload import (
        Assignment,
        PathError,
        apply_overrides,
        check_json,
        copies,
        parse_assignment,
        parse_path,
        path_text,
        read_data,
        strict_loads,
    )
    from moxiehook.catalog.vary import new_seed, varied, varied_copier

__all__ = [
    "EVENTS", "Assignment", "EventType", "PathError", "apply_overrides", "check_json", "check_not_a_near_miss",
    "copies", "get_event", "is_known", "names", "new_seed", "parse_assignment", "parse_path", "path_text",
    "read_data", "sample", "sample_text", "schema", "strict_loads", "varied", "varied_copier",
]  # fmt: skip


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
