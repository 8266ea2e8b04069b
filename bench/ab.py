"""Another version of moxiehook against this one, taking turns: ``python bench/ab.py DIR [ROUNDS]``.

DIR holds another version's ``moxiehook`` package (``git archive 15521e4 moxiehook | tar -x -C
/tmp/before`` gives the hand-written HTTP parser); its children run with ``PYTHONPATH=DIR``.
Each round runs, for each version, ``fire --count 2000 --concurrency 1`` (wall clock and CPU
time) and ``fire --rate 1500 --duration 10`` (the rate achieved, late starts, p99) against the
fast receiver, then prints the medians.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `bench` and `moxiehook` importable

from bench import benchmarks  # noqa: E402
from bench.session import FULL, Session  # noqa: E402


def main() -> None:
    other, rounds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with Session(FULL, lambda line: print(line, file=sys.stderr, flush=True)) as session:
        receiver = session.fast_receiver()
        base = dict(session.env)
        config = session.config_for("ab", receiver.url())
        runs: dict[str, list[tuple[float, float]]] = {"other": [], "this": []}
        for _ in range(rounds):
            for label, extra in (("other", {"PYTHONPATH": other}), ("this", {})):
                session.env = {**base, **extra}
                run = session.fire(receiver, config, 2000, "--concurrency", "1")
                runs[label].append((run.seconds, run.cpu_seconds))
                load = benchmarks._load_run(session, receiver, "ab-rate", 1500, 10)
                print(f"{label}: {2000 / run.seconds:,.0f} ev/s, CPU {run.cpu_seconds:.2f} s; --rate 1500: "
                      f"{load['achieved_rate']:,.1f}/s, {load['late']} late, p99 {load['latency_ms']['p99']} ms",
                      flush=True)
        for label, timings in runs.items():
            print(f"{label}: median {2000 / statistics.median(t for t, _ in timings):,.0f} ev/s, "
                  f"median CPU {statistics.median(c for _, c in timings):.3f} s")


if __name__ == "__main__":
    main()
