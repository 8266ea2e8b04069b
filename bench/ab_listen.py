"""``listen`` of another version against this one, taking turns: ``python bench/ab_listen.py DIR [ROUNDS]``.

DIR holds another version's ``moxiehook`` package (``git archive 49e0e44 moxiehook | tar -x -C
/tmp/before``); its children run with ``PYTHONPATH=DIR``. Each round measures, one after the
other, the bare ``ThreadingHTTPServer``, then ``listen --quiet`` and ``listen --quiet --ui`` (a
client reading ``/api/stream``) of each version, exactly as the ``listen_quiet`` and ``listen_ui``
benchmarks do (``hey -n 30,000 -c 8``, listen's time running until every request is printed).
Prints every round's ratios to the bare server, then their medians and spread.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `bench` and `moxiehook` importable

from bench import benchmarks  # noqa: E402, F401 - registers the benchmarks before bench.listen is read
from bench.inspector import _listen_ui_rate  # noqa: E402
from bench.listen import _bare_rate, _listen_rate, _requests  # noqa: E402
from bench.session import FULL, Session  # noqa: E402


def main() -> None:
    other, rounds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with Session(FULL, lambda line: print(line, file=sys.stderr, flush=True)) as session:
        count = _requests(session)
        base = dict(session.env)
        ratios: dict[str, list[float]] = {}
        for number in range(rounds):
            bare = _bare_rate(session, count)
            line = [f"round {number + 1}: bare {bare:,.0f} req/s"]
            for label, extra in (("other", {"PYTHONPATH": other}), ("this", {})):
                session.env = {**base, **extra}
                for name, rate in (("listen_quiet", _listen_rate(session, count, "--quiet")[0]),
                                   ("listen_ui", _listen_ui_rate(session, count)[0])):
                    ratios.setdefault(f"{name} {label}", []).append(rate / bare)
                    line.append(f"{name} {label} {rate:,.0f} ({rate / bare:.2f}×)")
            session.env = base
            print("; ".join(line), flush=True)
        for key, values in ratios.items():
            print(f"{key}: median {statistics.median(values):.2f}× of the bare server "
                  f"(from {min(values):.2f} to {max(values):.2f}, {rounds} rounds)")


if __name__ == "__main__":
    main()
