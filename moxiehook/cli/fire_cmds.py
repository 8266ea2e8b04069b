"""``fire`` and ``test``: send events to the mapped URLs.

The delivery engine (``moxiehook.send.dispatch``: the sending threads, the transport, the
log writer) is imported inside the commands, so that other commands never pay for loading it.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from moxiehook import catalog
from moxiehook.cli.help import Command, examples
from moxiehook.cli.options import JsonOption
from moxiehook.cli.render import command, info, warn
from moxiehook.cli.run_view import (
    already_disabled_warning,
    deliver_into,
    live_load_line,
    live_run,
    load_app_quietly,
    show_load,
    show_preview,
    show_result,
)
from moxiehook.cli.state import state
from moxiehook.config import Config, Endpoint, check_event_name, enable_endpoint
from moxiehook.errors import NothingSentError, UsageError
from moxiehook.log import check_nesting

if TYPE_CHECKING:
    pass

fire_app = typer.Typer(add_completion=False)

LOAD_WAIT_S = 0.25  # a load run's default threads: enough for answers taking this long at its rate …
LOAD_MAX_THREADS = 64  # … up to this many (more threads queue for the interpreter)
test_app = typer.Typer(add_completion=False)

DataOption = Annotated[
    str | None,
    typer.Option("--data", metavar="PATH", show_default=False,
                 help="The payload: a JSON file, or '-' for stdin (default: the event's sample)."),
]


def event_payload(event: str, data: str | None, assignments: Sequence[catalog.Assignment] = ()) -> Any:
    """The payload of ``event``: ``--data`` when given, else the catalog's sample, with the ``--set``s.

    Refused before anything is sent when it nests deeper than the log can read back.
    """
    if data is not None:
        if data == "-" and sys.stdin.isatty():  # else it looks hung: say what it waits for, as cat-less tools do
            info("reading the payload from stdin (Ctrl-D to end)…")
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


@fire_app.command("fire", cls=Command, epilog=examples(
    "moxiehook fire ClientCreate",
    "moxiehook fire ClientCreate --dry-run",
    "moxiehook fire ClientCreate --data payload.json --endpoint crm",
    "moxiehook fire ClientCreate --count 100 --vary",
    "moxiehook fire ClientCreate --rate 50 --duration 30s --max-p99 250",
))
def fire(
    ctx: typer.Context,
    event: Annotated[str, typer.Argument(metavar="EVENT", help="Event type, e.g. ClientCreate.",
                                         show_default=False)],
    data: DataOption = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a field: KEY=VALUE; KEY a dotted path, [N] or .N for an array element "
                                   "(contacts[0].email); VALUE parsed as JSON, else a string (repeatable).",
                     show_default=False),
    ] = None,
    endpoint: Annotated[
        list[str] | None,
        typer.Option("--endpoint", help="Only this endpoint (repeatable; default: all).", show_default=False),
    ] = None,
    count: Annotated[int | None, typer.Option("--count", help="Send N copies, each with a fresh id (default 1).",
                                                 show_default=False)] = None,
    vary: Annotated[bool, typer.Option(
        "--vary", help="Make each copy a different payload valid under the event's schema (see: events schema).",
    )] = False,
    seed: Annotated[int | None, typer.Option(
        "--seed", help="With --vary: the seed; the same seed gives the same bodies.", show_default=False,
    )] = None,
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", help="Deliveries in flight at once (default: settings.concurrency).",
                     show_default=False),
    ] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the requests (secrets masked); send nothing.")] = False,
    app: Annotated[
        str | None,
        typer.Option("--app", metavar="MODULE:ATTR",
                     help="Deliver into this WSGI/ASGI app in-process (imported from the current folder), "
                          "at each mapped URL's path, instead of over the network.", show_default=False),
    ] = None,
    rate: Annotated[float | None, typer.Option(
        "--rate", metavar="R", help="A load run: start R deliveries per second (an open model), for --duration; "
                                    "ends with a latency report.", show_default=False)] = None,
    duration: Annotated[str | None, typer.Option(
        "--duration", metavar="T", help="With --rate: how long, e.g. 30s, 2m (a bare number is seconds).",
        show_default=False)] = None,
    max_p99: Annotated[float | None, typer.Option(
        "--max-p99", metavar="MS", help="With --rate: fail the run (exit 1) if the p99 latency is above MS.",
        show_default=False)] = None,
    max_error_rate: Annotated[float | None, typer.Option(
        "--max-error-rate", metavar="FRACTION", show_default=False,
        help="With --rate: accept failed deliveries up to this share (0.01: 1 %); more fail the run.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Deliver EVENT to every mapping of it on enabled endpoints (or only --endpoint ones)."""
    _check_at_least_one(count, "--count")
    _check_at_least_one(concurrency, "--concurrency")
    load_count = _load_count(rate, duration, count, dry_run)
    limits = _load_limits(load_count, max_p99, max_error_rate)
    check_event_name(event)  # it travels in X-Event-Type: no CR/LF/NUL, even with --data
    if seed is not None and not vary:
        raise UsageError("--seed is for --vary: add --vary, or drop --seed")
    # A malformed --set is a usage error before anything is read.
    assignments = [catalog.parse_assignment(text) for text in set_ or []]
    target = None
    if app is not None:
        target = load_app_quietly(app)
    config_path = state(ctx).config_path
    config = state(ctx).load()
    catalog.check_not_a_near_miss(event, config.mapped_events())  # a typo: exit 2, before looking for mappings
    # A load run takes copies as --count does, as many as its schedule starts (made as they are sent).
    copies = fire_copies(event, data, assignments, load_count or count or 1, vary, seed)

    from moxiehook.send import dispatch

    plan = dispatch.plan_fire(config, event, endpoint)
    if not plan:
        where = f" on endpoint(s) {', '.join(endpoint)}" if endpoint else ""
        raise NothingSentError(f"no mapping for {event}{where} (see: {command('map list')})")
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
    # In-process deliveries are logged as "app" (with the mapping's URL as it would have been), load runs
    # included: a "fire" or "load" record is replayed over the network, and these never went there.
    mode = "app" if target is not None else "load" if load_count is not None else "fire"
    if load_count is not None:
        _fire_load(config_path, config, dispatch.fire_jobs(plan, event, copies, mode=mode), rate or 0.0,
                   load_count, concurrency, names, target, as_json, limits)
    with live_run((count or 1) * len(plan), concurrency=concurrency or config.settings.concurrency,
                  keep_records=as_json, endpoints=names) as options, contextlib.ExitStack() as stack:
        deliver_into(target, options, stack)
        summary = dispatch.run_jobs(config_path, config, dispatch.fire_jobs(plan, event, copies, mode), options)
    show_result(summary, as_json)
    raise typer.Exit(summary.exit_code)




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
    from moxiehook.log import parse_duration
    from moxiehook.send import check_load

    return check_load(rate, parse_duration(duration))


def _load_limits(load_count: int | None, max_p99: float | None, max_error_rate: float | None) -> Any:
    """``--max-p99``/``--max-error-rate`` as ``LoadLimits`` (they judge a load run, so need one)."""
    if max_p99 is None and max_error_rate is None:
        return None
    if load_count is None:
        given = "--max-p99" if max_p99 is not None else "--max-error-rate"
        raise UsageError(f"{given} judges a load run: add --rate R --duration T")
    from moxiehook.send import LoadLimits

    return LoadLimits(max_p99_ms=max_p99, max_error_rate=max_error_rate)


def _fire_load(config_path: Path, config: Config, jobs: Iterable[Any], rate: float, count: int,
               concurrency: int | None, endpoints: list[str], target: Any, as_json: bool,
               limits: Any = None) -> None:
    """Run a load run, show its report and what failed it; exits 1 when it did not do what was asked."""
    from moxiehook.send import LoadRun, judge_load, load_exit_code, run_load

    # Enough threads for the rate while answers take up to LOAD_WAIT_S, unless --concurrency says.
    slots = concurrency or max(config.settings.concurrency, min(LOAD_MAX_THREADS, math.ceil(rate * LOAD_WAIT_S)))
    run = LoadRun(rate, count, slots)
    with live_run(None, concurrency=slots, keep_records=as_json, endpoints=endpoints) as options, \
            contextlib.ExitStack() as stack:
        deliver_into(target, options, stack)
        stack.enter_context(live_load_line(run))
        summary = run_load(config_path, config, jobs, run, options)
    report = run.report()
    report.problems = [] if summary.interrupted else judge_load(report, summary.failed, limits)
    if not as_json:
        show_load(report)
    show_result(summary, as_json, {"load": report.to_dict()})
    if report.problems:
        info("✗ the load run failed: " + "; ".join(report.problems))
    raise typer.Exit(load_exit_code(summary, report.problems, limits))


def _warn_plain_http(endpoints: Iterable[Endpoint]) -> None:
    """The advice warning for credentials about to travel over plain http:// (once per endpoint)."""
    from moxiehook.config import plain_http_warnings

    for endpoint in {e.name: e for e in endpoints}.values():
        for message in plain_http_warnings(endpoint):
            warn(message)


@test_app.command("test", cls=Command, epilog=examples(
    "moxiehook test crm",
    "moxiehook test crm --event ClientCreate --enable",
))
def test(
    ctx: typer.Context,
    endpoint: Annotated[str, typer.Argument(metavar="ENDPOINT", help="The endpoint to test.", show_default=False)],
    event: Annotated[
        str | None, typer.Option("--event", help="Only this event (default: every event mapped).",
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
        what = f"no mapping for {event}" if event else "no mappings"
        add = command(f"map add {endpoint} {event or 'EVENT'} URL")
        raise NothingSentError(f"endpoint {endpoint!r} has {what} (add one: {add})")

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
