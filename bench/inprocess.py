"""The pytest plugin's benchmarks: what it costs a test session, and how fast ``moxie.fire`` is.

- ``plugin``: pytest's start-up (``pytest --co -q`` on a small test folder) with the plugin
  loaded, as every session of a project where moxiehook is installed loads it, against the
  same with ``-p no:moxiehook``.
- ``fixture``: ``moxie.fire`` into a Flask app in a loop (``bench/fixture_loop.py``), against
  the 1,000 deliveries/s target.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench import processes
from bench.benchmarks import Figure, Target
from bench.peers import BENCH_DIR
from bench.session import Session

FIXTURE_TARGET = 1000.0  # deliveries/s
TEST_FILES = 5  # a small suite: 5 files of 20 tests each
USES_MOXIE = """
def app(environ, start_response):
    start_response("204 No Content", [])
    return []

def test_fires(moxie):
    assert moxie.fire("ClientCreate", app=app).status_code == 204
"""


def _suite(folder: Path) -> Path:
    """A folder of plain tests that never ask for ``moxie``."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(TEST_FILES):
        tests = "\n".join(f"def test_{n}():\n    assert {n} + 1 > {n}\n" for n in range(20))
        (folder / f"test_module_{index}.py").write_text(tests)
    return folder


def _pytest(folder: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options, str(folder)]


def plugin(session: Session) -> Figure:
    """pytest --co -q with the moxiehook plugin loaded vs -p no:moxiehook, median wall time."""
    suite = _suite(session.folder / "pytest-startup")
    runs = session.sizes.startup_runs
    collect = lambda *options: processes.run(_pytest(suite, "--co", *options), env=session.env, cwd=suite)  # noqa: E731
    loaded, without = processes.median_interleaved([collect, lambda: collect("-p", "no:moxiehook")], runs)
    # What the first test that asks for `moxie` adds (httpx and the rest of moxiehook are imported then).
    used_folder = session.folder / "pytest-uses-moxie"
    used_folder.mkdir(exist_ok=True)
    (used_folder / "test_uses.py").write_text(USES_MOXIE)
    (used_folder / "test_plain.py").write_text("def test_fires():\n    assert True\n")
    run_one = lambda name: processes.run(_pytest(used_folder / name), env=session.env, cwd=used_folder)  # noqa: E731
    uses, plain = processes.median_interleaved([lambda: run_one("test_uses.py"), lambda: run_one("test_plain.py")],
                                               max(3, runs // 3))
    return Figure("plugin", f"{loaded.seconds * 1000:.0f} ms (plugin loaded)",
                  f"{without.seconds * 1000:.0f} ms (-p no:moxiehook)",
                  loaded.seconds / without.seconds, Target(1.05, at_least=False),
                  [f"median of {runs} run(s) each of `pytest --co -q` on {TEST_FILES * 20} tests; "
                   f"CPU {loaded.cpu_seconds * 1000:.0f} ms vs {without.cpu_seconds * 1000:.0f} ms",
                   f"a session whose one test uses moxie (a WSGI app) takes {uses.seconds * 1000:.0f} ms, "
                   f"the same with a plain test {plain.seconds * 1000:.0f} ms: the first use costs "
                   f"{(uses.seconds - plain.seconds) * 1000:.0f} ms"])


def _loop(session: Session, count: int, kind: str) -> float:
    """Deliveries per second of one ``bench/fixture_loop.py`` run."""
    result = processes.run([sys.executable, str(BENCH_DIR / "fixture_loop.py"), str(count), kind], env=session.env)
    figures = json.loads(result.stdout)
    return float(figures["deliveries"] / figures["seconds"])


def fixture(session: Session) -> Figure:
    """moxie.fire into a Flask app in a loop, deliveries/s vs the 1,000/s target."""
    sizes = session.sizes
    count = sizes.fixture_deliveries
    rates: dict[str, list[float]] = {"flask": [], "wsgi": [], "flask-client": []}
    for _ in range(sizes.rate_repeats):  # in turns, as median_interleaved does
        for kind, found in rates.items():
            found.append(_loop(session, count, kind))
    flask, wsgi, client = (sorted(found)[len(found) // 2] for found in rates.values())
    return Figure("fixture", f"{flask:,.0f} deliveries/s (Flask app)", f"{FIXTURE_TARGET:,.0f}/s (target)",
                  flask / FIXTURE_TARGET, Target(1, at_least=True),
                  [f"median of {sizes.rate_repeats} run(s) of {count:,} deliveries each, after a warm-up",
                   f"into a plain WSGI callable: {wsgi:,.0f}/s; for scale, Flask's own test client posting "
                   f"the same bytes and headers (no moxiehook): {client:,.0f}/s"])
