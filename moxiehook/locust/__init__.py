"""Moxie's webhooks under Locust: ``MoxieUser``, an abstract Locust user for locustfiles.

``pip install 'moxiehook[locust]'`` (from a clone: ``pip install '.[locust]'``) adds Locust.
Only a locustfile imports this package's
``MoxieUser`` (which imports Locust and gevent, whose monkey-patching must not reach the CLI or
a test session); the name is resolved when first used (PEP 562), so ``plan`` — what a user
sends, worked out without Locust — can be used alone. ``moxiehook locustfile`` writes a
ready locustfile without importing either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from moxiehook.lazy import lazy_getattr

_EXPORTS = {"MoxieUser": "user", "locustfile_events": "writer", "locustfile_text": "writer"}

__all__ = ["MoxieUser", "locustfile_events", "locustfile_text"]

if TYPE_CHECKING:
    from moxiehook.locust.user import MoxieUser
    from moxiehook.locust.writer import locustfile_events, locustfile_text

__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
