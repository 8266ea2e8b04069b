"""Load runs (``fire --rate R --duration T``): an open-model schedule and its report.

The question a load run answers: can a receiver keep up when Moxie sends a
burst (an import of 500 clients)? So deliveries start at a constant rate
whatever the receiver does (an *open* model): a slow answer never delays the
next start, as it would in a loop that waits for each answer and so measures
less the slower the receiver gets. At most ``concurrency`` deliveries are in
flight; a start that finds them all busy waits for a slot and is counted
*late*, never dropped, so the report says when the rate asked for was not
what the receiver got.

There is no second delivery loop here: ``LoadRun.jobs`` hands ``dispatch``
its jobs, each at its start time, and hears back through ``on_record`` as
each one ends. Everything else (the wire format, retries, the log with
``mode = "load"``, disabling an endpoint mid-run, ``--vary``, signing) is
``dispatch``'s, as for ``--count``. All its sending threads are started before
the first start, so no start waits for a thread to be made.

A load run is a test, judged by ``judge_load``: it fails when a delivery failed (as any
``fire``), and also when it did not do what was asked: an achieved rate more than
``RATE_SHORTFALL`` below the one asked, or more than ``LATE_SHARE`` of its starts late;
``LoadLimits`` (``--max-p99``, ``--max-error-rate``) add thresholds for CI. A receiver that
refuses connections is said to be refusing them: the late starts and the lost rate are only
its consequences.

Latency is a delivery's first attempt, from the start of the request to the
end of its answer (``time.perf_counter``, a monotonic clock), as logged in the
record's ``attempts[0].duration_ms``: a retry is more load the receiver asked
for, not a slower answer to the first request.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moxiehook.config import Config
from moxiehook.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, UsageError
from moxiehook.log import DeliveryRecord
from moxiehook.send.dispatch import Interrupt, Job, RunOptions, RunSummary, run_jobs

MAX_RATE = 100_000.0  # deliveries per second
MAX_DURATION_S = 7 * 86_400.0
PERCENTILES = (("p50", 50), ("p90", 90), ("p99", 99))
RATE_SHORTFALL = 0.03  # an achieved rate more than 3 % below the one asked fails the run
LATE_SHARE = 0.01  # more than 1 % of starts late fails the run
REFUSED = "connection refused"  # the error kind of a receiver that is not listening


def check_load(rate: float, duration_s: float) -> int:
    """The number of deliveries of a load run; ``UsageError`` for values that make no sense."""
    if not math.isfinite(rate) or rate <= 0 or rate > MAX_RATE:
        raise UsageError(f"--rate must be a number of deliveries per second above 0 and at most "
                         f"{MAX_RATE:,.0f}, got {rate:g}")
    if not math.isfinite(duration_s) or duration_s <= 0 or duration_s > MAX_DURATION_S:
        raise UsageError(f"--duration must be above 0 and at most 7d, got {duration_s:g} s")
    count = round(rate * duration_s)
    if count < 1:
        raise UsageError(f"--rate {rate:g} for {duration_s:g} s starts no delivery: "
                         "raise the rate or the duration")
    return count


@dataclass
class LoadReport:
    """What a load run did (the ``load`` object of ``--json``)."""

    requested_rate: float
    achieved_rate: float  # deliveries sent per second over the run's span of starts
    duration_s: float  # from the first start to one interval after the last
    sent: int  # deliveries made (delivered or failed; skipped ones are not sent)
    late: int  # starts that found every slot (sending thread) busy at their time and waited for one
    latency_ms: dict[str, float | None]  # p50, p90, p99, max of the first attempts (None: nothing sent)
    statuses: dict[str, int] = field(default_factory=dict)  # final HTTP status -> deliveries
    # no answer: "timeout", "connection refused", "connection error" -> deliveries
    errors: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # why the run failed (``judge_load``); empty: it passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested_rate": self.requested_rate, "achieved_rate": self.achieved_rate,
            "duration_s": self.duration_s, "sent": self.sent, "late": self.late,
            "latency_ms": dict(self.latency_ms), "statuses": dict(self.statuses), "errors": dict(self.errors),
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class LoadLimits:
    """Thresholds for CI: ``--max-p99 MS`` and ``--max-error-rate FRACTION`` (None: not checked).

    Without ``max_error_rate`` one failed delivery fails the run, as in any ``fire``; with it,
    failures up to that share of the deliveries sent are accepted (a load test of a receiver
    that sheds some load on purpose), and more fail the run.
    """

    max_p99_ms: float | None = None
    max_error_rate: float | None = None

    def __post_init__(self) -> None:
        if self.max_p99_ms is not None and not (math.isfinite(self.max_p99_ms) and self.max_p99_ms > 0):
            raise UsageError(f"--max-p99 must be a number of milliseconds above 0, got {self.max_p99_ms:g}")
        if self.max_error_rate is not None and not 0 <= self.max_error_rate <= 1:  # also refuses nan
            raise UsageError(f"--max-error-rate must be a fraction from 0 to 1 (0.01 is 1 %), "
                             f"got {self.max_error_rate:g}")


def judge_load(report: LoadReport, failed: int, limits: LoadLimits | None = None) -> list[str]:
    """Why the run failed, one reason per line (an empty list: it did what was asked).

    ``failed``: deliveries that failed. A receiver refusing connections is the one reason
    given for its failures: the late starts and the rate it cost follow from it.
    """
    limits = limits or LoadLimits()
    problems: list[str] = []
    refused = report.errors.get(REFUSED, 0)
    if refused:
        problems.append(f"the receiver refused {refused:,} of {report.sent:,} connections: is it listening?")
    if failed and not refused:
        if limits.max_error_rate is None:
            problems.append(f"{failed:,} of {report.sent:,} deliveries failed ({_percent(failed, report.sent)})")
        elif failed > limits.max_error_rate * report.sent:
            problems.append(f"error rate {failed / report.sent:.3g} ({failed:,} of {report.sent:,} deliveries "
                            f"failed) is above --max-error-rate {limits.max_error_rate:g}")
    if not refused:
        shortfall = 1 - report.achieved_rate / report.requested_rate
        if shortfall > RATE_SHORTFALL + 1e-9:
            problems.append(f"achieved rate {report.achieved_rate:,.1f}/s is {shortfall * 100:.1f} % below the "
                            f"{report.requested_rate:,g}/s asked (more than {RATE_SHORTFALL * 100:g} %)")
        starts = report.sent
        if starts and report.late > LATE_SHARE * starts:
            problems.append(f"{report.late:,} of {starts:,} starts ({_percent(report.late, starts)}) were late, "
                            f"waiting for a free slot (more than {LATE_SHARE * 100:g} %)")
    p99 = report.latency_ms.get("p99")
    if limits.max_p99_ms is not None and p99 is not None and p99 > limits.max_p99_ms:
        problems.append(f"p99 latency {p99:,.1f} ms is above --max-p99 {limits.max_p99_ms:g} ms")
    return problems


def load_exit_code(summary: RunSummary, problems: list[str], limits: LoadLimits | None = None) -> int:
    """The exit code of a judged load run: 1 when ``judge_load`` found a problem; 0 for failed
    deliveries that ``--max-error-rate`` accepts; else the run's own code (130: interrupted)."""
    code = summary.exit_code
    if code == EXIT_INTERRUPTED:
        return code
    if problems:
        return EXIT_FAILED
    accepted = limits is not None and limits.max_error_rate is not None
    if code == EXIT_FAILED and summary.failed and not summary.disabled and accepted:
        return EXIT_OK
    return code


def _percent(part: int, whole: int) -> str:
    return f"{part / whole * 100:.1f} %" if whole else "0 %"


@dataclass(frozen=True)
class Progress:
    """The run so far, for a live line."""

    elapsed_s: float
    sent: int
    rate: float  # sent per second so far
    p50_ms: float | None
    errors: int  # deliveries failed so far (no answer, or an answer that is not 2xx)
    late: int


class LoadRun:
    """One load run's schedule and tally; safe to read from another thread while it runs."""

    def __init__(self, rate: float, count: int, concurrency: int,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = rate
        self.count = count
        self.concurrency = concurrency
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._first: float | None = None
        self._last: float | None = None
        self._in_flight = 0
        # The stretches of time when every slot was busy, [start, end]; end None: still busy.
        # Only those that may cover a start still to come are kept.
        self._full: deque[list[float | None]] = deque()
        self._late = 0
        self._sent = 0
        self._failed = 0
        self._latencies: list[float] = []
        self._statuses: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()

    def jobs(self, jobs: Iterable[Job], stop: threading.Event | None = None) -> Iterator[Job]:
        """The first ``count`` of ``jobs``, each given out at its start time (``first + i / rate``).

        ``dispatch`` runs ``concurrency`` sending threads, each asking for the
        next job as soon as it is free. A job is late if every slot was busy at
        its time (a thread merely slow to take it while a slot was free is not
        the receiver's doing, and is not counted). ``stop`` set ends the schedule
        at once, also in the middle of a wait.
        """
        for number, job in enumerate(jobs):
            if number == self.count:
                return
            now = self._clock()
            if self._first is None:
                self._first = now
            due = self._first + number / self.rate
            if due > now:
                if stop is None:
                    self._sleep(due - now)
                elif stop.wait(due - now):  # Ctrl-C: the starts still to come are not made
                    return
            with self._lock:
                full = self._full
                while full and full[0][1] is not None and full[0][1] < due:
                    full.popleft()  # over before this start was due: no later start either
                if full and full[0][0] <= due:  # type: ignore[operator]
                    self._late += 1
                self._in_flight += 1
                self._last = self._clock()
                if self._in_flight == self.concurrency:
                    full.append([self._last, None])
            yield job

    def finished(self, record: DeliveryRecord) -> None:
        """Called as each delivery's record is logged: its slot is free again."""
        with self._lock:
            if record.outcome != "skipped":
                self._sent += 1
                if record.outcome == "failed":
                    self._failed += 1
                if record.attempts:
                    self._latencies.append(record.attempts[0].duration_ms)
                if record.status is not None:
                    self._statuses[str(record.status)] += 1
                else:
                    self._errors[_error_kind(record.error)] += 1
            if self._in_flight == self.concurrency:
                self._full[-1][1] = self._clock()
            self._in_flight -= 1

    def progress(self) -> Progress:
        with self._lock:
            elapsed = 0.0 if self._first is None else self._clock() - self._first
            latencies = sorted(self._latencies)
            sent, failed, late = self._sent, self._failed, self._late
        return Progress(elapsed, sent, sent / elapsed if elapsed > 0 else 0.0,
                        _percentile(latencies, 50), failed, late)

    def span(self) -> float:
        """Seconds from the first start to one interval after the last (0: nothing started)."""
        with self._lock:
            return 0.0 if self._first is None or self._last is None else self._last - self._first + 1 / self.rate

    def report(self) -> LoadReport:
        span = self.span()
        with self._lock:
            latencies = sorted(self._latencies)
            return LoadReport(
                requested_rate=self.rate,
                achieved_rate=round(self._sent / span, 1) if span else 0.0,
                duration_s=round(span, 2),
                sent=self._sent,
                late=self._late,
                latency_ms={**{name: _percentile(latencies, p) for name, p in PERCENTILES},
                            "max": latencies[-1] if latencies else None},
                statuses=dict(sorted(self._statuses.items())),
                errors=dict(sorted(self._errors.items())),
            )


def _error_kind(error: str | None) -> str:
    """How the report groups a delivery without an answer: ``timeout``, ``connection refused``
    (no one listening: a different fault from a slow receiver), else the text before ``:``."""
    text = error or "error"
    if "refused" in text.lower() and text.startswith("connection error"):
        return REFUSED
    return text.split(":", 1)[0]


def _percentile(ordered: list[float], percent: int) -> float | None:
    """Nearest rank: the smallest value that at least ``percent`` % of the values do not exceed."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def run_load(config_path: Path, config: Config, jobs: Iterable[Job], run: LoadRun,
             options: RunOptions) -> RunSummary:
    """Send ``jobs`` on ``run``'s schedule through ``dispatch``; ``run.report()`` tells how it went.

    The summary's elapsed time is the schedule's span (the report's ``duration_s``), so the
    summary line, the ``--json`` document and the report give one duration and one rate.
    """
    shown = options.on_record

    def on_record(record: DeliveryRecord) -> None:
        run.finished(record)
        if shown is not None:
            shown(record)

    options.on_record = on_record
    options.start_all_senders = True
    options.interrupt = options.interrupt or Interrupt()
    summary = run_jobs(config_path, config, run.jobs(jobs, options.interrupt.requested), options)
    span = run.span()
    if span:
        summary.elapsed_s = span
    return summary
