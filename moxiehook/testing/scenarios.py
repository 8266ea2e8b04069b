"""``moxie.scenario``: a whole scenario fired into an app (or a live server) from a test.

Each step is rendered as ``moxiehook scenario run`` renders it (references, ``--set``,
``seed``, ``vary``; every error before the first request) and sent with ``moxie.fire``, so a
test gets byte for byte what the CLI sends, in order, one response per step. As with
``moxie.fire``: no retries, no log, no disabling, and an exception raised by the app reaches
the test. Unlike ``scenario run``, every step is sent whatever the answers (a test asserts on
them; ``expect`` and ``continue_on_failure`` are the CLI's), and a step's ``delay`` is not
waited for (a test has no use for wall-clock time): pass ``delays=True`` to wait.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from collections.abc import Mapping as MappingType
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moxiehook.errors import UsageError
from moxiehook.scenario import Rendered, find_scenario, override, render

if TYPE_CHECKING:  # the fixture's module sends; this one only renders and hands it the steps
    import httpx

    from moxiehook.testing.fixture import MoxieFixture


def render_for_test(scenario: str | Path, set: MappingType[str, Any] | None = None,  # noqa: A002
                    seed: int | None = None, vary: bool | None = None, skip: Iterable[str] = ()) -> Rendered:
    """The rendered steps of ``scenario`` (a name, ``./scenarios/NAME.toml`` or a path)."""
    if set is not None and not isinstance(set, MappingType):
        raise UsageError(f"set= takes a dict of {{'step:path': value}}, not {type(set).__name__}")
    overrides = []
    for key, value in (set or {}).items():
        step, colon, path = str(key).partition(":")
        if not colon or not step or not path:
            raise UsageError(f"set= key {key!r} must look like 'step:path' (e.g. 'client:name')")
        overrides.append(override(step, path, value))
    if isinstance(skip, str):
        skip = [skip]
    return render(find_scenario(scenario), overrides=overrides, skip=skip, seed=seed, vary=vary)


def fire_scenario(moxie: MoxieFixture, scenario: str | Path, *, app: Any = None, url: str | None = None,
                  path: str | None = None, set: MappingType[str, Any] | None = None,  # noqa: A002
                  seed: int | None = None, vary: bool | None = None, skip: Iterable[str] = (),
                  auth: MappingType[str, Any] | None = None, headers: MappingType[str, str] | None = None,
                  signing_secret: str | None = None, endpoint: str | None = None,
                  config: str | Path | None = None, delays: bool = False) -> list[httpx.Response]:
    """Fire every step of ``scenario`` in order; the responses, one per step."""
    rendered = render_for_test(scenario, set, seed, vary, skip)
    responses = []
    for item in rendered.steps:
        if delays and item.step.delay:
            time.sleep(item.step.delay)
        responses.append(moxie.fire(item.step.event, app=app, url=url, path=path, data=item.payload, auth=auth,
                                    headers=headers, signing_secret=signing_secret, endpoint=endpoint,
                                    config=config))
    return responses
