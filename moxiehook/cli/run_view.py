"""What ``fire``, ``test`` and ``replay`` show: progress, warnings, the summary, dry runs.

A sending command does::

    with live_run(total, concurrency=n, keep_records=as_json) as options:
        summary = dispatch.run_jobs(config_path, config, jobs, options)
    show_result(summary, as_json)
    raise typer.Exit(summary.exit_code)

Progress and warnings go to stderr; stdout holds only the result (one JSON
document with ``--json``).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Any

from moxiehook.cli.render import info, print_json, warn

if TYPE_CHECKING:
    from moxiehook.send import RunOptions, RunSummary

# A bar for two or three deliveries only flickers: show it above this many.
PROGRESS_THRESHOLD = 5


def disabled_warning(endpoint: str, reason: str) -> str:
    """The SPEC §5 warning for an endpoint disabled during the run."""
    return (f"⚠ endpoint '{endpoint}' was disabled: {reason}\n"
            f"  fix the server or the config, then: moxiehook endpoint enable {endpoint}")


def already_disabled_warning(endpoint: str, reason: str) -> str:
    """The warning for an endpoint skipped because it was disabled before the run."""
    return (f"⚠ endpoint '{endpoint}' is disabled, its deliveries were skipped: {reason}\n"
            f"  once it is fixed: moxiehook endpoint enable {endpoint}")


def summary_line(summary: RunSummary) -> str:
    """``3 delivered, 1 failed, 2 skipped; disabled: crm``."""
    line = f"{summary.delivered} delivered, {summary.failed} failed, {summary.skipped} skipped"
    if summary.disabled:
        line += "; disabled: " + ", ".join(name for name, _ in summary.disabled)
    return line


def summary_json(summary: RunSummary) -> dict[str, Any]:
    """The ``--json`` document of a run."""
    return {
        "delivered": summary.delivered,
        "failed": summary.failed,
        "skipped": summary.skipped,
        "disabled": [{"endpoint": name, "reason": reason} for name, reason in summary.disabled],
        "deliveries": [record.to_dict() for record in summary.records],
    }


def show_result(summary: RunSummary, as_json: bool = False) -> None:
    """After a run: already-disabled warnings and the summary line (stderr), JSON (stdout)."""
    for endpoint, reason in summary.already_disabled.items():
        info(already_disabled_warning(endpoint, reason))
    info(summary_line(summary))
    if as_json:
        print_json(summary_json(summary))


@contextlib.contextmanager
def live_run(total: int | None, *, concurrency: int, include_disabled: bool = False,
             keep_records: bool = False, endpoints: Collection[str] | None = None) -> Iterator[RunOptions]:
    """``RunOptions`` wired to the terminal: a progress bar, warnings as they happen.

    The bar is drawn on stderr only when it is a terminal and more than a few
    deliveries (``total``, when known) are made.
    """
    from moxiehook.send import RunOptions

    options = RunOptions(concurrency=concurrency, include_disabled=include_disabled,
                         keep_records=keep_records, endpoints=endpoints,
                         on_disabled=lambda name, reason: info(disabled_warning(name, reason)),
                         on_warning=warn)
    if not (sys.stderr.isatty() and total is not None and total > PROGRESS_THRESHOLD):
        yield options
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from moxiehook.cli.render import stderr_console

    with Progress(TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=stderr_console(), transient=True) as progress:
        task = progress.add_task("sending", total=total)
        # Printed through the bar's console so the bar is redrawn below the warning.
        options.on_disabled = lambda name, reason: progress.console.print(
            disabled_warning(name, reason), markup=False, highlight=False)
        options.on_warning = lambda message: progress.console.print(
            f"warning: {message}", markup=False, highlight=False)
        options.on_record = lambda record: progress.advance(task)
        yield options


def show_preview(requests: list[dict[str, Any]], as_json: bool = False) -> None:
    """``--dry-run``: each request as it would be sent (secrets masked), on stdout."""
    if as_json:
        print_json(requests)
        return
    for request in requests:
        lines = [f"{request['method']} {request['url']}"]
        lines += [f"{name}: {value}" for name, value in request["headers"].items()]
        body = json.dumps(request["body"], indent=2, ensure_ascii=False)
        sys.stdout.write("\n".join(lines) + "\n\n" + body + "\n\n")
    info(f"dry run: {len(requests)} request(s) shown, nothing sent")
