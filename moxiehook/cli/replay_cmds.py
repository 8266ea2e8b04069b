"""``replay``: resend logged deliveries with the endpoint's current auth and headers (SPEC §4)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

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
from moxiehook.log import query as logquery

if TYPE_CHECKING:
    from moxiehook.send import Job

replay_app = typer.Typer(add_completion=False)


@replay_app.command("replay")
def replay(
    ctx: typer.Context,
    ids: Annotated[
        Optional[list[str]], typer.Argument(metavar="[ID]...", help="Delivery ids to resend: whole, a unique prefix, or a short form (dlv_…KNTY).", show_default=False)
    ] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Failed deliveries not delivered by a later replay.")] = False,
    skipped: Annotated[
        bool, typer.Option("--skipped", help="Skipped deliveries not delivered by a later replay.")
    ] = False,
    event: EventOption = None,
    endpoint: EndpointOption = None,
    since: SinceOption = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Resend at most N, oldest first.")] = None,
    to: Annotated[Optional[str], typer.Option("--to", metavar="URL", help="Send here instead of the logged URL.")] = None,
    include_disabled: Annotated[
        bool, typer.Option("--include-disabled", help="Also send to disabled endpoints.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the requests; send nothing.")] = False,
    app_spec: Annotated[str | None, typer.Option(
        "--app", metavar="MODULE:ATTR", show_default=False,
        help="Deliver into this WSGI/ASGI app in-process, at each logged URL's path (needed to replay what "
             "was delivered in-process).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Resend logged deliveries: same event type, body and event id, the endpoint's current auth and headers.

    Give delivery ids, filters, or both (the ids narrowed by the filters).
    --failed and --skipped resend each undelivered delivery once, even when run again.
    """
    cli_state = state(ctx)
    config_path = cli_state.config_path
    config = cli_state.load()
    if to is not None:
        check_url(to, "--to")
    path = config.log_path(config_path)
    if endpoint is not None:
        logquery.check_endpoint_filter(path, endpoint, config.endpoints)
    check_event_filter(config, path, event)
    query = replayselect.ReplayQuery(
        ids=tuple(ids or ()), failed=failed, skipped=skipped, event=event, endpoint=endpoint,
        since=parse_since(since), limit=limit,
    )
    if not dry_run and path.exists() and _wait_for_turn(ctx, path):
        config = cli_state.load()  # the other replay may have disabled an endpoint meanwhile
    records = [entry.record for entry in replayselect.select_for_replay(path, query, bad_line_warner(path))
               if isinstance(entry.record, DeliveryRecord)]  # what it selects are deliveries
    if app_spec is None:
        records = _leave_out_in_process(records, named=bool(ids))
    if not records:
        info("nothing to replay: no logged delivery matches" if path.exists() else NO_LOG)
        if as_json:
            print_json([] if dry_run else _empty_summary())
        return
    jobs = replay_jobs(config, records, to, in_process=app_spec is not None)  # checks each before sending
    target = None
    if app_spec is not None and not dry_run:
        import contextlib
        import sys

        from moxiehook.testing import load_app

        with contextlib.redirect_stdout(sys.stderr):  # what the app prints as it is imported
            target = load_app(app_spec)

    from moxiehook.cli.run_view import live_run, show_preview, show_result
    from moxiehook.send import dispatch

    if dry_run:
        sent = [job for job in jobs if include_disabled or config.endpoints[job.endpoint].enabled]
        _warn_disabled(config, jobs, sent)
        show_preview(dispatch.preview_jobs(config, sent, [job.endpoint for job in sent]), as_json)
        return
    endpoints = {job.endpoint for job in jobs}
    with live_run(len(jobs), concurrency=config.settings.concurrency, include_disabled=include_disabled,
                  keep_records=as_json, endpoints=endpoints) as options:
        if target is None:
            summary = dispatch.run_jobs(config_path, config, jobs, options)
        else:
            import contextlib
            import sys

            from moxiehook.testing import AppSender

            with contextlib.closing(AppSender(target)) as sender, contextlib.redirect_stdout(sys.stderr):
                options.sender = sender
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


IN_PROCESS = "app"  # the mode of a delivery made into an app in-process (fire/scenario run --app)


def _leave_out_in_process(records: list[DeliveryRecord], named: bool) -> list[DeliveryRecord]:
    """Without ``--app``, what was delivered in-process is never sent to its URL, which never saw it.

    Named by id: exit 2 naming ``--app``. Picked by a filter (``--failed``): left out, saying how many.
    """
    in_process = [record for record in records if record.mode == IN_PROCESS]
    if not in_process:
        return records
    if named:
        raise UsageError(f"delivery {in_process[0].id} was delivered in-process (--app), so its URL never saw it: "
                         "replay it into the app with --app MODULE:ATTR; nothing was sent")
    info(f"left out {len(in_process)} delivery(ies) made in-process (--app): replay them with --app MODULE:ATTR")
    return [record for record in records if record.mode != IN_PROCESS]


def replay_jobs(config: Config, records: list[DeliveryRecord], to: str | None,
                in_process: bool = False) -> list[Job]:
    """One replay job per record. Raises, sending nothing, when any of them cannot be replayed.

    ``config`` gains an endpoint without auth for relayed deliveries whose endpoint it lacks.
    ``in_process``: the jobs go into an app (``--app``); their records say so (mode ``app``), so a
    later replay keeps them in-process too.
    """
    from moxiehook.send import Job

    unknown = {record.endpoint for record in records} - config.endpoints.keys()
    # A delivery relayed by `listen --forward-to` without --endpoint is logged under an
    # endpoint ('listen') that no config holds: it is replayed as it came, minus the
    # credentials, which were never logged (SPEC §6).
    relayed = {name for name in unknown
               if all(record.mode == "forward" for record in records if record.endpoint == name)}
    for name in sorted(relayed):
        warn(f"endpoint '{name}' is not in the config (its deliveries were relayed by listen --forward-to): "
             "they are replayed without auth or custom headers; relay with "
             "`listen --endpoint NAME` to have replay add that endpoint's credentials")
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
        jobs.append(Job(
            endpoint=record.endpoint, event=record.event, url=to or record.url, body=record.request["body"],
            event_id=record.event_id, mode=IN_PROCESS if in_process else "replay", replay_of=record.id,
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
