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
import os
import sys
import threading
from collections.abc import Collection, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from moxiehook.cli.render import OutputError, command, escape_control, info, mark_app_loaded, print_json, warn

if TYPE_CHECKING:
    from moxiehook.send import Interrupt, LoadReport, LoadRun, RunOptions, RunSummary

# A bar for two or three deliveries only flickers: show it above this many.
PROGRESS_THRESHOLD = 5
# Failed deliveries listed one per line after a run: a screenful, then a count.
FAILURES_SHOWN = 10


def disabled_warning(endpoint: str, reason: str) -> str:
    """The warning for an endpoint disabled during the run, with the command that enables it again."""
    return (f"⚠ endpoint '{endpoint}' was disabled: {reason}\n"
            f"  fix the server or the config, then: {command(f'endpoint enable {endpoint}')}")


def already_disabled_warning(endpoint: str, reason: str) -> str:
    """The warning for an endpoint skipped because it was disabled before the run."""
    return (f"⚠ endpoint '{endpoint}' is disabled, its deliveries were skipped: {escape_control(reason)}\n"
            f"  once it is fixed: {command(f'endpoint enable {endpoint}')}")


def summary_line(summary: RunSummary) -> str:
    """``3 delivered, 1 failed, 2 skipped; disabled: crm · 1.2 s · 3.3/s``."""
    line = f"{summary.delivered} delivered, {summary.failed} failed, {summary.skipped} skipped"
    if summary.disabled:
        line += "; disabled: " + ", ".join(name for name, _ in summary.disabled)
    line += f" · {elapsed_text(summary.elapsed_s)}"
    if summary.rate is not None:
        line += f" · {rate_text(summary.rate)}"
    return line


def elapsed_text(seconds: float) -> str:
    """``4 ms``, ``3.12 s``, ``12.3 s``, ``2m05s``: as precise as a person reads it."""
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))} ms"
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def rate_text(per_second: float) -> str:
    """``3.3/s`` below 10 a second, ``558/s`` above."""
    return f"{per_second:.1f}/s" if per_second < 10 else f"{per_second:,.0f}/s"


def failure_lines(summary: RunSummary) -> list[str]:
    """One line per failed delivery (a screenful at most), then how many more, and where to look.

    ``✗ crm · ClientCreate · https://crm.example.com/hooks · HTTP 422 Unprocessable Entity``:
    the error may carry text from the network (a Location header), so it is escaped.
    """
    shown = summary.failures[:FAILURES_SHOWN]
    if not shown:
        return []
    lines = [escape_control(f"✗ {r.endpoint} · {r.event} · {r.url} · {r.error or 'failed'}") for r in shown]
    more = summary.failed - len(shown)
    if more > 0:
        lines.append(f"  … and {more} more: {command('logs --outcome failed')}")
    lines.append(f"  details: {command(f'logs show {shown[0].id}')}")
    return lines


def summary_fields(summary: RunSummary) -> dict[str, Any]:
    """The ``--json`` document of a run, but for its ``deliveries`` (streamed as they end)."""
    return {
        "delivered": summary.delivered,
        "failed": summary.failed,
        "skipped": summary.skipped,
        "disabled": [{"endpoint": name, "reason": reason} for name, reason in summary.disabled],
        "interrupted": summary.interrupted,
        "elapsed_s": round(summary.elapsed_s, 3),
        "rate_per_s": None if summary.rate is None else round(summary.rate, 1),
    }


def summary_json(summary: RunSummary) -> dict[str, Any]:
    """The whole ``--json`` document of a run whose deliveries are in ``summary.records`` (none when streamed)."""
    return {"deliveries": [record.to_dict() for record in summary.records], **summary_fields(summary)}


def _strict_dumps(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=False, allow_nan=False, default=str,
                      separators=(",", ": ") if indent else (", ", ": "))


class _JsonDocument:
    """A run's ``--json`` document, written as the run goes: memory stays flat however many deliveries.

    ``{"deliveries": [`` one record per line as each ends, then ``],`` and the
    summary's fields once the run is over. Written to the stream results go to
    (stdout, or the real stdout while an app's output is sent to stderr), from
    the sending threads, under a lock. A run that ends in an error still closes
    the document (with an ``error`` field), so stdout stays one JSON document.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._closed = False  # closed, or stdout failed: nothing more is written
        self._failure: OutputError | None = None  # how stdout failed, raised when the document is closed

    def record(self, record: Any) -> None:
        line = _strict_dumps(record.to_dict())
        with self._lock:
            if not self._closed:
                self._write(("{\n  \"deliveries\": [\n    " if self._count == 0 else ",\n    ") + line)
                self._count += 1

    def close(self, fields: dict[str, Any]) -> None:
        with self._lock:
            if self._failure is not None:
                failure, self._failure = self._failure, None
                raise failure
            if self._closed:
                return
            head = "{\n  \"deliveries\": []" if self._count == 0 else "\n  ]"
            rest = "".join(f",\n  {json.dumps(key)}: " + _strict_dumps(value, 2).replace("\n", "\n  ")
                           for key, value in fields.items())
            self._write(head + rest + "\n}\n")
            self._closed = True
            if self._failure is not None:
                raise self._failure

    def abandon(self, error: str) -> None:
        """The run ended in an error: close a document already begun, with ``error``; else write nothing
        (an error before the first delivery leaves stdout empty, as every other error does)."""
        with self._lock:
            begun = self._count > 0
        if begun:
            with contextlib.suppress(OutputError):
                self.close({"error": error})
        else:
            self._closed = True

    def _write(self, text: str) -> None:
        """Write and flush. When stdout fails (a full disk, a reader gone: ``| head``), the run goes on
        (its deliveries are logged), nothing more is written, and ``close`` raises the ``OutputError``
        after the summary line: one ``error: cannot write the output`` line, as other commands end."""
        try:
            out = results()
            out.write(text)
            out.flush()
        except OutputError as exc:
            self._closed, self._failure = True, exc
        except (OSError, ValueError) as exc:
            self._closed = True
            self._failure = OutputError(exc if isinstance(exc, OSError) else OSError(str(exc)))


_document: _JsonDocument | None = None  # the --json document of the run under way (see live_run)
_results: Any = None  # where results go while stdout is taken by an app (see app_output_to_stderr)


def results() -> Any:
    """The stream a command's results (its ``--json`` document, a load table) go to: stdout, as a rule."""
    return _results if _results is not None else sys.stdout


def show_result(summary: RunSummary, as_json: bool = False, extra: dict[str, Any] | None = None) -> None:
    """After a run (stderr): already-disabled warnings, the failures, the summary line; JSON on stdout.

    ``extra``: more fields of the JSON document, beside the summary's (a load run's ``load``).
    """
    global _document
    for endpoint, reason in summary.already_disabled.items():
        info(already_disabled_warning(endpoint, reason))
    for line in failure_lines(summary):
        info(line)
    if summary.interrupted:
        info("⚠ interrupted (Ctrl-C): no further delivery was started; those in flight ended or were cut, "
             "and are logged")
    info(summary_line(summary))
    if as_json:
        document, _document = _document, None
        if document is None:  # not streamed (the run kept its records)
            print_json({**summary_json(summary), **(extra or {})})
        else:
            document.close({**summary_fields(summary), **(extra or {})})


@contextlib.contextmanager
def app_output_to_stderr() -> Iterator[None]:
    """While an app runs in-process (``fire --app``): what it prints goes to stderr, not into our results.

    ``print()`` and anything else writing to ``sys.stdout`` land on stderr, as a
    server's log would; the run's results (the ``--json`` document) still go to
    the real stdout, so it stays one JSON document whatever the app prints.
    When stdout is a real file, descriptor 1 itself is pointed at stderr too
    (a logging handler made at import time holds the old ``sys.stdout``, and a
    subprocess writes to the descriptor), and results go to a copy of it.
    """
    global _results
    real = sys.stdout
    saved_fd: int | None = None
    try:
        fd = real.fileno()
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (a test runner's buffer)
        fd = -1
    stream: Any = real
    if fd >= 0:
        real.flush()
        saved_fd = os.dup(fd)
        os.dup2(sys.stderr.fileno(), fd)
        stream = open(saved_fd, "w", encoding=getattr(real, "encoding", None) or "utf-8",  # noqa: SIM115
                      errors="backslashreplace", closefd=False)
    _results = stream
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _results = None
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()  # the app's last lines, still buffered, go where they were meant to
        if saved_fd is not None:
            with contextlib.suppress(OSError, ValueError):  # a failed write was reported by its writer
                stream.flush()
            os.dup2(saved_fd, fd)
            os.close(saved_fd)


def load_app_quietly(spec: str) -> Any:
    """``--app MODULE:ATTR`` imported with what the module prints at import sent to stderr, as while it runs.

    Apps print when imported (a settings banner, a logging handler on stdout); that
    output is the app's, not a result, so ``--json`` stays one JSON document.
    """
    from moxiehook.testing import load_app

    mark_app_loaded()  # imported from now on: what it prints after the run goes to stderr too
    with app_output_to_stderr():
        return load_app(spec)


def load_table(report: LoadReport) -> list[str]:
    """A load run's report as a short table (under 80 columns)."""
    latency = report.latency_ms

    def ms(name: str) -> str:
        value = latency.get(name)
        return "—" if value is None else f"{value:,.1f} ms"

    statuses = "  ".join(f"{status} ×{n:,}" for status, n in report.statuses.items()) or "—"
    errors = "  ".join(f"{kind} ×{n:,}" for kind, n in report.errors.items()) or "—"
    return [
        f"rate      {report.achieved_rate:,.1f}/s achieved of {report.requested_rate:,g}/s asked, "
        f"over {report.duration_s:,.2f} s",
        f"sent      {report.sent:,}   late {report.late:,} (started after their time: no free slot)",
        f"latency   p50 {ms('p50')}   p90 {ms('p90')}   p99 {ms('p99')}   max {ms('max')}",
        f"statuses  {statuses}",
        f"errors    {errors}",
    ]


def show_load(report: LoadReport) -> None:
    """A load run's table, on stdout (it is the run's result)."""
    results().write("\n".join(load_table(report)) + "\n")


LIVE_INTERVAL_S = 0.25


@contextlib.contextmanager
def live_load_line(run: LoadRun) -> Iterator[None]:
    """While a load run runs: one line on stderr, redrawn 4 times a second, when stderr is a terminal."""
    if not sys.stderr.isatty():
        yield
        return
    import threading

    done = threading.Event()

    def draw() -> None:
        while not done.wait(LIVE_INTERVAL_S):
            now = run.progress()
            p50 = "—" if now.p50_ms is None else f"{now.p50_ms:,.1f} ms"
            sys.stderr.write(f"\r{now.elapsed_s:6.1f} s  {now.sent:,} sent  {now.rate:,.1f}/s  p50 {p50}  "
                             f"errors {now.errors:,}  late {now.late:,}\x1b[K")
            sys.stderr.flush()

    drawer = threading.Thread(target=draw, name="moxiehook-load-line", daemon=True)
    drawer.start()
    try:
        yield
    finally:
        done.set()
        drawer.join()
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()


@contextlib.contextmanager
def live_run(total: int | None, *, concurrency: int, include_disabled: bool = False,
             keep_records: bool = False, endpoints: Collection[str] | None = None) -> Iterator[RunOptions]:
    """``RunOptions`` wired to the terminal: a progress bar, warnings as they happen, Ctrl-C.

    The bar is drawn on stderr only when it is a terminal and more than a few
    deliveries (``total``, when known) are made. Ctrl-C stops the run (no new
    attempt; those in flight end or are cut, see ``ctrl_c_stops``) and the
    command then shows its partial result. ``keep_records`` (``--json``): the
    records are streamed into the JSON document as they end, none is kept;
    ``show_result`` finishes the document.
    """
    global _document
    from moxiehook.send import Interrupt, RunOptions

    # --json: the records are streamed into the document as they end, never kept (memory stays flat).
    options = RunOptions(concurrency=concurrency, include_disabled=include_disabled, endpoints=endpoints,
                         on_disabled=lambda name, reason: info(disabled_warning(name, reason)),
                         on_warning=warn, interrupt=Interrupt())
    document = _document = _JsonDocument() if keep_records else None
    try:
        with ctrl_c_stops(options.interrupt):
            if not (sys.stderr.isatty() and total is not None and total > PROGRESS_THRESHOLD):
                if document is not None:
                    options.on_record = document.record
                yield options
                return
            with _progress_bar(options, total, document):
                yield options
    except BaseException as exc:  # the run ended in an error: stdout still holds one JSON document
        if document is not None:
            _document = None
            document.abandon(str(exc) or type(exc).__name__)
        raise


@contextlib.contextmanager
def ctrl_c_stops(interrupt: Interrupt | None) -> Iterator[None]:
    """While a run goes, Ctrl-C asks it to stop instead of raising ``KeyboardInterrupt`` mid-delivery.

    A ``KeyboardInterrupt`` raised wherever the main thread happens to be (in
    the middle of a socket read, of a log write) would lose the delivery in
    flight and skip the summary. So SIGINT gets a handler that only counts
    (a handler runs between two bytecodes of the main thread and must take no
    lock), and Python's wakeup fd hands each signal to a watcher thread,
    which requests the stop: no new attempt, those in flight ended or cut
    within about a second and logged, then the partial summary and exit 130.
    A second Ctrl-C cuts the attempts in flight at once; a third quits at once
    (``error: interrupted``, exit 130), as a hung run still needs a way out.
    """
    import signal
    import socket

    if interrupt is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    presses = 0

    def on_sigint(signum: int, frame: Any) -> None:
        nonlocal presses
        presses += 1
        if presses >= 3:
            raise KeyboardInterrupt

    def watch() -> None:
        while signals := reader.recv(64):  # one byte per signal caught; b"" once the run is over
            for _ in range(signals.count(signal.SIGINT)):
                interrupt.request()

    previous_handler = signal.signal(signal.SIGINT, on_sigint)
    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    watcher = threading.Thread(target=watch, name="moxiehook-ctrl-c", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous_fd)
        signal.signal(signal.SIGINT, previous_handler)
        writer.shutdown(socket.SHUT_WR)  # the watcher reads b"" and ends
        watcher.join()
        reader.close()
        writer.close()


@contextlib.contextmanager
def _progress_bar(options: RunOptions, total: int, document: _JsonDocument | None = None) -> Iterator[None]:
    """Draw the bar while the run goes: done/total, delivered and failed so far, rate, elapsed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    from moxiehook.cli.render import stderr_console

    class RateColumn(ProgressColumn):
        """Deliveries ended per second so far (the bar's own speed estimate lags on bursts)."""

        def render(self, task: Any) -> Text:
            elapsed = task.elapsed or 0
            return Text(rate_text(task.completed / elapsed) if elapsed > 0 and task.completed else "–/s")

    counts: dict[str, Any] = {"delivered": 0, "failed": 0}
    with Progress(BarColumn(bar_width=None), MofNCompleteColumn(),
                  TextColumn("{task.fields[delivered]} delivered, {task.fields[failed]} failed"),
                  TextColumn("·"), RateColumn(), TextColumn("·"), TimeElapsedColumn(),
                  console=stderr_console(), transient=False, expand=True) as progress:
        task = progress.add_task("sending", total=total, **counts)
        # Printed through the bar's console so the bar is redrawn below the warning.
        options.on_disabled = lambda name, reason: progress.console.print(
            disabled_warning(name, reason), markup=False, highlight=False)
        options.on_warning = lambda message: progress.console.print(
            f"warning: {message}", markup=False, highlight=False)

        counting = threading.Lock()  # records end on several sending threads at once

        def advance(record: Any) -> None:
            with counting:
                if record.outcome in counts:
                    counts[record.outcome] += 1
                progress.update(task, advance=1, **counts)
            if document is not None:
                document.record(record)

        options.on_record = advance
        try:
            yield
        finally:  # the last frame shows the final count, interrupted or not (not the last 10 Hz refresh's)
            with counting:
                progress.update(task, **counts)
            progress.refresh()


def show_preview(requests: Iterable[dict[str, Any]], as_json: bool = False) -> None:
    """``--dry-run``: each request as it would be sent (secrets masked), on stdout.

    Streamed: each request is printed as it is made, never all held at once
    (``--count 200000 --json`` peaked at 1.9 GB when the list was built and
    dumped whole). The JSON form is the same document ``print_json`` writes.
    """
    from moxiehook.log import shown_text, text_body

    write = sys.stdout.write
    shown = 0
    if as_json:
        for request in requests:
            text = json.dumps(request, indent=2, ensure_ascii=False, default=str, allow_nan=False)
            write(("[\n" if shown == 0 else ",\n") + "  " + text.replace("\n", "\n  "))
            shown += 1
        write("\n]\n" if shown else "[]\n")
        return
    for request in requests:
        lines = [f"{request['method']} {request['url']}"]
        lines += [f"{name}: {value}" for name, value in request["headers"].items()]
        body = (shown_text(request) if text_body(request)  # raw: shown as it is sent
                else json.dumps(request["body"], indent=2, ensure_ascii=False, allow_nan=False))
        # A sender's text (a relayed body) may hold escape sequences: shown as text, never acted on.
        write(escape_control("\n".join(lines) + "\n\n" + body, keep_newlines=True) + "\n\n")
        shown += 1
    info(f"dry run: {shown} request(s) shown, nothing sent")



def deliver_into(app: Any, options: RunOptions, stack: contextlib.ExitStack) -> None:
    """``--app``: the run's requests go into ``app`` in-process (none given: over the network, as
    ``options`` has it); its sender is closed with ``stack``.

    What the app prints goes to stderr while it runs, so stdout holds only the results. ``fire``,
    ``replay`` and ``scenario run`` all deliver into an app this way.
    """
    if app is None:
        return
    from moxiehook.testing import AppSender

    stack.enter_context(app_output_to_stderr())
    options.sender = stack.enter_context(contextlib.closing(AppSender(app)))
