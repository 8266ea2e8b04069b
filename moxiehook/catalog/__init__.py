"""Moxie's events: the catalog of event types, their samples and schemas, and payload building.

- ``events``: the 28 event types, the object each carries, and its sample (``data/*.json``).
- ``schema``: the JSON Schema (draft 2020-12) of each event's payload, derived from its sample.
- ``payload``: ``--data``, ``--set`` (paths into arrays) and the fresh-id copies of ``--count``.
- ``vary``: seeded varied copies valid under the schema (``fire --vary``); loaded on first use
  (PEP 562), so commands that do not vary never import it.

Other packages import from here, not from the inner modules. Stdlib only.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
from moxiehook.catalog.payload import (
    Assignment,
    PathError,
    apply_overrides,
    copies,
    parse_assignment,
    read_data,
)
from moxiehook.catalog.schema import schema

# name -> the inner module that defines it, imported when the name is first used
_LAZY = {"new_seed": "vary", "varied": "vary"}

if TYPE_CHECKING:
    from moxiehook.catalog.vary import new_seed, varied

__all__ = [
    "EVENTS", "Assignment", "EventType", "PathError", "apply_overrides", "check_not_a_near_miss", "copies",
    "get_event", "is_known", "names", "new_seed", "parse_assignment", "read_data", "sample", "sample_text",
    "schema", "varied",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
