"""Testing a receiver in-process: the pytest plugin's ``moxie`` fixture, and the API under it.

- ``fixture``: ``MoxieFixture`` (what the ``moxie`` fixture is), ``fire``, ``sample``, ``schema``.
- ``inprocess``: telling WSGI from ASGI apps, their transports, ``AppSender`` and
  ``load_app`` for ``fire --app``.
- ``plugin``: the pytest plugin (entry point ``pytest11``).

pytest imports the plugin at the start of every test session of every project
where moxiehook is installed, so nothing here is imported until it is used:
the names are resolved lazily (PEP 562), and a session that never asks for
``moxie`` loads neither httpx nor the rest of moxiehook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from moxiehook.lazy import lazy_getattr

# name -> the inner module that defines it
_EXPORTS = {
    "AppSender": "inprocess",
    "MoxieFixture": "fixture",
    "app_kind": "inprocess",
    "fire": "fixture",
    "load_app": "inprocess",
    "sample": "fixture",
    "schema": "fixture",
}

__all__ = ["AppSender", "MoxieFixture", "app_kind", "fire", "load_app", "sample", "schema"]

if TYPE_CHECKING:
    from moxiehook.testing.fixture import MoxieFixture, fire, sample, schema
    from moxiehook.testing.inprocess import AppSender, app_kind, load_app


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
