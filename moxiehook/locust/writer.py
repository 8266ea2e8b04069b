"""What ``moxiehook locustfile`` writes: a ready locustfile, worked out without importing Locust.

The CLI must not load Locust and gevent (gevent monkey-patches the interpreter, and neither is
installed without the ``locust`` extra), so the file is text made from the config: the events
asked for (by default every catalog event mapped on the enabled endpoints, or on the one named),
each checked against the catalog and the config now, so the locustfile does not fail on its
first user. ``${VAR}`` references are not expanded here: the variables are needed where Locust
runs, not where the file is written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from moxiehook import catalog
from moxiehook.config import Config
from moxiehook.errors import ConfigError, UsageError

CLASS_NAME = "MoxieWebhooks"


def locustfile_events(config: Config, path: Path, events: Sequence[str], endpoint: str | None
                      ) -> tuple[list[str], list[str]]:
    """The events of the locustfile, and the mapped ones left out (outside the catalog: no sample).

    The events are those named (checked), or every catalog event mapped. Raises
    ``NotFoundError`` for an event outside the catalog or an unknown endpoint, and
    ``ConfigError`` for an event that no enabled endpoint (or not ``endpoint``) maps.
    """
    chosen = [config.endpoint(endpoint)] if endpoint is not None else list(config.endpoints.values())
    where = f"endpoint {endpoint!r}" if endpoint is not None else "any enabled endpoint"
    enabled = [ep for ep in chosen if ep.enabled]
    mapped = list(dict.fromkeys(m.event for ep in enabled for m in ep.mappings))
    if not events:
        found = [name for name in mapped if catalog.is_known(name)]
        left_out = [name for name in mapped if not catalog.is_known(name)]
        if not found:
            if endpoint is not None and not chosen[0].enabled:
                raise ConfigError(f"endpoint {endpoint!r} is disabled ({chosen[0].why_disabled}); "
                                  f"enable it first: moxiehook endpoint enable {endpoint}")
            raise ConfigError(f"no event of the catalog is mapped on {where} in {path} "
                              "(add one: moxiehook map add ENDPOINT EVENT URL)")
        return found, left_out
    names = list(dict.fromkeys(events))
    for name in names:
        catalog.get_event(name)  # a body comes from the catalog: an event outside it has none
        if name not in mapped:
            disabled = [ep.name for ep in chosen if not ep.enabled and any(m.event == name for m in ep.mappings)]
            if disabled:
                raise ConfigError(f"{name} is mapped only on disabled endpoint {disabled[0]!r} in {path}; "
                                  f"enable it first: moxiehook endpoint enable {disabled[0]}")
            raise ConfigError(f"{name} is not mapped on {where} in {path} "
                              f"(add one: moxiehook map add ENDPOINT {name} URL)")
    return names, []


def locustfile_text(events: Sequence[str], endpoint: str | None = None, vary: bool = False,
                    config: Path | None = None) -> str:
    """The locustfile: one ``MoxieUser`` subclass sending ``events``, as fast as answers allow.

    ``config`` is written only when given (the user named a config): otherwise the locustfile
    finds it as the CLI does where Locust runs (``$MOXIEHOOK_CONFIG``, else ``./moxiehook.toml``).
    """
    if not events:
        raise UsageError("a locustfile needs at least one event")
    # Names and paths are written as JSON strings, which are Python string literals too: whatever
    # a name holds, it cannot end the string (or the docstring) and become code. In code they are
    # ``_literal``s, which evaluate to the same text even past U+FFFF.
    weights = ", ".join(f"{_literal(name)}: 1" for name in events)
    summary = ", ".join(json.dumps(name)[1:-1] for name in events)
    to = f"endpoint {json.dumps(endpoint)}" if endpoint is not None else "every enabled endpoint mapping them"
    lines = [
        f'"""Moxie webhooks under Locust: {summary} to {to}.',
        "",
        "Written by `moxiehook locustfile`; needs Locust: `pip install 'moxiehook[locust]'`",
        "(from a clone of moxiehook: `pip install '.[locust]'`). Run it:",
        "",
        "    locust -f locustfile.py --headless --users 10 --spawn-rate 10 --run-time 1m",
        "",
        "Across machines: one master, then workers (one per core) on any machine that has the config",
        "and its ${VAR} variables:",
        "",
        "    locust -f locustfile.py --master --headless --users 100 --spawn-rate 20 --run-time 5m \\",
        "        --expect-workers 4 --csv report",
        "    locust -f locustfile.py --worker --master-host MASTER_ADDRESS",
        "",
        "Each user sends as fast as answers allow. For a fixed rate, pace the users:",
        "`wait_time = constant_throughput(5)` is 5 deliveries/s per user, so `--users 40` is the",
        "`fire --rate 200` of one machine.",
        '"""',
        "",
        "from locust import constant",
        "",
        "from moxiehook.locust import MoxieUser",
        "",
        "",
        f"class {CLASS_NAME}(MoxieUser):",
        f"    events = {{{weights}}}  # event type: weight",
    ]
    if endpoint is not None:
        lines.append(f"    endpoint = {_literal(endpoint)}")
    if config is not None:
        lines.append(f"    config = {_literal(str(config))}")
    lines += [
        f"    vary = {vary!r}  # True: varied bodies, as `fire --vary`",
        "    # seed = 1  # reproducible bodies, different for every user on every worker",
        "    wait_time = constant(0)  # or: from locust import constant_throughput; constant_throughput(5)",
        "",
    ]
    return "\n".join(lines)


def _literal(text: str) -> str:
    """``text`` as a double-quoted, ASCII-only Python string literal that evaluates to ``text``.

    A JSON string (``json.dumps``) is one, except past U+FFFF: JSON writes such a character (an
    emoji in a folder's name) as two ``\\u`` surrogates, which Python reads as two lone
    surrogates, a path no file has. Here every non-ASCII character is its own Python escape.
    """
    return _NON_ASCII.sub(_escape, json.dumps(text, ensure_ascii=False))


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
