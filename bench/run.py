"""moxiehook's benchmark suite: ``python bench/run.py [name ...] [--quick] [--list]``.

Starts its own loopback receivers, measures each one alone, then runs
moxiehook and its comparison side by side and prints every figure, its ratio
and its target, and a final table. Exit status: 0 when every target is met,
1 when one is missed or could not be measured, 130 on Ctrl-C. See bench/README.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `bench` and `moxiehook` importable

from bench import processes, report  # noqa: E402
from bench.benchmarks import BENCHMARKS, Figure  # noqa: E402
from bench.session import FULL, QUICK, Session  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.list:
        for benchmark in BENCHMARKS.values():
            print(f"{benchmark.name:10} {benchmark.summary}")
        return 0
    names = args.names or list(BENCHMARKS)
    say("moxiehook benchmarks" + (" (--quick: small counts, figures not representative)" if args.quick else ""))
    for line in report.machine():
        say(f"  {line}")
    outcomes: dict[str, Figure | str] = {}
    started = time.perf_counter()
    load_at_start = report.load_average()
    ticks_at_start = report.cpu_ticks()
    try:
        with Session(QUICK if args.quick else FULL, say) as session:
            for name in names:
                say(f"{name}: {BENCHMARKS[name].summary}")
                try:
                    figure = BENCHMARKS[name].run(session)
                except processes.CommandFailed as exc:
                    outcomes[name] = "failed: see the error above, on stderr"
                    say(f"  error: {exc}")
                    continue
                outcomes[name] = figure
                say(report.figure_line(figure))
            checks = [check.line() for check in session.checks]
    except KeyboardInterrupt:
        say("interrupted: every receiver and child process was stopped")
        return 130
    print()
    print(report.table(outcomes))
    print()
    notes = report.notes(outcomes)
    for line in notes:
        print(line)
    if notes:
        print()
    for line in report.machine()[:2]:
        print(line)
    for line in checks:
        print(f"receiver check: {line}")
    print(f"load average: {load_at_start} at the start, {report.load_average()} at the end; "
          f"run took {time.perf_counter() - started:.0f} s")
    print(f"CPU during the run (all cores): {report.busy_and_stolen(ticks_at_start, report.cpu_ticks())}")
    all_passed = all(isinstance(outcome, Figure) and outcome.verdict in ("PASS", "info")
                     for outcome in outcomes.values())
    return 0 if all_passed else 1


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="name", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="small counts, to check the suite works")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)} (choose from {', '.join(BENCHMARKS)})")
    return args


def say(line: str) -> None:
    """Progress goes to stderr, flushed at once; the final table goes to stdout."""
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
