"""The pytest plugin's benchmarks: what it costs a test session, and how fast ``moxie.fire`` is.

- ``plugin``: pytest's start-up (``pytest --co -q`` on a small test folder) with the plugin
  loaded, as every session of a project where moxiehook is installed loads it, against the
  same with ``-p no:moxiehook``.
- ``fixture``: ``moxie.fire`` into a Flask app in a loop (``bench/fixture_loop.py``), against
  the 1,000 deliveries/s target.
"""

from __future__ import annotations

import json
import statistics
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
    """pytest --co -q with the moxiehook plugin loaded vs -p no:moxiehook, median CPU time."""
    suite = _suite(session.folder / "pytest-startup")
    runs = 2 * session.sizes.startup_runs  # twice start-up's: the difference looked for is tiny
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
    importtime = [sys.executable, "-X", "importtime", "-c", "import pytest; import moxiehook.testing.plugin"]
    imports = processes.run(importtime, env=session.env)
    plugin_us = int(imports.stderr.strip().splitlines()[-1].split("|")[1])  # cumulative µs of the last import
    # The ratio is of CPU time: the difference looked for (a module that imports only pytest) is far
    # below what a shared machine's wall clock moves from one run to the next.
    return Figure("plugin", f"{loaded.cpu_seconds * 1000:.0f} ms CPU (plugin loaded)",
                  f"{without.cpu_seconds * 1000:.0f} ms CPU (-p no:moxiehook)",
                  loaded.cpu_seconds / without.cpu_seconds, Target(1.05, at_least=False),
                  [f"median of {runs} run(s) each of `pytest --co -q` on {TEST_FILES * 20} tests; "
                   f"wall {loaded.seconds * 1000:.0f} ms vs {without.seconds * 1000:.0f} ms; importing the plugin "
                   f"takes {plugin_us / 1000:.1f} ms (python -X importtime)",
                   f"a session whose one test uses moxie (a WSGI app) takes {uses.seconds * 1000:.0f} ms, "
                   f"the same with a plain test {plain.seconds * 1000:.0f} ms: the first use costs "
                   f"{(uses.seconds - plain.seconds) * 1000:.0f} ms (CPU {uses.cpu_seconds * 1000:.0f} ms vs "
                   f"{plain.cpu_seconds * 1000:.0f} ms)"])


def _loop(session: Session, count: int, kind: str) -> tuple[float, float]:
    """Deliveries per second of one ``bench/fixture_loop.py`` run, and its CPU µs a delivery."""
    result = processes.run([sys.executable, str(BENCH_DIR / "fixture_loop.py"), str(count), kind], env=session.env)
    figures = json.loads(result.stdout)
    return figures["deliveries"] / figures["seconds"], figures["cpu_seconds"] / figures["deliveries"] * 1e6


def fixture(session: Session) -> Figure:
    """moxie.fire into a Flask app in a loop, deliveries/s vs the 1,000/s target."""
    sizes = session.sizes
    count = sizes.fixture_deliveries
    runs: dict[str, list[tuple[float, float]]] = {"flask": [], "wsgi": [], "flask-client": []}
    for _ in range(sizes.rate_repeats):  # in turns, as median_interleaved does
        for kind, found in runs.items():
            found.append(_loop(session, count, kind))
    (flask, flask_cpu), (wsgi, wsgi_cpu), (client, client_cpu) = (
        (statistics.median(r for r, _ in found), statistics.median(c for _, c in found)) for found in runs.values())
    return Figure("fixture", f"{flask:,.0f} deliveries/s (Flask app)", f"{FIXTURE_TARGET:,.0f}/s (target)",
                  flask / FIXTURE_TARGET, Target(1, at_least=True),
                  [f"median of {sizes.rate_repeats} run(s) of {count:,} deliveries each, after a warm-up; "
                   f"CPU a delivery {flask_cpu:.0f} µs",
                   f"into a plain WSGI callable: {wsgi:,.0f}/s ({wsgi_cpu:.0f} µs); for scale, Flask's own test "
                   f"client posting the same bytes and headers, no moxiehook: {client:,.0f}/s ({client_cpu:.0f} µs)"])
