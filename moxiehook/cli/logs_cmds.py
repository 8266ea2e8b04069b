"""``logs``, ``logs show``, ``logs prune``: read the delivery log, follow it, drop old records."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from moxiehook import catalog
from moxiehook import log as delivery_log
from moxiehook.cli.help import Command, Group, examples
from moxiehook.cli.options import JsonOption
from moxiehook.cli.render import (
    Column,
    RowStream,
    Styled,
    WideOption,
    command,
    echo,
    escape_control,
    info,
    print_json,
    print_table,
    state_text,
    warn,
)
from moxiehook.cli.state import state
from moxiehook.config import Config
from moxiehook.errors import UsageError
from moxiehook.log import DeliveryRecord, EndpointRecord, Record

app = typer.Typer(cls=Group, add_completion=False)

# The table, narrowest-first: on a terminal each record is one line at 80 columns and up.
# Time, outcome, status, mode and the short id never shrink (an id must stay whole to be
# copied into `logs show`; without its mode a replay or a forward would look like a fire);
# event, endpoint, URL and error shrink; error, then URL, status and endpoint are left out when even
# the shrunk columns do not fit; attempts and duration show only when nothing has to shrink.
# `--wide` (and a pipe) shows every column in full. `widest`: the layout of followed rows.
COLUMNS = [
    Column("time", shrink="", widest=11), Column("outcome", shrink="", widest=9),
    Column("status", shrink="", drop=3, widest=3), Column("mode", shrink="", widest=7),
    Column("event", min_width=8, widest=19), Column("endpoint", min_width=6, drop=4, widest=12),
    Column("URL", shrink="middle", min_width=24, drop=2, widest=40), Column("error", min_width=10, drop=1, widest=30),
    Column("attempts", shrink="", extra=True), Column("duration", shrink="", extra=True),
    Column("id", shrink="", widest=15),
]
OUTCOME_STYLES = {"delivered": "green", "failed": "red", "skipped": "yellow"}
NO_LOG = "no deliveries logged yet"



class OutcomeChoice(StrEnum):
    delivered = "delivered"
    failed = "failed"
    skipped = "skipped"


# --- shared with `replay` ------------------------------------------------------

EventOption = Annotated[str | None, typer.Option("--event", help="Only this event type.")]
EndpointOption = Annotated[str | None, typer.Option("--endpoint", help="Only this endpoint.")]
SinceOption = Annotated[
    str | None, typer.Option("--since", metavar="WHEN", help="Only since WHEN: ISO-8601 time or 30m, 2h, 7d.")
]


def current_log(ctx: typer.Context, endpoint: str | None = None, event: str | None = None) -> Path:
    """The delivery log of the config this command uses; checks ``--endpoint``/``--event`` names against both."""
    cli_state = state(ctx)
    config = cli_state.load_or_defaults()  # no config file: the ./moxiehook-log.jsonl that listen writes
    path = config.log_path(cli_state.config_path)
    if endpoint is not None:
        delivery_log.check_endpoint_filter(path, endpoint, config.endpoints)
    check_event_filter(config, path, event)
    return path


def check_event_filter(config: Config, path: Path, event: str | None) -> None:
    """Refuse an ``--event`` that is a near miss of a known event name and was never logged.

    Known names are the catalog's and the config's mapped events. A name the log holds is
    fine whatever it looks like (a user's own event, since unmapped); the log is searched
    only for a near miss, so a correct name costs nothing.
    """
    if event is None:
        return
    try:
        catalog.check_not_a_near_miss(event, config.mapped_events())
    except UsageError:
        if not delivery_log.tail(path, 1, delivery_log.LogFilter(event=event)):
            raise


def bad_line_warner(path: Path) -> Callable[[int], None]:
    """``on_bad_line`` for the readers: one warning per bad line, naming it."""
    shown = _shown_path(path)
    warned: set[int] = set()

    def report(number: int) -> None:
        if number not in warned:
            warned.add(number)
            warn(f"{shown} line {number} is not a valid log record; skipped")

    return report


def parse_since(text: str | None) -> datetime | None:
    """``--since WHEN``, with the option named in the error."""
    if text is None:
        return None
    try:
        return delivery_log.parse_when(text)
    except UsageError as exc:
        raise UsageError(f"--since: {exc}") from None


def _shown_path(path: Path) -> str:
    """The log's path as a person would type it: relative to here when below here."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# --- logs --------------------------------------------------------------------------


@app.callback(invoke_without_command=True, epilog=examples(
    "moxiehook logs",
    "moxiehook logs --outcome failed --since 2h",
    "moxiehook logs --follow",
    "moxiehook logs show ID",
))
def logs(
    ctx: typer.Context,
    tail: Annotated[int, typer.Option("--tail", "-n", min=0, help="How many of the newest records (0: all).")] = 20,
    event: EventOption = None,
    endpoint: EndpointOption = None,
    outcome: Annotated[OutcomeChoice | None, typer.Option(
        "--outcome", metavar="OUTCOME", help="Only this outcome: delivered, failed or skipped.")] = None,
    status: Annotated[int | None, typer.Option("--status", help="Only this HTTP status.")] = None,
    since: SinceOption = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new records until Ctrl-C.")] = False,
    wide: WideOption = False,
    as_json: JsonOption = False,
) -> None:
    """Show the newest delivery log records, oldest first, one line each (see also: logs show ID)."""
    if ctx.invoked_subcommand is not None:
        return
    log_filter = delivery_log.LogFilter(
        event=event, endpoint=endpoint, outcome=outcome.value if outcome else None, status=status,
        since=parse_since(since),
    )
    path = current_log(ctx, endpoint, event)
    on_bad_line = bad_line_warner(path)
    if not path.exists():
        info(NO_LOG + ("; waiting for the first (Ctrl-C to stop)" if follow else ""))
    wide = wide or not sys.stdout.isatty()  # piped: every column in full, for grep and awk
    if follow:
        _follow(path, log_filter, tail, as_json, on_bad_line, wide)
        return
    entries = _newest(path, tail, log_filter, on_bad_line)
    if as_json:
        count = _print_json_array(entries)
    else:
        today = date.today()
        rows = [_row(entry.record, wide, today) for entry in entries]
        count = len(rows)
        if rows:
            print_table(COLUMNS, rows, wide=wide)
    if count == 0 and path.exists():
        info("no matching records" if not log_filter.is_empty else "the delivery log is empty")


def _newest(
    path: Path, tail: int, log_filter: delivery_log.LogFilter, on_bad_line: Callable[[int], None],
    end: int | None = None,
) -> Iterable[delivery_log.LogEntry]:
    """The newest ``tail`` matches: read backwards, stopping at N; ``--tail 0`` streams them all."""
    if tail == 0:
        return delivery_log.stream(path, log_filter, on_bad_line, end=end)
    return delivery_log.tail(path, tail, log_filter, on_bad_line, end=end)


def _follow(
    path: Path, log_filter: delivery_log.LogFilter, tail: int, as_json: bool, on_bad_line: Callable[[int], None],
    wide: bool,
) -> None:
    """The last records, then each new one as it is appended; Ctrl-C ends it cleanly.

    Both come from ``follow``, which reads them from one open file: a prune in between cannot
    show a record twice or lose one. Rows line up with each other (``RowStream``).
    """
    show = (_print_json_line if as_json
            else functools.partial(_print_row_line, rows=RowStream(COLUMNS, wide)))
    try:
        for entry in delivery_log.follow(path, log_filter, on_bad_line, backlog=tail):
            show(entry)
    except KeyboardInterrupt:
        return  # the way to stop following: exit 0


def _print_json_array(entries: Iterable[delivery_log.LogEntry]) -> int:
    """A JSON array written as it is read, one logged record per line; returns the count."""
    out = sys.stdout
    count = 0
    for entry in entries:
        out.write(",\n  " if count else "[\n  ")
        out.write(entry.json_text)
        count += 1
    out.write("\n]\n" if count else "[]\n")
    return count


def _print_json_line(entry: delivery_log.LogEntry) -> None:
    sys.stdout.write(entry.json_text + "\n")
    sys.stdout.flush()


def _print_row_line(entry: delivery_log.LogEntry, rows: RowStream) -> None:
    """One record as a line of its own, lined up with the lines before it (``RowStream``)."""
    rows.print(_row(entry.record, rows.wide, date.today()))
    sys.stdout.flush()


def _row(record: Record, wide: bool, today: date) -> list[Any]:
    """A record's cells, in COLUMNS order: full values when ``wide``, else short ids and times."""
    when = _local_time(record.at, wide, today)
    if isinstance(record, EndpointRecord):
        outcome = state_text(record.action == "enabled")
        if record.action not in ("enabled", "disabled"):
            outcome = Styled(str(record.action), "")
        return [when, outcome, "", "", "endpoint", record.endpoint, "", record.reason or "", "", "", ""]
    mode = str(record.mode or "")
    return [
        when,
        Styled(str(record.outcome), OUTCOME_STYLES.get(str(record.outcome), "")),
        "-" if record.status is None else str(record.status),
        mode,
        record.event,
        record.endpoint,
        record.url,
        record.error or "",
        str(len(record.attempts)),
        _duration(record.duration_ms),
        str(record.id) if wide else delivery_log.short_id(str(record.id or "")),
    ]


def _local_time(at: str | None, wide: bool, today: date) -> str:
    """A logged UTC time in local time, as ``--since`` reads one: ``14:03:07`` today, with the date
    otherwise (``11-28 14:03`` this year, ``2025-11-28`` before); all of it when ``wide``."""
    moment = delivery_log.record_time({"at": at})
    if moment is None:
        return str(at or "")
    try:
        local = moment.astimezone()
    except (ValueError, OverflowError):  # a hand-edited year 1 or 9999 has no local time: show it as logged
        return str(at)
    if wide:
        return local.strftime("%Y-%m-%d %H:%M:%S")
    if local.date() == today:
        return local.strftime("%H:%M:%S")
    return local.strftime("%m-%d %H:%M" if local.year == today.year else "%Y-%m-%d")


def _duration(ms: float | None) -> str:
    if ms is None:
        return ""
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


# --- logs prune ----------------------------------------------------------------------


@app.command("prune", cls=Command)
def prune(
    ctx: typer.Context,
    keep: Annotated[
        int | None, typer.Option("--keep", min=0, metavar="N", help="Keep the newest N records.", show_default=False)
    ] = None,
    before: Annotated[
        str | None,
        typer.Option("--before", metavar="WHEN", help="Drop records logged before WHEN: ISO-8601 time or 30m, 2h, 7d.",
                     show_default=False),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Confirm --keep 0, which empties the log.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Drop old records (atomically, under the log's lock); say how many were dropped.

    --keep 0 drops every record, so it needs --yes (unlike logs --tail 0, which means "all").
    """
    moment = None
    if before is not None:
        try:
            moment = delivery_log.parse_when(before)
        except UsageError as exc:
            raise UsageError(f"--before: {exc}") from None
    path = current_log(ctx)
    result = delivery_log.prune(path, keep, moment, empty_ok=yes)
    if as_json:
        print_json({"dropped": result.dropped, "kept": result.kept, "other_lines": result.other_lines,
                    "bytes_before": result.bytes_before, "bytes_after": result.bytes_after})
        return
    if not path.exists():
        info(NO_LOG)
        return
    line = f"dropped {_count(result.dropped, 'record')}, kept {result.kept}"
    if result.dropped:
        line += f" ({_shown_path(path)}: {_size(result.bytes_before)} → {_size(result.bytes_after)})"
    echo(line)
    if result.other_lines:
        warn(f"{_count(result.other_lines, 'line')} that {'is' if result.other_lines == 1 else 'are'} not a valid "
             f"log record kept as found (see: {command('logs')})")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


def _size(size: int) -> str:
    """A byte count as a person reads it: 512 B, 18.7 kB, 19.0 MB."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


# --- logs show ------------------------------------------------------------------------


@app.command("show", cls=Command)
def show(
    ctx: typer.Context,
    record_id: Annotated[
        str, typer.Argument(metavar="ID", help="A delivery id from `moxiehook logs`: whole, a unique prefix, "
                                               "or the short form the table shows (dlv_…MPNJM7KNTY).")
    ],
    as_json: JsonOption = False,
) -> None:
    """Show one delivery in full: request headers (as logged), body, attempts, response."""
    path = current_log(ctx)
    entry = delivery_log.find(path, record_id, bad_line_warner(path))
    if as_json:
        print_json(entry.data)
        return
    record = entry.record
    assert isinstance(record, DeliveryRecord)  # find() returns deliveries only
    _print_delivery(record)


def _print_delivery(record: DeliveryRecord) -> None:
    """The record's block. What a server or sender sent (headers, bodies, an error quoting
    them) is shown with control characters escaped: the terminal must not act on them."""
    result = record.outcome if record.status is None else f"{record.outcome} (HTTP {record.status})"
    fields = [
        ("id", record.id),
        ("event", f"{record.event} ({record.event_id})"),
        ("endpoint", record.endpoint),
        ("url", f"POST {record.url}"),
        ("mode", f"replay of {record.replay_of}" if record.replay_of else record.mode),
        ("at", record.at),
        ("outcome", result + (f": {record.error}" if record.error else "")),
        ("duration", _duration(record.duration_ms)),
    ]
    for name, value in fields:
        echo(escape_control(f"{name:<9} {value}"))
    request = record.request or {}
    echo("\nrequest headers")
    for name, value in (request.get("headers") or {}).items():
        echo(escape_control(f"  {name}: {value}"))
    if delivery_log.text_body(request):  # sent as these bytes, not as a JSON value
        not_utf8 = request.get("body_format") == delivery_log.BASE64_BODY
        kind = "bytes that are not UTF-8, shown with U+FFFD" if not_utf8 else "text"
        echo(f"\nrequest body ({kind}, not JSON)")
        echo(escape_control(_indent(delivery_log.shown_text(request)), keep_newlines=True))
    else:
        echo("\nrequest body")
        echo(escape_control(_indent(_pretty(request.get("body"))), keep_newlines=True))
    echo("\nattempts")
    for number, attempt in enumerate(record.attempts, start=1):
        answer = f"HTTP {attempt.status}" if attempt.status is not None else f"error: {attempt.error}"
        echo(escape_control(f"  {number}  {attempt.at}  {answer}  {_duration(attempt.duration_ms)}"))
    if not record.attempts:
        echo("  none (nothing was sent)")
    response = record.response
    if response is None:
        echo("\nresponse  none (no answer came)")
        return
    echo(f"\nresponse  HTTP {response.get('status')}")
    for name, value in (response.get("headers") or {}).items():
        echo(escape_control(f"  {name}: {value}"))
    body = response.get("body")
    if body:
        echo(escape_control(_indent(_pretty_text(str(body))), keep_newlines=True))
    if response.get("incomplete"):
        echo(f"  (body incomplete: {response['incomplete']})")


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _pretty_text(text: str) -> str:
    """A response body: pretty JSON when it is JSON, else as received."""
    try:
        return _pretty(json.loads(text))
    except ValueError:
        return text


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
