"""``fire`` and ``test``: send events to the mapped URLs.

The delivery engine (``moxiehook.send.dispatch``, which imports httpx) is imported
inside the commands, so that other commands never pay for loading it.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from moxiehook import catalog
from moxiehook.cli.options import JsonOption
from moxiehook.cli.render import info, warn
from moxiehook.cli.run_view import (
    already_disabled_warning,
    live_load_line,
    live_run,
    show_load,
    show_preview,
    show_result,
)
from moxiehook.cli.state import state
from moxiehook.config import Config, Endpoint, check_event_name, enable_endpoint
from moxiehook.errors import NothingSentError, UsageError
from moxiehook.log import check_nesting
from moxiehook.log.replay import APP_MODE

if TYPE_CHECKING:
    from moxiehook.send import RunOptions

fire_app = typer.Typer(add_completion=False)

LOAD_WAIT_S = 0.25  # a load run's default threads: enough for answers taking this long at its rate …
LOAD_MAX_THREADS = 64  # … up to this many (more threads queue for the interpreter)
test_app = typer.Typer(add_completion=False)

DataOption = Annotated[
    Optional[str],
    typer.Option("--data", help="The payload: a JSON file, or '-' for stdin (default: the event's sample).",
                 show_default=False),
]


def event_payload(event: str, data: str | None, assignments: Sequence[catalog.Assignment] = ()) -> Any:
    """The payload of ``event``: ``--data`` when given, else the catalog's sample, with the ``--set``s.

    Refused before anything is sent when it nests deeper than the log can read back.
    """
    if data is not None:
        body = catalog.read_data(data)
    elif not catalog.is_known(event):
        raise UsageError(
            f"event {event!r} is not in the catalog, so it has no sample: pass --data PATH (or --data - for stdin)"
        )
    else:
        body = catalog.sample(event)
    if assignments:
        body = catalog.apply_overrides(body, assignments)
    check_nesting(body)
    return body


def fire_copies(event: str, data: str | None, assignments: Sequence[catalog.Assignment], count: int,
                vary: bool, seed: int | None) -> Iterator[Any]:
    """The ``count`` payloads of a run, made as they are sent.

    Without ``--vary``: the payload with the ``--set`` values, a fresh id per copy. With it:
    varied copies (of the catalog sample, under its schema; or of a ``--data`` payload, by its
    own shape) with the ``--set`` values on each. The first copy is made here, so a ``--set``
    path that fits no copy is an error before anything is sent.
    """
    if not vary:
        return catalog.copies(event_payload(event, data, assignments), count)
    if seed is None:
        seed = catalog.new_seed()
        info(f"varied payloads: seed {seed} (the same bodies again: --seed {seed})")
    schema = catalog.schema(event) if data is None and catalog.is_known(event) else None
    stream = catalog.varied(event_payload(event, data), seed, assignments, schema=schema)
    first = next(stream)
    check_nesting(first)  # a --set value may nest deeper than the payload
    return itertools.chain([first], itertools.islice(stream, count - 1))


def _check_at_least_one(value: int | None, option: str) -> None:
    if value is not None and value < 1:
        raise UsageError(f"{option} must be at least 1, got {value}")


@fire_app.command("fire")
def fire(
    ctx: typer.Context,
    event: Annotated[str, typer.Argument(help="Event type, e.g. ClientCreate.", show_default=False)],
    data: DataOption = None,
    set_: Annotated[
        Optional[list[str]],
        typer.Option("--set", help="Override a field: KEY=VALUE; KEY a dotted path, [N] or .N for an array element "
                                   "(contacts[0].email); VALUE parsed as JSON, else a string (repeatable).",
                     show_default=False),
    ] = None,
    endpoint: Annotated[
        Optional[list[str]],
        typer.Option("--endpoint", help="Only this endpoint (repeatable; default: all).", show_default=False),
    ] = None,
    count: Annotated[Optional[int], typer.Option("--count", help="Send N copies, each with a fresh id (default 1).",
                                                 show_default=False)] = None,
    vary: Annotated[bool, typer.Option(
        "--vary", help="Make each copy a different payload valid under the event's schema (see: events schema).",
    )] = False,
    seed: Annotated[Optional[int], typer.Option(
        "--seed", help="With --vary: the seed; the same seed gives the same bodies.", show_default=False,
    )] = None,
    concurrency: Annotated[
        Optional[int],
        typer.Option("--concurrency", help="Deliveries in flight at once (default: settings.concurrency).",
                     show_default=False),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the requests (secrets masked); send nothing.")] = False,
    app: Annotated[
        Optional[str],
        typer.Option("--app", metavar="MODULE:ATTR",
                     help="Deliver into this WSGI/ASGI app in-process (imported from the current folder), "
                          "at each mapped URL's path, instead of over the network.", show_default=False),
    ] = None,
    rate: Annotated[Optional[float], typer.Option(
        "--rate", metavar="R", help="A load run: start R deliveries per second (an open model), for --duration; "
                                    "ends with a latency report.", show_default=False)] = None,
    duration: Annotated[Optional[str], typer.Option(
        "--duration", metavar="T", help="With --rate: how long, e.g. 30s, 2m (a bare number is seconds).",
        show_default=False)] = None,
    as_json: JsonOption = False,
) -> None:
    """Deliver EVENT to every mapping of it on enabled endpoints (or only --endpoint ones)."""
    _check_at_least_one(count, "--count")
    _check_at_least_one(concurrency, "--concurrency")
    load_count = _load_count(rate, duration, count, dry_run)
    check_event_name(event)  # it travels in X-Event-Type: no CR/LF/NUL, even with --data
    if seed is not None and not vary:
        raise UsageError("--seed is for --vary: add --vary, or drop --seed")
    # A malformed --set is a usage error before anything is read.
    assignments = [catalog.parse_assignment(text) for text in set_ or []]
    target = None
    if app is not None:
        from moxiehook.testing import load_app

        target = load_app(app)
    config_path = state(ctx).config_path
    config = state(ctx).load()
    catalog.check_not_a_near_miss(event, config.mapped_events())  # a typo: exit 2, before looking for mappings
    # A load run takes copies as --count does, as many as its schedule starts (made as they are sent).
    copies = fire_copies(event, data, assignments, load_count or count or 1, vary, seed)

    from moxiehook.send import dispatch

    plan = dispatch.plan_fire(config, event, endpoint)
    if not plan:
        where = f" on endpoint(s) {', '.join(endpoint)}" if endpoint else ""
        raise NothingSentError(f"no mapping for {event}{where} (see: moxiehook map list)")
    if target is None:  # in-process, credentials never travel
        _warn_plain_http(e for e, _ in plan)
    if dry_run:
        live = [(e, m) for e, m in plan if e.enabled]
        for off in {e.name: e for e, _ in plan if not e.enabled}.values():
            info(already_disabled_warning(off.name, off.why_disabled))
        if not live:
            raise NothingSentError(f"nothing would be sent: every endpoint mapping {event} is disabled")
        names = [e.name for e, _ in live]
        show_preview(dispatch.preview_jobs(config, dispatch.fire_jobs(live, event, copies), names), as_json)
        return
    names = list(dict.fromkeys(e.name for e, _ in plan))
    # Deliveries made in-process are logged as such: their URL never saw them, and replay never
    # sends them there (only into an app again, with --app).
    in_process = APP_MODE if target is not None else ""
    if load_count is not None:
        load_jobs = dispatch.fire_jobs(plan, event, copies, mode=in_process or "load")
        _fire_load(config_path, config, load_jobs, rate or 0.0,
                   load_count, concurrency, names, target, as_json)
    with live_run((count or 1) * len(plan), concurrency=concurrency or config.settings.concurrency,
                  keep_records=as_json, endpoints=names) as options, contextlib.ExitStack() as stack:
        _deliver_into(target, options, stack)
        jobs = dispatch.fire_jobs(plan, event, copies, mode=in_process or "fire")
        summary = dispatch.run_jobs(config_path, config, jobs, options)
    show_result(summary, as_json)
    raise typer.Exit(summary.exit_code)


def _deliver_into(app: Any, options: RunOptions, stack: contextlib.ExitStack) -> None:
    """``--app``: the run's requests go into ``app`` in-process; its sender is closed with ``stack``."""
    if app is not None:
        from moxiehook.testing import AppSender

        options.sender = stack.enter_context(contextlib.closing(AppSender(app)))


def _load_count(rate: float | None, duration: str | None, count: int | None, dry_run: bool) -> int | None:
    """The deliveries of a load run (``--rate``/``--duration``), or None for an ordinary run."""
    if rate is None and duration is None:
        return None
    if rate is None or duration is None:
        raise UsageError("--rate and --duration go together: e.g. --rate 50 --duration 30s")
    if count is not None:
        raise UsageError("--count is for a fixed number of copies; a load run sends --rate x --duration of them")
    if dry_run:
        raise UsageError("--dry-run shows the requests without sending: drop --rate/--duration to see them")
    from moxiehook.log import query as logquery
    from moxiehook.send import check_load

    return check_load(rate, logquery.parse_duration(duration))


def _fire_load(config_path: Path, config: Config, jobs: Iterable[Any], rate: float, count: int,
               concurrency: int | None, endpoints: list[str], target: Any, as_json: bool) -> None:
    """Run a load run and show its report; exits with the run's code (SPEC §7)."""
    from moxiehook.send import LoadRun, run_load

    # Enough threads for the rate while answers take up to LOAD_WAIT_S, unless --concurrency says.
    slots = concurrency or max(config.settings.concurrency, min(LOAD_MAX_THREADS, math.ceil(rate * LOAD_WAIT_S)))
    run = LoadRun(rate, count, slots)
    with live_run(None, concurrency=slots, keep_records=as_json, endpoints=endpoints) as options, \
            contextlib.ExitStack() as stack:
        _deliver_into(target, options, stack)
        stack.enter_context(live_load_line(run))
        summary = run_load(config_path, config, jobs, run, options)
    report = run.report()
    if not as_json:
        show_load(report)
    show_result(summary, as_json, {"load": report.to_dict()})
    raise typer.Exit(summary.exit_code)


def _warn_plain_http(endpoints: Iterable[Endpoint]) -> None:
    """The advice warning for credentials about to travel over plain http:// (once per endpoint)."""
    from moxiehook.config import plain_http_warnings

    for endpoint in {e.name: e for e in endpoints}.values():
        for message in plain_http_warnings(endpoint):
            warn(message)


@test_app.command("test")
def test(
    ctx: typer.Context,
    endpoint: Annotated[str, typer.Argument(help="The endpoint to test.", show_default=False)],
    event: Annotated[
        Optional[str], typer.Option("--event", help="Only this event (default: every event mapped).",
                                    show_default=False),
    ] = None,
    data: DataOption = None,
    enable: Annotated[
        bool, typer.Option("--enable", help="Re-enable the endpoint when every delivery succeeds.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Send a sample of each event mapped on ENDPOINT, even if it is disabled."""
    config_path = state(ctx).config_path
    config = state(ctx).load()
    target = config.endpoint(endpoint)
    if event is not None:
        catalog.check_not_a_near_miss(event, config.mapped_events())
    mappings = [m for m in target.mappings if event is None or m.event == event]
    if not mappings:
        what = f"a mapping for {event}" if event else "any mapping"
        raise NothingSentError(f"endpoint {endpoint!r} has no {what} (add one: moxiehook map add)")

    from moxiehook import ids
    from moxiehook.send import dispatch

    events = list(dict.fromkeys(m.event for m in mappings))
    bodies = {name: event_payload(name, data) for name in events}
    event_ids = {name: ids.event_id() for name in events}
    jobs = [dispatch.Job(endpoint, m.event, m.url, bodies[m.event], event_ids[m.event], mode="test")
            for m in mappings]
    with live_run(len(jobs), concurrency=config.settings.concurrency, include_disabled=True,
                  keep_records=as_json, endpoints=[endpoint]) as options:
        summary = dispatch.run_jobs(config_path, config, jobs, options)
    if enable:
        if summary.delivered == len(jobs):
            if enable_endpoint(config_path, endpoint).changed:
                info(f"endpoint '{endpoint}' enabled")
        else:
            info(f"endpoint '{endpoint}' not re-enabled: not every delivery succeeded")
    show_result(summary, as_json)
    raise typer.Exit(summary.exit_code)
