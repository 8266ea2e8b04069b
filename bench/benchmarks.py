"""The benchmarks: each measures moxiehook and its comparison side by side in one run.

Each function takes the :class:`~bench.session.Session` and returns a
:class:`Figure`: moxiehook's figure, the comparison's, their ratio and the
target the ratio must meet. End-to-end rates time the whole process (wall
clock, start-up included), as a user or a CI step would see them.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench import peers, processes, workload
from bench.session import REALISTIC_DELAY_S, Session, has_tool

FANOUT_CONCURRENCY = 32


@dataclass(frozen=True)
class Target:
    """``ratio >= value`` (at_least) or ``ratio <= value``."""

    value: float
    at_least: bool

    def met(self, ratio: float) -> bool:
        return ratio >= self.value if self.at_least else ratio <= self.value

    def __str__(self) -> str:
        return f"{'≥' if self.at_least else '≤'} {self.value:g}×"


@dataclass(frozen=True)
class Figure:
    name: str
    moxiehook: str
    comparison: str
    ratio: float | None  # None: no comparison could be made (e.g. jq missing)
    target: Target | None  # None: a measurement shown for a decision, with no target of its own
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.ratio is None:
            return "n/a"
        if self.target is None:
            return "info"
        return "PASS" if self.target.met(self.ratio) else "MISS"


def _missing(session: Session, command: str) -> str | None:
    """Why moxiehook's side cannot be measured yet, or None when ``command`` exists."""
    return None if session.has_command(command) else f"no `{command}` command yet"


def _unmeasured(name: str, why: str, comparison: str, target: Target, notes: list[str] | None = None) -> Figure:
    """A figure whose moxiehook side could not be taken; the comparison is still shown."""
    return Figure(name, f"— ({why})", comparison, None, target, notes or [])


def _rate(events: int, seconds: float) -> str:
    return f"{events / seconds:,.0f} ev/s"


def fanout(session: Session) -> Figure:
    """fire --count N --concurrency 32 to the 50 ms receiver vs the ceiling 32 / 0.05 s."""
    receiver = session.realistic_receiver()
    ceiling = FANOUT_CONCURRENCY / REALISTIC_DELAY_S
    comparison = f"{ceiling:,.0f} ev/s (32 / 0.05 s)"
    target = Target(0.90, at_least=True)
    if why := _missing(session, "fire"):
        return _unmeasured("fanout", why, comparison, target)
    sizes = session.sizes
    count = sizes.fanout_events
    config = session.config_for("fanout", receiver.url())
    [fire] = processes.median_interleaved(
        [lambda: session.fire(receiver, config, count, "--concurrency", str(FANOUT_CONCURRENCY))],
        sizes.rate_repeats)
    rate = count / fire.seconds
    return Figure("fanout", f"{rate:,.0f} ev/s ({count:,} in {fire.seconds:.2f} s)", comparison,
                  rate / ceiling, target,
                  [f"median of {sizes.rate_repeats} run(s); CPU {_per_event_ms(fire.cpu_seconds, count)} an event"])


def curl(session: Session) -> Figure:
    """fire --count N (default concurrency) vs a shell loop of one curl per event."""
    target = Target(15, at_least=True)  # the goal is 20×
    if not has_tool("curl"):
        return _unmeasured("curl", "curl not installed", "—", target)
    receiver = session.fast_receiver()
    sizes = session.sizes
    count, curls = sizes.curl_fire_events, sizes.curl_loop_events
    body, headers = workload.request_body(), workload.request_headers()
    curl_argv = peers.curl_loop(session.folder, receiver.url(), body, headers, curls)
    curl_loop = lambda: processes.run(curl_argv)  # noqa: E731
    if why := _missing(session, "fire"):
        return _unmeasured("curl", why, _rate(curls, curl_loop().seconds) + f" ({curls:,} curls)", target)
    config = session.config_for("curl", receiver.url())
    # For scale: what the HTTP library alone reaches on one connection with the same bytes.
    bare_argv = peers.bare_httpx(session.folder, receiver.url(), body, headers, count)
    loop, fire, bare = processes.median_interleaved(
        [curl_loop, lambda: session.fire(receiver, config, count),
         lambda: processes.run(bare_argv, env=session.env)],
        sizes.rate_repeats)
    loop_rate, fire_rate, bare_rate = curls / loop.seconds, count / fire.seconds, count / bare.seconds
    return Figure("curl", f"{fire_rate:,.0f} ev/s ({count:,} events)", f"{loop_rate:,.0f} ev/s ({curls:,} curls)",
                  fire_rate / loop_rate, target,
                  [f"median of {sizes.rate_repeats} run(s) each; CPU an event: moxiehook "
                   f"{_per_event_ms(fire.cpu_seconds, count)}, curl loop {_per_event_ms(loop.cpu_seconds, curls)}",
                   f"for scale, a bare httpx keep-alive loop: {bare_rate:,.0f} ev/s = "
                   f"{bare_rate / loop_rate:.1f}× the curl loop"])


def overhead(session: Session) -> Figure:
    """fire --concurrency 1 vs a bare httpx.Client keep-alive loop posting the same bytes."""
    receiver = session.fast_receiver()
    sizes = session.sizes
    count = sizes.overhead_events
    target = Target(1.0, at_least=True)  # the goal is 1.3×
    bare_argv = peers.bare_httpx(session.folder, receiver.url(), workload.request_body(),
                                 workload.request_headers(), count)
    bare = lambda: processes.run(bare_argv, env=session.env)  # noqa: E731
    if why := _missing(session, "fire"):
        return _unmeasured("overhead", why, _rate(count, bare().seconds) + " (bare httpx)", target)
    config = session.config_for("overhead", receiver.url())
    fire, bare_loop = processes.median_interleaved(
        [lambda: session.fire(receiver, config, count, "--concurrency", "1"), bare],
        sizes.overhead_repeats)
    return Figure("overhead", _rate(count, fire.seconds), _rate(count, bare_loop.seconds) + " (bare httpx)",
                  bare_loop.seconds / fire.seconds, target,
                  [f"median of {sizes.overhead_repeats} run(s) each; CPU time {fire.cpu_seconds:.2f} s vs "
                   f"{bare_loop.cpu_seconds:.2f} s (CPU ratio {bare_loop.cpu_seconds / fire.cpu_seconds:.2f}×)"])


def parser(session: Session) -> Figure:
    """the HTTP parser: h11 (what moxiehook uses) vs httptools, same bytes, same receiver, taking turns"""
    receiver = session.fast_receiver()
    count = session.sizes.overhead_events
    body_file = session.folder / "parser-body.json"
    body_file.write_bytes(workload.request_body())
    run = processes.run([sys.executable, str(peers.BENCH_DIR / "parsers.py"), receiver.url(), str(body_file),
                         json.dumps(workload.request_headers()), str(count)], env=session.env)
    found = json.loads(run.stdout)
    h11, other = found["h11"], found["httptools"]
    return Figure("parser", f"h11: {count / h11['loop_s']:,.0f} req/s, {h11['parse_us']:.1f} µs an answer",
                  f"httptools: {count / other['loop_s']:,.0f} req/s, {other['parse_us']:.1f} µs an answer",
                  other["loop_s"] / h11["loop_s"], None,
                  [f"{count:,} POSTs on one keep-alive connection, median of 5 each, taking turns; "
                   f"ratio = httptools loop time / h11 loop time",
                   f"import: h11 {h11['import_ms']:.1f} ms, httptools {other['import_ms']:.1f} ms; "
                   f"the answer parsed: {found['answer'][:60]!r}"])


def _per_event_ms(cpu_seconds: float, events: int) -> str:
    return f"{cpu_seconds / events * 1e3:.2f} ms"


def startup(session: Session) -> Figure:
    """moxiehook endpoint list vs python -c 'import typer', median wall time."""
    config = session.config_for("startup", "http://127.0.0.1:9/hooks/clients")
    runs = session.sizes.startup_runs
    moxie, typer = processes.median_interleaved(
        [lambda: session.moxiehook(config, "endpoint", "list"),
         lambda: processes.run(peers.import_typer(), env=session.env)],
        runs)
    return Figure("startup", f"{moxie.seconds * 1000:.0f} ms", f"{typer.seconds * 1000:.0f} ms (import typer)",
                  moxie.seconds / typer.seconds, Target(1.3, at_least=False),
                  [f"median of {runs} run(s) each; .pyc compiled, PYTHONDONTWRITEBYTECODE unset"])


# What `events` runs: the table, a sample as it is, and the largest schema.
EVENTS_COMMANDS = {"events": ("events",), "show": ("events", "show", "ClientCreate"),
                   "schema": ("events", "schema", "OpportunityCreate")}


def events(session: Session) -> Figure:
    """events, events show, events schema vs python -c 'import typer', median wall time (the slowest counts)."""
    config = session.config_for("events", "http://127.0.0.1:9/hooks/clients")
    runs = session.sizes.startup_runs
    *moxie, typer = processes.median_interleaved(
        [*(lambda args=args: session.moxiehook(config, *args) for args in EVENTS_COMMANDS.values()),
         lambda: processes.run(peers.import_typer(), env=session.env)],
        runs)
    shown = ", ".join(f"{name} {timing.seconds * 1000:.0f} ms"
                      for name, timing in zip(EVENTS_COMMANDS, moxie, strict=False))
    slowest = max(timing.seconds for timing in moxie)
    return Figure("events", shown, f"{typer.seconds * 1000:.0f} ms (import typer)",
                  slowest / typer.seconds, Target(1.3, at_least=False),
                  [f"median of {runs} run(s) each; the ratio is the slowest of the three"])


def vary(session: Session) -> Figure:
    """fire --vary --count N vs fire --count N to the fast receiver: varied payloads keep the rate."""
    receiver = session.fast_receiver()
    sizes = session.sizes
    count = sizes.vary_events
    target = Target(0.8, at_least=True)
    config = session.config_for("vary", receiver.url())
    varied, fixed = processes.median_interleaved(
        [lambda: session.fire(receiver, config, count, "--vary", "--seed", "1"),
         lambda: session.fire(receiver, config, count)],
        sizes.rate_repeats)
    return Figure("vary", _rate(count, varied.seconds) + f" ({count:,} varied)",
                  _rate(count, fixed.seconds) + " (the sample)", fixed.seconds / varied.seconds, target,
                  [f"median of {sizes.rate_repeats} run(s) each; CPU an event: --vary "
                   f"{_per_event_ms(varied.cpu_seconds, count)}, the sample {_per_event_ms(fixed.cpu_seconds, count)}; "
                   "varied ClientCreate bodies average ~1.4× the sample's size "
                   "(longer arrays, non-ASCII and long text)"])


def memory(session: Session) -> Figure:
    """Peak RSS of fire --count LARGE vs --count SMALL to the fast receiver."""
    receiver = session.fast_receiver()
    sizes = session.sizes
    target = Target(1.3, at_least=False)
    if why := _missing(session, "fire"):
        return _unmeasured("memory", why, "—", target)
    config = session.config_for("memory", receiver.url())
    small = session.fire(receiver, config, sizes.memory_small)
    large = session.fire(receiver, config, sizes.memory_large)
    return Figure("memory", f"{_mib(large.max_rss_kib)} ({sizes.memory_large:,} events)",
                  f"{_mib(small.max_rss_kib)} ({sizes.memory_small:,} events)",
                  large.max_rss_kib / small.max_rss_kib, target,
                  [f"--count {sizes.memory_large:,} took {large.seconds:.1f} s "
                   f"({_rate(sizes.memory_large, large.seconds)})"])


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def tail(session: Session) -> Figure:
    """logs --tail 20 on a large log vs a small one: the tail must not read the whole file."""
    sizes = session.sizes
    target = Target(1.5, at_least=False)
    if why := _missing(session, "logs"):
        return _unmeasured("tail", why, "—", target)
    large, small = session.log(sizes.log_large), session.log(sizes.log_small)
    on_large, on_small = processes.median_interleaved(
        [lambda: session.moxiehook(large.config, "logs", "--tail", "20"),
         lambda: session.moxiehook(small.config, "logs", "--tail", "20")],
        sizes.tail_runs)
    return Figure("tail", f"{on_large.seconds * 1000:.0f} ms ({sizes.log_large:,} records)",
                  f"{on_small.seconds * 1000:.0f} ms ({sizes.log_small:,} records)",
                  on_large.seconds / on_small.seconds, target, [f"median of {sizes.tail_runs} run(s) each"])


def scan(session: Session) -> Figure:
    """logs --outcome failed --json over a large log vs jq selecting the same records."""
    log = session.log(session.sizes.log_large)
    records = log.stats.records
    target = Target(1, at_least=True)
    notes = [f"{records:,} records, {log.stats.size_bytes / 1e6:,.0f} MB; ratio = jq time / moxiehook time"]
    jq_s: float | None = None
    comparison = "jq not installed"
    if has_tool("jq"):
        jq = processes.run(peers.jq_failed(log.path))
        jq_s = jq.seconds
        comparison = f"{records / jq_s:,.0f} rec/s ({jq_s:.2f} s, jq)"
    if why := _missing(session, "logs"):
        return _unmeasured("scan", why, comparison, target, notes)
    # --tail as large as the log: every failed record is printed, as jq prints them all.
    moxie = session.moxiehook(log.config, "logs", "--outcome", "failed", "--json", "--tail", str(records))
    found = _json_records(moxie.stdout)
    if found != log.stats.failed:
        raise processes.CommandFailed(f"logs --outcome failed printed {found} records, "
                                      f"the log holds {log.stats.failed}")
    figure = f"{records / moxie.seconds:,.0f} rec/s ({moxie.seconds:.2f} s)"
    ratio = None if jq_s is None else jq_s / moxie.seconds
    return Figure("scan", figure, comparison, ratio, target, notes)



LOAD_RATE = 200  # deliveries/s of the `rate` and `latency` runs, on the 50 ms receiver
HEY_WORKERS = 20  # hey -c 20 -q 10: 200 requests/s, each worker waiting 50 ms of every 100 ms
MAX_RATE_LADDER = (1500, 2000, 3000, 4000, 5000, 6000, 8000, 10000)
HELD = 0.97  # a rate is held when the run achieves at least this share of it


def _load_run(session: Session, receiver: Any, name: str, rate: float, seconds: float) -> dict[str, Any]:
    """``fire --rate R --duration T`` to ``receiver``: its report, read from the table, checked against the receiver.

    Not ``--json``: that document also holds every delivery's record (60,000 of them at
    6,000/s for 10 s), which this process would then hold, and every child forked after
    it would count in its peak RSS.
    """
    config = session.config_for(name, receiver.url())
    before = receiver.posts()
    # Exit 1 is a run that judged itself short of what was asked (rate, late starts): its table
    # is still the figure; any other failure is an error.
    run = session.moxiehook(config, "fire", workload.EVENT, "--rate", f"{rate:g}", "--duration", f"{seconds:g}",
                            check=False)
    if run.returncode not in (0, 1):
        raise processes.CommandFailed(f"fire --rate {rate:g} exited {run.returncode}: {run.stderr[-2000:]}")
    load = _load_table(run.stdout.decode())
    received = receiver.posts() - before
    if received != load["sent"]:
        raise processes.CommandFailed(f"fire --rate {rate:g}: sent {load['sent']}, the receiver got {received}")
    return load


def _load_table(text: str) -> dict[str, Any]:
    """The figures of a load run's table (see moxiehook.cli.run_view.load_table)."""
    def number(pattern: str) -> float:
        match = re.search(pattern, text)
        if match is None:
            raise processes.CommandFailed(f"no {pattern!r} in the load table:\n{text[-2000:]}")
        return float(match.group(1).replace(",", ""))

    return {
        "achieved_rate": number(r"rate\s+([\d,.]+)/s achieved"),
        "sent": int(number(r"sent\s+([\d,]+)")),
        "late": int(number(r"late ([\d,]+)")),
        "latency_ms": {name: number(rf"{name} ([\d,.]+) ms") for name in ("p50", "p90", "p99", "max")},
        "statuses": re.search(r"statuses\s+(.*)", text).group(1),  # type: ignore[union-attr]
    }


def rate(session: Session) -> Figure:
    """fire --rate 200 --duration 6 to the 50 ms receiver: the rate achieved vs the rate asked."""
    receiver = session.realistic_receiver()
    seconds = session.sizes.load_seconds
    target = Target(HELD, at_least=True)
    if why := _missing(session, "fire"):
        return _unmeasured("rate", why, f"{LOAD_RATE}/s asked", target)
    load = _load_run(session, receiver, "rate", LOAD_RATE, seconds)
    latency = load["latency_ms"]
    return Figure("rate", f"{load['achieved_rate']:,.1f}/s ({load['sent']:,} sent, {load['late']} late)",
                  f"{LOAD_RATE}/s asked for {seconds:g} s", load["achieved_rate"] / LOAD_RATE, target,
                  [f"latency p50 {latency['p50']} ms, p90 {latency['p90']} ms, p99 {latency['p99']} ms, "
                   f"max {latency['max']} ms; statuses {load['statuses']}"])


def latency(session: Session) -> Figure:
    """The p50 latency of fire --rate 200 vs hey's at 200/s on the same 50 ms receiver (target: hey + 2 ms)."""
    receiver = session.realistic_receiver()
    seconds = session.sizes.load_seconds
    target = Target(1.0, at_least=False)
    if not has_tool("hey"):
        return _unmeasured("latency", "hey not installed", "—", target)
    if why := _missing(session, "fire"):
        return _unmeasured("latency", why, "—", target)
    moxie = _load_run(session, receiver, "latency", LOAD_RATE, seconds)["latency_ms"]["p50"]
    hey = _hey_p50(session, receiver.url(), seconds)
    return Figure("latency", f"p50 {moxie:.1f} ms", f"hey p50 {hey:.1f} ms (+ 2 ms = {hey + 2:.1f})",
                  moxie / (hey + 2), target,
                  [f"ratio = moxiehook's p50 / (hey's p50 + 2 ms); hey -c {HEY_WORKERS} -q "
                   f"{LOAD_RATE // HEY_WORKERS} -z {seconds:g}s: {LOAD_RATE}/s of the same POST"])


def _hey_p50(session: Session, url: str, seconds: float) -> float:
    body = session.folder / "hey-load-body.json"
    body.write_bytes(workload.request_body())
    argv = ["hey", "-z", f"{seconds:g}s", "-c", str(HEY_WORKERS), "-q", str(LOAD_RATE // HEY_WORKERS),
            "-m", "POST", "-D", str(body)]
    for name, value in workload.request_headers().items():
        argv += ["-H", f"{name}: {value}"]
    text = processes.run([*argv, url]).stdout.decode()
    match = re.search(r"50%+ in ([\d.]+) secs", text)
    if match is None:
        raise processes.CommandFailed(f"cannot read hey's p50:\n{text[-2000:]}")
    return float(match.group(1)) * 1000


def maxrate(session: Session) -> Figure:
    """The highest --rate held within 3 % for 10 s at the fast receiver (target: at least 1,500/s)."""
    receiver = session.fast_receiver()
    seconds = session.sizes.max_rate_seconds
    target = Target(1.0, at_least=True)
    if why := _missing(session, "fire"):
        return _unmeasured("maxrate", why, "1,500/s", target)
    held: tuple[float, dict[str, Any]] | None = None
    tried = []
    for asked in MAX_RATE_LADDER[: session.sizes.max_rate_steps]:
        load = _load_run(session, receiver, f"maxrate-{asked}", asked, seconds)
        tried.append(f"{asked:,}/s → {load['achieved_rate']:,.0f}/s "
                     f"(p99 {load['latency_ms']['p99']} ms, {load['late']:,} late)")
        session.say(f"    {tried[-1]}")
        if load["achieved_rate"] < HELD * asked:
            break
        held = (asked, load)
    if held is None:
        return Figure("maxrate", f"below {MAX_RATE_LADDER[0]:,}/s", "1,500/s", 0.0, target, tried)
    asked, load = held
    return Figure("maxrate", f"{asked:,}/s held for {seconds:g} s ({load['achieved_rate']:,.1f}/s achieved)",
                  "1,500/s", asked / 1500, target, ["tried: " + "; ".join(tried)])

def _json_records(stdout: bytes) -> int:
    """How many records a ``--json`` output holds (one array, or one object a line)."""
    text = stdout.decode()
    try:
        document = json.loads(text)
    except ValueError:
        return sum(1 for line in text.splitlines() if line.strip())
    return len(document) if isinstance(document, list) else len(document.get("records", []))


@dataclass(frozen=True)
class Benchmark:
    name: str
    run: Callable[[Session], Figure]

    @property
    def summary(self) -> str:
        return (self.run.__doc__ or "").strip().splitlines()[0]


# Defined in their own module, which uses Figure and Target from this one.
from bench.inprocess import fixture, plugin  # noqa: E402
from bench.inspector import inspector_page, listen_ui  # noqa: E402
from bench.listen import listen_print, listen_quiet, relay  # noqa: E402

BENCHMARKS: dict[str, Benchmark] = {
    benchmark.name: benchmark
    for benchmark in (Benchmark(f.__name__, f) for f in (fanout, curl, overhead, parser, rate, latency, maxrate,
                                                         startup, events, vary, memory, tail, scan, listen_quiet,
                                                         listen_print, relay, plugin, fixture, listen_ui,
                                                         inspector_page))
}

