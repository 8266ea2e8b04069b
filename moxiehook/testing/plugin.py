"""The pytest plugin (entry point ``pytest11``): the ``moxie`` fixture.

pytest imports this module at the start of every session wherever moxiehook is
installed, whether or not a test uses it: it imports nothing but pytest, and
the fixture loads moxiehook (and httpx) only when a test first asks for it.
Disable it with ``-p no:moxiehook``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from moxiehook.testing.fixture import MoxieFixture


@pytest.fixture
def moxie() -> Iterator[MoxieFixture]:
    """Fire Moxie webhooks into a WSGI/ASGI app in-process, or at a live server.

    ``moxie.fire("ClientCreate", app=app, path="/hooks", auth={"type": "bearer", "token": "t"})``
    returns the ``httpx.Response``; ``moxie.sample(event)`` and ``moxie.schema(event)``
    give an event's sample payload and JSON Schema. See ``moxiehook.testing``.
    """
    from moxiehook.testing import MoxieFixture

    with MoxieFixture() as fixture:
        yield fixture
