"""Load runs (``fire --rate R --duration T``, SPEC §10): an open-model schedule and its report.

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
from moxiehook.errors import UsageError
from moxiehook.log import DeliveryRecord
from moxiehook.send.dispatch import Interrupt, Job, RunOptions, RunSummary, run_jobs

MAX_RATE = 100_000.0  # deliveries per second
MAX_DURATION_S = 7 * 86_400.0
PERCENTILES = (("p50", 50), ("p90", 90), ("p99", 99))


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
    errors: dict[str, int] = field(default_factory=dict)  # no answer: "timeout", "connection error" -> deliveries

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested_rate": self.requested_rate, "achieved_rate": self.achieved_rate,
            "duration_s": self.duration_s, "sent": self.sent, "late": self.late,
            "latency_ms": dict(self.latency_ms), "statuses": dict(self.statuses), "errors": dict(self.errors),
        }


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
                while full and full[0][1] is not None and full[0][1] < due:  # type: ignore[operator]
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
                    self._errors[(record.error or "error").split(":", 1)[0]] += 1
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

    def report(self) -> LoadReport:
        with self._lock:
            span = 0.0 if self._first is None or self._last is None else self._last - self._first + 1 / self.rate
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


def _percentile(ordered: list[float], percent: int) -> float | None:
    """Nearest rank: the smallest value that at least ``percent`` % of the values do not exceed."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def run_load(config_path: Path, config: Config, jobs: Iterable[Job], run: LoadRun,
             options: RunOptions) -> RunSummary:
    """Send ``jobs`` on ``run``'s schedule through ``dispatch``; ``run.report()`` tells how it went."""
    shown = options.on_record

    def on_record(record: DeliveryRecord) -> None:
        run.finished(record)
        if shown is not None:
            shown(record)

    options.on_record = on_record
    options.start_all_senders = True
    options.interrupt = options.interrupt or Interrupt()
    return run_jobs(config_path, config, run.jobs(jobs, options.interrupt.requested), options)
