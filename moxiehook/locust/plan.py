"""What a ``MoxieUser`` sends, worked out without Locust.

Locust runs a locustfile's users; this module decides, for a user class, what each of its tasks
sends, so the rules can be checked (and tested) without importing Locust and gevent, which
monkey-patch the interpreter:

- ``make_plan``: the user class's ``events``, ``endpoint``, ``vary``, ``seed`` and ``config``
  checked and turned into a ``Plan``: the config found as the CLI finds it (``config`` > the
  ``MOXIEHOOK_CONFIG`` variable > ``./moxiehook.toml``), every event's targets (its mapped URLs
  on the enabled endpoints, or on the one named), each endpoint prepared once by the request
  builder every other way of sending uses (auth, custom headers with ``${VAR}`` expanded and
  checked, the signing key, timeout, TLS setting). Disabled endpoints are skipped, as ``fire``
  skips them; an event that is left with no target is an error before anything is sent.
- ``Stream``: one user's deliveries. Each has a fresh ``webhook-id`` (an ``evt_`` id, as
  ``fire`` makes one per payload) and a body as ``fire`` makes it: the catalog's sample with a
  fresh top-level id per copy, as ``fire --count`` does, or a varied copy, as ``fire --vary``
  does. An event mapped to several URLs is sent to each in turn, one POST per task.
- ``user_seed``: a user's stream is derived from ``seed``, the Locust worker's index and the
  user's number in its process, so a seeded run is reproducible and no two users, on any worker,
  send the same bodies. Without ``seed`` each user draws from the operating system's randomness.
- ``Answer``: moxiehook's answer as Locust's request listeners read one (``status_code``,
  ``text``, ``content``, ``ok``, ``url``, ``json()``, as Locust's own clients give them).
- ``failure``: why an answer is a failure in Locust's stats (anything outside 2xx), in the words
  ``fire`` uses, and whether Moxie would disable the endpoint for it (reported, never acted on:
  Locust measures, ``fire`` disables).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from moxiehook import catalog, ids
from moxiehook.config import Config, Settings, load_config, resolve_config_path
from moxiehook.errors import ConfigError, UsageError
from moxiehook.http import AttemptTimeout, Response, TransportError, tls_context, uses_tls
from moxiehook.log import encode_body
from moxiehook.send import Delivery, PreparedEndpoint, judge_answer, prepare_endpoint

if TYPE_CHECKING:
    import ssl

MODE = "locust"  # what a Delivery made here says of itself


@dataclass(frozen=True)
class Target:
    """One URL an event is sent to, and the prepared endpoint that maps it there."""

    endpoint: PreparedEndpoint
    url: str


@dataclass(frozen=True)
class Plan:
    """A user class's deliveries: events and weights, each event's targets in turn, the options."""

    config_path: Path
    settings: Settings
    events: tuple[str, ...]
    cum_weights: tuple[float, ...]
    targets: dict[str, tuple[Target, ...]]
    vary: bool
    seed: int | None
    skipped: tuple[str, ...] = ()  # "'old' (HTTP 410 Gone from …)": disabled endpoints mapping an event
    endpoints: dict[str, PreparedEndpoint] = field(default_factory=dict)
    # verify_tls setting -> its TLS context, for the settings of https:// targets: loaded once
    # per process, when the plan is made, so a CA bundle that cannot be used is a config error
    tls: dict[bool | str, ssl.SSLContext] = field(default_factory=dict, compare=False, repr=False)
    _copiers: dict[str, Callable[[random.Random], Any]] = field(default_factory=dict, compare=False, repr=False)

    def copier(self, event: str) -> Callable[[random.Random], Any]:
        """``vary``'s copies of ``event``, compiled once per process and shared by every user.

        Compiling costs about 20 ms and 400 KiB per event: once per user, a thousand users
        would hold 400 MB. The compiled pool comes from ``seed`` (the same on every worker);
        which copies a user gets comes from its own stream.
        """
        copier = self._copiers.get(event)
        if copier is None:
            pool_seed = user_seed(self.seed, -1, -1)  # not any user's: -1 is no worker's index
            copier = self._copiers[event] = catalog.varied_copier(
                catalog.sample(event), pool_seed, schema=catalog.schema(event))
        return copier

    @property
    def host(self) -> str:
        """The origin of the first target: what Locust shows as the host (URLs come from the config)."""
        first = next(iter(self.targets.values()))[0].url
        parts = urlsplit(first)
        return f"{parts.scheme}://{parts.netloc}"


def make_plan(events: Any, endpoint: Any = None, vary: Any = False, seed: Any = None,
              config: Any = None) -> Plan:
    """Check a user class's settings and work out what its tasks send.

    Raises ``UsageError`` for a setting of the wrong kind, ``NotFoundError`` for an event
    outside the catalog or an unknown endpoint, ``ConfigError`` for an event with nowhere to go
    or a config that does not load or expand (a missing ``${VAR}``).
    """
    names, weights = _weights(events)
    if endpoint is not None and not isinstance(endpoint, str):
        raise UsageError(f"endpoint must be an endpoint's name (a string), got {endpoint!r}")
    if not isinstance(vary, bool):
        raise UsageError(f"vary must be True or False, got {vary!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise UsageError(f"seed must be a whole number, got {seed!r}")
    if seed is not None and seed.bit_length() > 256:  # a user's seed is derived from its digits
        raise UsageError(f"seed must be a whole number between -2**256 and 2**256, got one of {seed.bit_length()} bits")
    if config is not None and not isinstance(config, str | os.PathLike):
        raise UsageError(f"config must be a path, got {config!r}")
    for name in names:
        catalog.get_event(name)  # the body comes from the catalog: an unknown event has none
    path = resolve_config_path(config)
    loaded = load_config(path)
    chosen = [loaded.endpoint(endpoint)] if endpoint is not None else list(loaded.endpoints.values())
    prepared: dict[str, PreparedEndpoint] = {}
    targets: dict[str, tuple[Target, ...]] = {}
    skipped: dict[str, str] = {}
    for name in names:
        found: list[Target] = []
        for ep in chosen:
            urls = [m.url for m in ep.mappings if m.event == name]
            if not urls:
                continue
            if not ep.enabled:
                skipped[ep.name] = f"{ep.name!r} ({ep.why_disabled})"
                continue
            if ep.name not in prepared:
                prepared[ep.name] = prepare_endpoint(ep, loaded.settings, path)
            found += [Target(prepared[ep.name], url) for url in urls]
        if not found:
            raise ConfigError(_nowhere(name, endpoint, loaded, path))
        targets[name] = tuple(found)
    return Plan(path, loaded.settings, names, tuple(_cumulative(weights)), targets, vary, seed,
                tuple(skipped.values()), prepared, _tls_contexts(targets))


def _tls_contexts(targets: dict[str, tuple[Target, ...]]) -> dict[bool | str, ssl.SSLContext]:
    """The TLS context of every ``verify_tls`` setting an https:// target uses, each loaded once.

    A CA bundle that exists but holds no certificate that can be loaded stops the run before
    anything is sent, naming the endpoint and the file, instead of failing in every user.
    """
    contexts: dict[bool | str, ssl.SSLContext] = {}
    for target in (target for event_targets in targets.values() for target in event_targets):
        verify = target.endpoint.verify
        if not uses_tls(target.url) or verify in contexts:
            continue
        try:
            contexts[verify] = tls_context(verify)
        except ConfigError as exc:
            raise ConfigError(f"verify_tls of endpoint {target.endpoint.name!r}: {exc}") from None
    return contexts


def _weights(events: Any) -> tuple[tuple[str, ...], list[float]]:
    """``events`` as names and weights: a list (each once, equal weights) or a dict of weights."""
    if isinstance(events, str) or not isinstance(events, Sequence | Mapping):
        raise UsageError(f"events must be a list of event types or a dict of weights, got {events!r}")
    pairs = list(events.items()) if isinstance(events, Mapping) else [(name, 1) for name in dict.fromkeys(events)]
    if not pairs:
        raise UsageError("events is empty: name at least one event type, e.g. events = [\"ClientCreate\"]")
    for name, weight in pairs:
        if not isinstance(name, str):
            raise UsageError(f"events: an event type is a string, got {name!r}")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:  # NaN too
            raise UsageError(f"events: the weight of {name} must be a positive number, got {weight!r}")
    try:
        weights = [float(weight) for _, weight in pairs]  # an int past the largest float does not convert
    except OverflowError:
        weights = [math.inf]
    if not math.isfinite(_cumulative(weights)[-1]):  # infinite, or each one finite but not the total drawn from
        raise UsageError(f"events: the weights add up to more than the largest number ({sys.float_info.max:g}), "
                         "or one is infinite: use smaller ones (only their ratios matter)")
    return tuple(name for name, _ in pairs), weights


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def _nowhere(event: str, endpoint: str | None, config: Config, path: Path) -> str:
    where = f"endpoint {endpoint!r}" if endpoint is not None else "any endpoint"
    disabled = [ep for ep in config.endpoints.values()
                if not ep.enabled and any(m.event == event for m in ep.mappings)
                and (endpoint is None or ep.name == endpoint)]
    if disabled:
        ep = disabled[0]
        return (f"{event} is mapped only on disabled endpoint {ep.name!r} ({ep.why_disabled}) in {path}; "
                f"fix the server, then: moxiehook endpoint enable {ep.name}")
    return f"{event} is not mapped on {where} in {path} (add one: moxiehook map add ENDPOINT {event} URL)"


def user_seed(seed: int | None, worker: int, user: int) -> int:
    """The seed of one user's stream: from ``seed``, the worker's index and the user's number.

    Different for every (worker, user) pair, the same on every run with the same ``seed``.
    Without ``seed``, fresh randomness for every user.
    """
    if seed is None:
        return int.from_bytes(os.urandom(8), "big")
    digest = hashlib.sha256(f"moxiehook-locust/{seed}/{worker}/{user}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class Stream:
    """One user's deliveries, one per ``next_delivery()``: event by weight, body, target in turn."""

    def __init__(self, plan: Plan, seed: int) -> None:
        self.plan = plan
        self.rng = random.Random(seed)
        self._bodies: dict[str, Iterator[tuple[Any, bytes]]] = {}
        self._turns: dict[str, int] = {}

    def next_event(self) -> str:
        events = self.plan.events
        if len(events) == 1:
            return events[0]
        return self.rng.choices(events, cum_weights=self.plan.cum_weights)[0]

    def next_delivery(self, event: str | None = None) -> tuple[Target, Delivery]:
        """The next delivery of ``event`` (by default one drawn by weight) and where it goes."""
        if event is None:
            event = self.next_event()
        targets = self.plan.targets.get(event)
        if targets is None:
            raise UsageError(f"{event} is not one of this user's events: {', '.join(self.plan.events)}")
        turn = self._turns.get(event, 0)
        self._turns[event] = turn + 1
        target = targets[turn % len(targets)]
        body, body_bytes = next(self._body_stream(event))
        return target, Delivery(event, target.url, body, body_bytes, ids.event_id(), MODE)

    def _body_stream(self, event: str) -> Iterator[tuple[Any, bytes]]:
        """Bodies of ``event`` with their bytes as sent (compact JSON, ``encode_body``)."""
        stream = self._bodies.get(event)
        if stream is None:
            if self.plan.vary:
                # as `fire --vary`: schema-valid varied copies, drawn with this user's stream
                stream = _varied_copies(self.plan.copier(event), self.rng)
            else:
                sample = catalog.sample(event)
                # as `fire --count`: a fresh top-level id per copy
                if self.plan.seed is None:
                    copies = catalog.copies(sample, sys.maxsize)
                else:
                    copies = _seeded_copies(sample, self.rng)
                stream = _encoded_copies(sample, copies)
            self._bodies[event] = stream
        return stream


def _varied_copies(copier: Callable[[random.Random], Any], rng: random.Random) -> Iterator[tuple[Any, bytes]]:
    while True:
        body = copier(rng)
        yield body, encode_body(body)


_ID_SLOT = "moxiehook-locust-id-slot"


def _encoded_copies(sample: Any, copies: Iterator[Any]) -> Iterator[tuple[Any, bytes]]:
    """``copies`` of ``sample`` (a fresh top-level id each) with their bytes, encoded once.

    Copies differ from the sample only in their ``id``, so the sample is encoded once with a slot
    for it, and each copy's bytes are the encoded id spliced into the slot: the bytes
    ``encode_body`` gives the copy (tests check it for every event), for a fraction of the cost
    (JSON-encoding a client is about 25 µs, a sixth of what Locust spends on a request).
    """
    template = encode_body({**sample, "id": _ID_SLOT}) if isinstance(sample, dict) and "id" in sample else b""
    slot = encode_body(_ID_SLOT)
    if template.count(slot) != 1:
        for body in copies:
            yield body, encode_body(body)
        return
    head, tail = template.split(slot)
    for body in copies:
        yield body, head + encode_body(body["id"]) + tail


def _seeded_copies(sample: dict[str, Any], rng: random.Random) -> Iterator[Any]:
    """``fire --count``'s copies (the sample, a fresh top-level id each), the ids drawn from ``rng``.

    The catalog's ids are 24 hex digits (Moxie's object ids); each copy gets another 24 hex
    digits from the user's seeded stream, so a seeded run sends the same bodies again.
    """
    old = sample.get("id")
    if not (isinstance(old, str) and len(old) == 24 and all(c in "0123456789abcdef" for c in old)):
        yield from catalog.copies(sample, sys.maxsize)
        return
    while True:
        copy = dict(sample)
        copy["id"] = f"{rng.getrandbits(96):024x}"
        yield copy


@dataclass
class Answer(Response):
    """moxiehook's answer to one delivery, readable as Locust's clients' responses are read.

    Locust's request listeners (its own per-request CSV logger, the listener of its docs, plugins)
    read ``response.status_code``, ``.text``, ``.content``, ``.ok`` or ``.url``, which Locust's
    clients give; moxiehook's names (``status``, ``body``, ``headers``, ``raw_headers``,
    ``unfinished``) stay. ``text`` is the body as read (at most 64 KiB), decoded with the
    charset the answer names (UTF-8 if none or unknown), bad bytes replaced.
    """

    url: str = ""  # the URL the delivery was posted to (no redirect is followed)

    @classmethod
    def of(cls, response: Response, url: str) -> Answer:
        return cls(response.status, response.headers, response.raw_headers, response.body, response.unfinished, url)

    @classmethod
    def none(cls, url: str) -> Answer:
        """No answer came (refused, reset, timed out): status 0 and no body, as Locust's clients report it."""
        return cls(0, {}, [], b"", None, url)

    @property
    def status_code(self) -> int:
        return self.status

    @property
    def content(self) -> bytes:
        return self.body

    @property
    def ok(self) -> bool:
        """A 2xx: what makes a delivery a success (Locust's clients say ``ok`` below 400)."""
        return 200 <= self.status <= 299

    @property
    def text(self) -> str:
        charset = _charset(self.headers.get("content-type", ""))
        try:
            return self.body.decode(charset, "replace")
        except (LookupError, ValueError):  # no such codec, not a text one (base64, zlib), or no "replace" (idna)
            return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


def _charset(content_type: str) -> str:
    """The charset a ``Content-Type`` names (the receiver's choice: it may name no text codec), else UTF-8."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or "utf-8"
    return "utf-8"


def failure(status: int, target: Target, disable_on: Sequence[int] | frozenset[int]) -> str | None:
    """Why an answer fails a delivery, or None for a 2xx; says when Moxie would disable the endpoint.

    Locust groups failures by their text, so the text holds nothing the receiver chooses per
    answer (a ``Location`` that differs each time would make one row per request, without end).
    """
    answer = judge_answer(status, {}, "")
    if answer.error is None:
        return None
    if status in disable_on:  # worded as `fire` words the reason it disables an endpoint
        return (f"{answer.error} from POST {target.url}: Moxie would disable endpoint {target.endpoint.name!r} "
                "(reported only; the config is not changed)")
    return answer.error


def no_answer(error: TransportError, timeout: float) -> str:
    """A request that got no answer (no status line and headers), in ``fire``'s words.

    As for ``failure``, the text holds nothing the receiver chooses per answer: what the error
    is (``connection error: not an HTTP answer``), not the bytes that came.
    """
    if isinstance(error, AttemptTimeout):
        return f"timeout: no answer within {timeout:g} s"
    return f"connection error: {error.kind}"
