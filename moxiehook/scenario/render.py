"""Rendering a scenario: every step's payload, its references resolved, before anything is sent.

Steps are rendered in order; a step's payload is its ``data`` file or its event's sample (a
varied copy with ``vary``), then its ``set`` values and the command line's ``--set
STEP:PATH=VALUE`` on top, so a later step that reads ``${STEP:PATH}`` reads the payload exactly as
it will be sent. All of it happens before the first request: an unknown step, var or path, a
reference to a later step, to the step itself or to a step left out with ``--skip``, a cycle
between vars, a path that does not fit the payload are all exit 2, and nothing is sent.

Randomness comes from the seed alone: ``${oid}`` values and varied copies are drawn from it, so
the same seed renders the same story (but for ``${now}``, which is the time). Run ``index`` N of
a ``--repeat`` draws from (seed, N): each run its own ids, the whole series repeatable.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from moxiehook import catalog, ids
from moxiehook.errors import DataError, MoxiehookError, UsageError
from moxiehook.log import check_nesting
from moxiehook.scenario.model import Scenario, ScenarioError, Step, check_regular_file, set_path
from moxiehook.scenario.refs import Ref, as_text, parse_template, references
from moxiehook.suggest import did_you_mean

# What one run's references may copy, counted as JSON text as they are resolved: references that
# copy each other (a var of two copies of the next, sixty deep) would otherwise grow without bound.
# Payloads themselves (samples, data files) are not counted, only what references copy.
MAX_RENDERED = 4 * 1024 * 1024


@dataclass(frozen=True)
class StepOverride:
    """One ``--set STEP:PATH=VALUE``: which step, and the assignment (its value may hold references)."""

    step: str
    assignment: catalog.Assignment


def parse_override(text: str) -> StepOverride:
    """``invoice:total=4500`` -> step ``invoice``, ``total`` = 4500 (the value read as ``fire --set`` reads it)."""
    key, sep, _ = text.partition("=")
    step, colon, _ = key.partition(":")
    if not sep or not colon or not step.strip():
        raise UsageError(f"--set {text!r} must look like STEP:PATH=VALUE (e.g. --set client:name=Acme)")
    assignment = catalog.parse_assignment(text[len(step) + 1:], prefix=text[:len(step) + 1])
    return StepOverride(step.strip(), assignment)


def override(step: str, path: str, value: Any) -> StepOverride:
    """A ``--set`` given as data (the fixture's ``set={"step:path": value}``): a value JSON can hold."""
    try:
        json.dumps(value)  # inf, nan and surrogates pass here: refused with the payload when it is rendered
    except (TypeError, ValueError) as exc:  # ValueError: a list or dict that holds itself
        raise ScenarioError(f"step {step!r}: set {path!r}: {exc}: use a string, number, boolean, None, list or "
                            "dict") from None
    except RecursionError:
        raise ScenarioError(f"step {step!r}: set {path!r}: the value nests too deeply") from None
    return StepOverride(step, catalog.Assignment(set_path(path, f"set {step}:"), value, path))


@dataclass(frozen=True)
class RenderedStep:
    step: Step
    payload: Any


@dataclass(frozen=True)
class Rendered:
    """One run's payloads, in order; ``left_out``: the steps ``--skip`` named."""

    scenario: Scenario
    seed: int
    vary: bool
    index: int
    steps: tuple[RenderedStep, ...]
    left_out: tuple[str, ...] = ()


def render(
    scenario: Scenario,
    *,
    overrides: Sequence[StepOverride] = (),
    skip: Iterable[str] = (),
    seed: int | None = None,
    vary: bool | None = None,
    index: int = 0,
    now: Callable[[], str] = ids.now_iso,
) -> Rendered:
    """Every step's payload as it will be sent (``vary``: None takes the file's ``vary``)."""
    left_out = tuple(dict.fromkeys(scenario.step(name, "--skip").name for name in skip))
    for item in overrides:
        name = scenario.step(item.step, "--set").name
        if name in left_out:
            raise ScenarioError(f"--set {item.step}:{item.assignment.text}: step {name!r} is left out by --skip, "
                                "so nothing of it is sent: drop one of the two")
    seed = catalog.new_seed() if seed is None else seed
    varying = scenario.vary if vary is None else vary
    resolver = _Resolver(scenario, random.Random(f"moxiehook-scenario:{seed}:{index}"), now, left_out)
    resolver.resolve_vars()
    read = _reads(scenario, overrides) if varying else {}
    steps = []
    for step in scenario.steps:
        if step.name in left_out:
            continue
        extra = [o.assignment for o in overrides if o.step == step.name]
        payload = resolver.render_step(step, extra, varying, _step_seed(seed, index, step.index),
                                       read.get(step.name, ()))
        steps.append(RenderedStep(step, payload))
    return Rendered(scenario, seed, varying, index, tuple(steps), left_out)


def _reads(scenario: Scenario, overrides: Sequence[StepOverride]) -> dict[str, list[tuple[str | int, ...]]]:
    """For each step, the paths that references (in the file's ``set`` values and in ``--set``) read
    from it: its varied copy must keep each of them, as it keeps a ``--set`` path."""
    read: dict[str, list[tuple[str | int, ...]]] = {}
    values = [a.value for step in scenario.steps for a in step.sets] + [o.assignment.value for o in overrides]
    for value in values:
        try:
            found = references(value, "")
        except ScenarioError:
            continue  # reported with its step and key when that value is rendered
        for ref in found:
            if ref.kind == "step":
                read.setdefault(ref.name, []).append(ref.path)
    return read


def _step_seed(seed: int, index: int, step: int) -> int:
    return random.Random(f"moxiehook-scenario-vary:{seed}:{index}:{step}").getrandbits(32)


class _Resolver:
    def __init__(self, scenario: Scenario, rng: random.Random, now: Callable[[], str],
                 left_out: tuple[str, ...]) -> None:
        self.scenario = scenario
        self.rng = rng
        self.now = now
        self.left_out = left_out
        self.vars: dict[str, Any] = {}
        self.payloads: dict[str, Any] = {}
        self.sizes: dict[int, int] = {}  # id(value) of a var or a payload -> its JSON size
        self.budget = MAX_RENDERED

    # -- vars ------------------------------------------------------------------------------

    def resolve_vars(self) -> None:
        """Each var once, in the file's order; a var's ``${oid}`` is drawn once, whatever uses it."""
        for name in self.scenario.vars:
            self.var(name, ())

    def var(self, name: str, chain: tuple[str, ...], where: str = "") -> Any:
        if name in self.vars:
            return self.vars[name]
        known = self.scenario.vars
        if name not in known:
            hint = did_you_mean(name, known, quote=True)
            listed = f" (its vars: {', '.join(known)})" if known else " (it has no [vars])"
            raise ScenarioError(f"{where or self.scenario.source}: ${{vars:{name}}}: scenario "
                                f"{self.scenario.name!r} has no var {name!r}{hint}{listed}")
        if name in chain:
            loop = " -> ".join((*chain[chain.index(name):], name))
            what = "refers to itself" if len(chain) - chain.index(name) == 1 else f"is in a cycle: {loop}"
            raise ScenarioError(f"{self.scenario.source}: vars.{name} {what}")
        value = self.value(known[name], f"{self.scenario.source}: vars.{name}", None, (*chain, name))
        self.vars[name] = value
        return value

    # -- steps -----------------------------------------------------------------------------

    def render_step(self, step: Step, extra: list[catalog.Assignment], vary: bool, seed: int,
                    read: Sequence[tuple[str | int, ...]] = ()) -> Any:
        where = f"{self.scenario.source}: {step.where}"
        assignments = [
            catalog.Assignment(a.path, self.value(a.value, f"{where}: set {a.text!r}", step, ()), a.text)
            for a in (*step.sets, *extra)
        ]
        base, schema = self.base(step, where)
        try:
            if vary:
                payload = next(catalog.varied(base, seed, assignments, schema=schema, pool=1, reads=read))
            else:
                payload = catalog.apply_overrides(base, assignments)
        except DataError as exc:
            raise ScenarioError(f"{where}: {_unprefixed(str(exc))}") from None
        check_nesting(payload, f"{where}: the payload")
        _check_strict(payload, where)
        self.payloads[step.name] = payload
        return payload

    def base(self, step: Step, where: str) -> tuple[Any, dict[str, Any] | None]:
        if step.data is None:
            return catalog.sample(step.event), catalog.schema(step.event)
        try:
            with contextlib.suppress(OSError):  # missing or a folder: read_data says which, as for fire --data
                check_regular_file(step.data, str(step.data))
            return catalog.read_data(str(step.data)), None
        except MoxiehookError as exc:
            raise ScenarioError(f"{where}: data {_unprefixed(str(exc))}") from None

    # -- values ----------------------------------------------------------------------------

    def value(self, value: Any, where: str, step: Step | None, chain: tuple[str, ...]) -> Any:
        """``value`` with every reference in it resolved (tables and arrays walked)."""
        if isinstance(value, str):
            template = parse_template(value, where)
            if len(template) == 1 and isinstance(template[0], Ref):
                found = self.ref(template[0], where, step, chain)
                self.charge(found, where)
                # Keeps its JSON type. Shared, not copied: rendered values are never changed in place
                # (apply_overrides and varied copy what they change), and copying is what made
                # references that copy each other slow before the budget could stop them.
                return found
            pieces = []
            for piece in template:
                if isinstance(piece, Ref):
                    found = self.ref(piece, where, step, chain)
                    self.charge(found, where)
                    piece = as_text(found)
                pieces.append(piece)
            return "".join(pieces)
        if isinstance(value, dict):
            return {key: self.value(item, f"{where}.{key}", step, chain) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item, f"{where}[{i}]", step, chain) for i, item in enumerate(value)]
        return value

    def charge(self, value: Any, where: str) -> None:
        """Count ``value`` (about to be copied) against the run's budget; ``ScenarioError`` past it."""
        if isinstance(value, (dict, list)):
            size = self.sizes.get(id(value))
            if size is None:  # values referenced live as long as the run (vars, payloads): ids stay theirs
                size = self.sizes[id(value)] = len(json.dumps(value, ensure_ascii=False, default=str))
        else:
            size = len(value) if isinstance(value, str) else 8
        self.budget -= size
        if self.budget < 0:
            limit = f"{MAX_RENDERED // (1024 * 1024)} MiB"
            if size > MAX_RENDERED:  # one reference alone: say so, rather than guess at a loop
                raise ScenarioError(f"{where}: this reference copies {size / (1024 * 1024):.1f} MiB, and the "
                                    f"references of a run copy at most {limit} in all; put the value in the "
                                    "step's own data file instead")
            raise ScenarioError(f"{where}: the references of this run copy more than {limit} in all; "
                                "do references copy each other over and over?")

    def ref(self, ref: Ref, where: str, step: Step | None, chain: tuple[str, ...]) -> Any:
        if ref.kind == "oid":
            return f"{self.rng.getrandbits(96):024x}"
        if ref.kind == "now":
            return self.now()
        if ref.kind == "var":
            return self.var(ref.name, chain, where)
        if step is None:
            raise ScenarioError(f"{where}: {ref.text}: a var cannot refer to a step (vars are fixed before the "
                                "first step); write the reference in the step's set")
        target = self.scenario.step(ref.name, f"{where}: {ref.text}: step")
        if target.index == step.index:
            raise ScenarioError(f"{where}: {ref.text} refers to the step itself; a reference reads an earlier "
                                "step's payload as sent")
        if target.index > step.index:
            raise ScenarioError(f"{where}: {ref.text} refers to step {target.name!r}, which comes later; "
                                "a reference reads an earlier step's payload as sent")
        if target.name in self.left_out:
            raise ScenarioError(f"{where}: {ref.text} refers to step {target.name!r}, which --skip leaves out: "
                                f"skip {step.name!r} too, or set the value (--set {step.name}:PATH=VALUE)")
        return lookup(self.payloads[target.name], ref, where)


def lookup(payload: Any, ref: Ref, where: str) -> Any:
    """The value at ``ref.path`` in ``payload``; ``ScenarioError`` naming the first part that is not there."""
    node = payload
    for depth, part in enumerate(ref.path):
        here = catalog.path_text(ref.path[: depth + 1])
        if isinstance(node, list):
            if isinstance(part, str) and not part.isdigit():
                raise ScenarioError(f"{where}: {ref.text}: {catalog.path_text(ref.path[:depth]) or 'the payload'} "
                                    f"is an array, so {part!r} is not in it: use an index ([0])")
            position = int(part)
            if position >= len(node):
                raise ScenarioError(f"{where}: {ref.text}: {here} is past the end of step {ref.name!r}'s "
                                    f"payload (the array has {len(node)} element{'s' if len(node) != 1 else ''})")
            node = node[position]
        elif isinstance(node, dict) and isinstance(part, str):
            if part not in node:
                hint = did_you_mean(part, [k for k in node if isinstance(k, str)], quote=True)
                raise ScenarioError(f"{where}: {ref.text}: step {ref.name!r}'s payload has no {here}{hint}")
            node = node[part]
        else:
            parent = catalog.path_text(ref.path[:depth]) or "the payload"
            kind = _json_kind(node)
            raise ScenarioError(f"{where}: {ref.text}: {parent} of step {ref.name!r} is {kind}, so it has no {here}")
    return node


def _json_kind(value: Any) -> str:
    """What a value is, in JSON's words: an error about a payload speaks JSON, not Python."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "a string" if isinstance(value, str) else type(value).__name__


def _check_strict(payload: Any, where: str) -> None:
    """What is sent and logged must be strict JSON in UTF-8: no inf or nan (``--set x=1e999`` reads as
    infinity), no lone surrogate (``"\\ud800"`` in a data file)."""
    try:
        json.dumps(payload, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except ValueError as exc:  # UnicodeEncodeError is a ValueError too
        reason = "a lone surrogate (\\ud800-\\udfff) is not UTF-8" if isinstance(exc, UnicodeEncodeError) else exc
        found = _first_not_strict(payload)
        if found is not None:
            at, what = found
            reason = f"at {catalog.path_text(at) or '(the payload)'}: {what}"
        raise ScenarioError(f"{where}: the payload is not strict JSON {reason}; nothing was sent"
                            if found is not None else
                            f"{where}: the payload is not strict JSON: {reason}; nothing was sent") from None


def _first_not_strict(payload: Any) -> tuple[tuple[str | int, ...], str] | None:
    """Where ``payload`` first holds what strict JSON in UTF-8 cannot: (path, what it is), or None."""
    pending: deque[tuple[Any, tuple[str | int, ...]]] = deque([(payload, ())])
    while pending:
        value, at = pending.popleft()
        if isinstance(value, float) and not math.isfinite(value):
            return at, f"{value} is a number JSON cannot carry (write it as a string, or a finite number)"
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return at, "a lone surrogate (\\ud800-\\udfff), which UTF-8 cannot carry"
        elif isinstance(value, dict):
            pending.extend((item, (*at, str(key))) for key, item in value.items())
        elif isinstance(value, list):
            pending.extend((item, (*at, index)) for index, item in enumerate(value))
    return None


def _unprefixed(message: str) -> str:
    """A payload error's text without the ``--set ``/``--data: `` it begins with for ``fire``."""
    for prefix in ("--set ", "--data: "):
        if message.startswith(prefix):
            return "set " + message[len(prefix):] if prefix == "--set " else message[len(prefix):]
    return message
