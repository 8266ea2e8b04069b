"""Scenario files: the TOML format, read and checked before anything is rendered or sent.

A scenario is a story of related events, each a step fired in order::

    name = "project-to-payment"
    description = "A new client, its project, an invoice, and the payment of it."

    [vars]
    rate = 150

    [[steps]]
    name = "client"                      # unique; defaults to the event's name
    event = "ClientCreate"
    set = { name = "Acme Ltd" }          # keys are `fire --set` paths ("contacts[0].email")

    [[steps]]
    name = "project"
    event = "ProjectCreate"
    delay = "0.5s"                       # waits before the step, as `fire --duration` reads it
    set = { clientId = "${client:id}", "feeSchedule.amount" = "${vars:rate}" }
    expect = { status = [200, 204] }     # alone decides what counts as success
    continue_on_failure = false

Everything a user can get wrong in such a file is a ``ScenarioError`` (exit 2) naming the file,
the step and the key, before anything is sent: TOML syntax (with line and column), a file that
is not UTF-8, an unknown key (with the closest known one), a value of the wrong type, a number
JSON cannot carry (``inf``, ``nan``), a TOML date (JSON has none), a duplicate step name.
References inside the values (``${…}``) are checked when the scenario is rendered
(``moxiehook.scenario.render``), since they depend on ``--skip`` and ``--set``.
"""

from __future__ import annotations

import math
import re
import stat
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from moxiehook import catalog
from moxiehook.config import check_event_name
from moxiehook.errors import MoxiehookError, UsageError
from moxiehook.log import parse_duration
from moxiehook.suggest import did_you_mean

TOP_KEYS = ("name", "description", "vars", "steps", "vary")
STEP_KEYS = ("name", "event", "set", "data", "delay", "expect", "continue_on_failure")
EXPECT_KEYS = ("status",)
RESERVED_NAMES = ("vars", "oid", "now")  # what a reference names besides a step
STEP_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
VAR_NAME = STEP_NAME
MAX_DELAY_S = 3600.0  # a step waits at most an hour: a longer delay is a typo (7d), not a story
MAX_STEPS = 1000
MAX_FILE_BYTES = 1024 * 1024  # a scenario is a hand-written story, not a data dump


class ScenarioError(MoxiehookError):
    """A scenario file, a reference or a ``--set``/``--skip`` that cannot be used (exit 2)."""


@dataclass(frozen=True)
class Step:
    """One step: an event to fire, after ``delay`` seconds, with its payload's overrides."""

    name: str
    event: str
    index: int  # 0-based position in the file
    sets: tuple[catalog.Assignment, ...] = ()  # values still hold their ${…} references
    data: Path | None = None  # the payload's JSON file, resolved beside the scenario file
    delay: float = 0.0
    delay_text: str | None = None
    expect: tuple[int, ...] | None = None  # statuses that count as success; None: any 2xx
    continue_on_failure: bool = False

    @property
    def where(self) -> str:
        return f"step {self.name!r}"


@dataclass(frozen=True)
class Scenario:
    """A parsed scenario file."""

    name: str
    description: str
    source: str  # the file's path, or "built-in"
    folder: Path | None  # where ``data`` files are looked for (None: built-in, which have none)
    vars: dict[str, Any] = field(default_factory=dict)
    steps: tuple[Step, ...] = ()
    vary: bool = False

    def step(self, name: str, what: str = "step") -> Step:
        """The step called ``name``; ``ScenarioError`` with the closest name otherwise."""
        for step in self.steps:
            if step.name == name:
                return step
        hint = did_you_mean(name, self.step_names(), quote=True)
        raise ScenarioError(f"{what} {name!r}: scenario {self.name!r} has no such step{hint} "
                            f"(its steps: {', '.join(self.step_names())})")

    def step_names(self) -> list[str]:
        return [step.name for step in self.steps]


def load_scenario(path: Path, default_name: str | None = None, source: str | None = None) -> Scenario:
    """Read and check the scenario file at ``path``."""
    shown = source or shorten(str(path))
    try:
        check_regular_file(path, shown, MAX_FILE_BYTES)
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(f"no scenario file at {shown}") from None
    except IsADirectoryError:
        raise ScenarioError(f"{shown} is a folder, not a scenario file") from None
    except OSError as exc:
        raise ScenarioError(f"cannot read {shown}: {exc.strerror}") from None
    folder = None if source == "built-in" else path.resolve().parent
    return parse_scenario(raw, shown, folder, default_name or path.stem)


def shorten(text: str, width: int = 120) -> str:
    """A name or path as an error shows it: at most ``width`` characters (a pasted payload is not a name)."""
    return text if len(text) <= width else text[: width - 1] + "…"


def check_regular_file(path: Path, shown: str, max_bytes: int | None = None) -> None:
    """Refuse what is not a regular file before reading it: a FIFO or a device would be read forever.

    ``max_bytes``: a scenario file larger than this is refused from its size, not read whole only
    to be refused (whatever its name ends in).
    """
    status = path.stat()  # FileNotFoundError and IsADirectoryError are the caller's to report
    if stat.S_ISDIR(status.st_mode):
        raise IsADirectoryError(shown)
    if not stat.S_ISREG(status.st_mode):
        raise ScenarioError(f"{shown} is not a regular file (a pipe or a device?): moxiehook reads files only")
    if max_bytes is not None and status.st_size > max_bytes:
        raise ScenarioError(f"{shown}: a scenario file is at most {MAX_FILE_BYTES // 1024} KiB; "
                            "put large payloads in data files")


def parse_scenario(raw: bytes, source: str, folder: Path | None, default_name: str) -> Scenario:
    """A ``Scenario`` from the bytes of a TOML file (``source`` names it in errors)."""
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError(f"{source}: a scenario file is at most {MAX_FILE_BYTES // 1024} KiB; "
                            "put large payloads in data files")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start:exc.start + 1]
        raise ScenarioError(f"{source} is not UTF-8 text (byte {exc.start}: {bad!r})") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source} is not valid TOML: {exc}") from None
    except RecursionError:
        raise ScenarioError(f"{source} nests tables and arrays too deeply") from None
    _check_keys(document, TOP_KEYS, source)
    name = _string(document, "name", source, default_name)
    if not name or not name.isprintable() or len(name) > 200:
        raise ScenarioError(f"{source}: name must be 1-200 printable characters (it is shown in every line of "
                            f"a run and in the log), got {name[:40]!r}")
    description = _string(document, "description", source, "")
    vary = document.get("vary", False)
    if not isinstance(vary, bool):
        raise ScenarioError(f"{source}: vary must be true or false, not {_kind(vary)}")
    variables = document.get("vars", {})
    if not isinstance(variables, dict):
        raise ScenarioError(f"{source}: vars must be a table ([vars]), not {_kind(variables)}")
    for key, value in variables.items():
        if not VAR_NAME.match(key):
            raise ScenarioError(f"{source}: vars.{key}: a var name is letters, digits, '_', '.' or '-'")
        _check_json(value, f"{source}: vars.{key}")
    steps_raw = document.get("steps")
    if steps_raw is None or (isinstance(steps_raw, list) and not steps_raw):
        raise ScenarioError(f"{source}: a scenario needs at least one step ([[steps]] with an event)")
    if not isinstance(steps_raw, list) or not all(isinstance(s, dict) for s in steps_raw):
        raise ScenarioError(f"{source}: steps must be an array of tables ([[steps]])")
    if len(steps_raw) > MAX_STEPS:
        raise ScenarioError(f"{source}: {len(steps_raw)} steps; a scenario has at most {MAX_STEPS}")
    steps: list[Step] = []
    seen: dict[str, int] = {}
    for index, table in enumerate(steps_raw):
        step = _parse_step(table, index, source, folder)
        if step.name in seen:
            other = seen[step.name]
            hint = " (a step's name defaults to its event: give one of them a name)" if "name" not in table else ""
            raise ScenarioError(f"{source}: steps[{index}] and steps[{other}] are both called {step.name!r}{hint}")
        seen[step.name] = index
        steps.append(step)
    return Scenario(name, description, source, folder, dict(variables), tuple(steps), vary)


def _parse_step(table: dict[str, Any], index: int, source: str, folder: Path | None) -> Step:
    where = f"{source}: steps[{index}]"
    _check_keys(table, STEP_KEYS, where)
    event = table.get("event")
    if not isinstance(event, str) or not event:
        raise ScenarioError(f"{where}: every step needs an event (event = \"ClientCreate\")")
    try:
        check_event_name(event)
    except MoxiehookError as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    name = table.get("name", event)
    if not isinstance(name, str) or not STEP_NAME.match(name) or name in RESERVED_NAMES:
        raise ScenarioError(
            f"{where}: step name {name!r} must be 1-64 letters, digits, '_', '.' or '-' (not starting with "
            f"'.' or '-'), and not {', '.join(RESERVED_NAMES)}")
    where = f"{source}: step {name!r}"
    data = table.get("data")
    data_path = None
    if data is not None:
        if not isinstance(data, str) or not data:
            raise ScenarioError(f"{where}: data must be the path of a JSON file, not {_kind(data)}")
        if folder is None:
            raise ScenarioError(f"{where}: a built-in scenario has no data files")
        data_path = folder / data
    elif not catalog.is_known(event):
        try:
            catalog.check_not_a_near_miss(event)
        except MoxiehookError as exc:
            raise ScenarioError(f"{where}: {exc}") from None
        raise ScenarioError(f"{where}: event {event!r} is not in the catalog, so it has no sample: "
                            "give the step a data file (data = \"payload.json\")")
    sets = _parse_sets(table.get("set", {}), where)
    delay, delay_text = _parse_delay(table.get("delay"), where)
    expect = _parse_expect(table.get("expect"), where)
    keep_going = table.get("continue_on_failure", False)
    if not isinstance(keep_going, bool):
        raise ScenarioError(f"{where}: continue_on_failure must be true or false, not {_kind(keep_going)}")
    return Step(name, event, index, sets, data_path, delay, delay_text, expect, keep_going)


def _parse_sets(sets: Any, where: str) -> tuple[catalog.Assignment, ...]:
    if not isinstance(sets, dict):
        raise ScenarioError(f"{where}: set must be a table of path = value (set = {{ name = \"Acme\" }}), "
                            f"not {_kind(sets)}")
    parsed = []
    for key, value in sets.items():
        _check_json(value, f"{where}: set {key}")
        parsed.append(catalog.Assignment(set_path(key, f"{where}: set"), value, key))
    return tuple(parsed)


def set_path(key: str, where: str) -> tuple[str | int, ...]:
    """A ``set`` key as a path, read by the one path parser ``fire --set`` uses."""
    try:
        return catalog.parse_path(key, key)
    except UsageError as exc:
        reason = str(exc).split(": ", 1)[-1]
        raise ScenarioError(f"{where} {key!r}: {reason}") from None


def _parse_delay(delay: Any, where: str) -> tuple[float, str | None]:
    if delay is None:
        return 0.0, None
    if isinstance(delay, bool) or not isinstance(delay, (str, int, float)):
        raise ScenarioError(f"{where}: delay must be a duration like \"500ms\" or \"2s\", not {_kind(delay)}")
    text = str(delay).strip()
    try:
        seconds = parse_duration(text[:-2]) / 1000 if text.endswith("ms") else parse_duration(text)
    except MoxiehookError:
        raise ScenarioError(f"{where}: delay {text!r} is not a duration: use 500ms, 2s, 1.5m") from None
    if not math.isfinite(seconds) or seconds > MAX_DELAY_S:
        raise ScenarioError(f"{where}: delay {text!r} is longer than {MAX_DELAY_S:g} s: a step waits at most an hour")
    return seconds, text


def _parse_expect(expect: Any, where: str) -> tuple[int, ...] | None:
    if expect is None:
        return None
    if not isinstance(expect, dict):
        raise ScenarioError(f"{where}: expect must be a table (expect = {{ status = 204 }}), not {_kind(expect)}")
    _check_keys(expect, EXPECT_KEYS, f"{where}: expect")
    status = expect.get("status")
    statuses = status if isinstance(status, list) else [status]
    if not statuses or not all(isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599
                               for s in statuses):
        raise ScenarioError(f"{where}: expect.status must be an HTTP status (100-599) or a list of them, "
                            f"e.g. status = [200, 204]; got {status!r}")
    return tuple(statuses)


def _check_keys(table: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in known:
            hint = did_you_mean(key, known, quote=True)
            raise ScenarioError(f"{where}: unknown key {key!r}{hint} (known: {', '.join(known)})")


def _string(document: dict[str, Any], key: str, where: str, default: str) -> str:
    value = document.get(key, default)
    if not isinstance(value, str):
        raise ScenarioError(f"{where}: {key} must be a string, not {_kind(value)}")
    return value


def _check_json(value: Any, where: str) -> None:
    """Refuse what TOML holds and JSON does not: inf, nan, dates and times."""
    pending = [(value, where)]
    while pending:
        item, at = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ScenarioError(f"{at}: {item} is not a JSON number (JSON has no inf or nan)")
        if isinstance(item, (datetime, date, time)):
            raise ScenarioError(f"{at}: {item.isoformat()} is a TOML date or time, which JSON has not: "
                                "quote it to send it as a string")
        if isinstance(item, dict):
            pending.extend((v, f"{at}.{k}") for k, v in item.items())
        elif isinstance(item, list):
            pending.extend((v, f"{at}[{i}]") for i, v in enumerate(item))


def _kind(value: Any) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)
