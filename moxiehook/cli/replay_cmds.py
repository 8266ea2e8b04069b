"""``replay``: resend logged deliveries with the endpoint's current auth and headers."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from moxiehook import log as delivery_log
from moxiehook.cli.help import Command, examples
from moxiehook.cli.logs_cmds import (
    NO_LOG,
    EndpointOption,
    EventOption,
    SinceOption,
    bad_line_warner,
    check_event_filter,
    parse_since,
)
from moxiehook.cli.options import JsonOption
from moxiehook.cli.render import escape_control, info, print_json, warn
from moxiehook.cli.state import state
from moxiehook.config import Config, Endpoint, check_url
from moxiehook.errors import DataError, NotFoundError, UsageError
from moxiehook.log import DeliveryRecord
from moxiehook.log import replay as replayselect

if TYPE_CHECKING:
    from moxiehook.send import Job

replay_app = typer.Typer(add_completion=False)


@replay_app.command("replay", cls=Command, epilog=examples(
    "moxiehook replay --failed",
    "moxiehook replay --failed --dry-run",
    "moxiehook replay ID --to http://127.0.0.1:5000/hooks",
))
def replay(
    ctx: typer.Context,
    ids: Annotated[
        list[str] | None,
        typer.Argument(metavar="[ID]...", show_default=False,
                       help="Delivery ids to resend: whole, a unique prefix, or a short form (dlv_…KNTY)."),
    ] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="Failed events not delivered since (by a later replay or forward).")
    ] = False,
    skipped: Annotated[
        bool, typer.Option("--skipped", help="Skipped deliveries not delivered by a later replay.")
    ] = False,
    event: EventOption = None,
    endpoint: EndpointOption = None,
    since: SinceOption = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Resend at most N, oldest first.")] = None,
    to: Annotated[str | None, typer.Option("--to", metavar="URL", help="Send here instead of the logged URL.")] = None,
    include_disabled: Annotated[
        bool, typer.Option("--include-disabled", help="Also send to disabled endpoints.")
    ] = False,
    app: Annotated[
        str | None,
        typer.Option("--app", metavar="MODULE:ATTR",
                     help="Deliver into this WSGI/ASGI app in-process (needed for deliveries made with fire --app), "
                          "at each logged URL's path, instead of over the network.", show_default=False),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the requests; send nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Resend logged deliveries: same event type, body and event id, the endpoint's current auth and headers.

    Give delivery ids, filters, or both (the ids narrowed by the filters).
    --failed and --skipped resend each undelivered event once, even when run again.
    Without a config file, the log listen writes here (./moxiehook-log.jsonl) is read.
    """
    cli_state = state(ctx)
    config_path = cli_state.config_path
    config = cli_state.load_or_defaults()
    if to is not None:
        check_url(to, "--to")
        if app is not None:
            raise UsageError("use either --to (over the network) or --app (in-process), not both")
    target = None
    if app is not None:
        from moxiehook.cli.run_view import load_app_quietly

        target = load_app_quietly(app)
    path = config.log_path(config_path)
    if endpoint is not None:
        delivery_log.check_endpoint_filter(path, endpoint, config.endpoints)
    check_event_filter(config, path, event)
    query = replayselect.ReplayQuery(
        ids=tuple(ids or ()), failed=failed, skipped=skipped, event=event, endpoint=endpoint,
        since=parse_since(since), limit=limit, app=target is not None,
    )
    if not dry_run and path.exists() and _wait_for_turn(ctx, path):
        config = cli_state.load_or_defaults()  # the other replay may have disabled an endpoint meanwhile
    selection = replayselect.select(path, query, bad_line_warner(path))
    _say_left_out(selection)
    records = [entry.record for entry in selection.entries if isinstance(entry.record, DeliveryRecord)]
    if not records:
        info("nothing to replay: no logged delivery matches" if path.exists() else NO_LOG)
        if as_json:
            print_json([] if dry_run else _empty_summary())
        return
    jobs = replay_jobs(config, records, to, in_process=target is not None,  # checks every record first
                       has_config=cli_state.has_config)

    from moxiehook.cli.run_view import deliver_into, live_run, show_preview, show_result
    from moxiehook.send import dispatch

    if dry_run:
        sent = [job for job in jobs if include_disabled or config.endpoints[job.endpoint].enabled]
        _warn_disabled(config, jobs, sent)
        show_preview(dispatch.preview_jobs(config, sent, [job.endpoint for job in sent]), as_json)
        return
    endpoints = {job.endpoint for job in jobs}
    with live_run(len(jobs), concurrency=config.settings.concurrency, include_disabled=include_disabled,
                  keep_records=as_json, endpoints=endpoints) as options, contextlib.ExitStack() as stack:
        if target is not None:  # the same in-process sender as fire --app
            deliver_into(target, options, stack)
        summary = dispatch.run_jobs(config_path, config, jobs, options)
    show_result(summary, as_json)
    raise typer.Exit(summary.exit_code)


def _wait_for_turn(ctx: typer.Context, path: Path) -> bool:
    """Take the log's replay lock until the command ends (selection and sending); True if it had to wait."""
    waited = []

    def wait() -> None:
        waited.append(True)
        info("another replay of this log is running: waiting for it to finish (Ctrl-C to stop)")

    ctx.with_resource(replayselect.exclusive_turn(path, on_wait=wait))
    return bool(waited)


def _say_left_out(selection: replayselect.Selection) -> None:
    """Name what a filter selected but will not resend, so a count that looks short is explained."""
    if selection.left_out_app:
        info(f"left out {selection.left_out_app} in-process deliveries (mode app, made with fire --app): "
             "they never go over the network; add --app MODULE:ATTR to replay them into the app")
    if selection.left_out_relayed:
        info(f"left out {selection.left_out_relayed} relayed copies (listen --forward-to) of deliveries whose "
             "sender's record in this log is replayed instead: one event, one replay")


def replay_jobs(config: Config, records: list[DeliveryRecord], to: str | None,
                in_process: bool = False, has_config: bool = True) -> list[Job]:
    """One replay job per record. Raises, sending nothing, when any of them cannot be replayed.

    ``config`` gains an endpoint without auth for relayed deliveries whose endpoint it lacks
    (for every record's endpoint when there is no config file at all). With ``in_process``
    the jobs are ``app`` deliveries (logged so: a later replay never sends them to the network).
    """
    from moxiehook.receive import relayed_url_problem
    from moxiehook.send import Job

    if to is None and not in_process:
        for record in records:
            # The relay logs only --forward-to + a path; anything else in a forward record's URL
            # came from a sender steering an older relay (or a hand edit): not a place the user named.
            problem = relayed_url_problem(record.url) if record.mode == "forward" else None
            if problem is not None:
                raise DataError(f"delivery {record.id} was relayed to a URL that is not a plain --forward-to path "
                                f"({escape_control(problem)}); nothing was sent (resend it with --to URL)")
    unknown = {record.endpoint for record in records} - config.endpoints.keys()
    # A delivery relayed by `listen --forward-to` without --endpoint is logged under an
    # endpoint ('listen') that no config holds: it is replayed as it came, minus the
    # credentials, which were never logged. Without any config file, every endpoint is such.
    relayed = {name for name in unknown
               if not has_config or all(record.mode == "forward" for record in records if record.endpoint == name)}
    for name in sorted(relayed):
        why = ("there is no config file" if not has_config
               else "its deliveries were relayed by listen --forward-to")
        warn(f"endpoint '{escape_control(name)}' is not in the config ({why}): its deliveries are replayed "
             "without auth or custom headers; relay with `listen --endpoint NAME` to have replay add that "
             "endpoint's credentials")
        config.endpoints[name] = Endpoint(name=name)
    gone = sorted(unknown - relayed)
    if gone:
        names = ", ".join(repr(name) for name in gone)
        raise NotFoundError(
            f"endpoint {names} is no longer in the config; nothing was sent "
            "(add it back, or leave its deliveries out with --endpoint)"
        )
    jobs = []
    for record in records:
        if "body" not in (record.request or {}):
            raise DataError(f"delivery {record.id} has no logged body, so it cannot be replayed; nothing was sent")
        body, text, content_type = delivery_log.body_to_resend(record.request, f"the body of delivery {record.id}")
        jobs.append(Job(
            endpoint=record.endpoint, event=record.event, url=to or record.url, body=body,
            event_id=record.event_id, mode="app" if in_process else "replay", replay_of=record.id, text=text,
            content_type=content_type,
        ))
    return jobs


def _warn_disabled(config: Config, jobs: list[Job], sent: list[Job]) -> None:
    """A dry run names the disabled endpoints whose deliveries a real run would skip."""
    sending = {job.endpoint for job in sent}
    for name in sorted({job.endpoint for job in jobs} - sending):
        reason = escape_control(config.endpoints[name].why_disabled)
        warn(f"endpoint '{name}' is disabled, its deliveries would be skipped ({reason}); "
             "use --include-disabled to send them anyway")


def _empty_summary() -> dict[str, object]:
    """The ``--json`` document of a replay that had nothing to send (the same shape as a run's)."""
    from moxiehook.cli.run_view import summary_json
    from moxiehook.send import RunSummary

    return summary_json(RunSummary())
