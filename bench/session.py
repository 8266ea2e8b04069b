"""One benchmark run's shared state: temp folder, receivers, logs, how to run moxiehook.

Receivers and the large log are made on first use, so ``run.py tail`` starts
no receiver and ``run.py startup`` writes no log. Everything started here is
stopped by :meth:`Session.close` (``run.py`` uses it as a context manager, so
also on Ctrl-C and on errors).
"""

from __future__ import annotations

import compileall
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import moxiehook
from bench import load, processes, workload
from bench.receivers import NginxReceiver, Receiver

FAST_DELAY_S = 0.0
REALISTIC_DELAY_S = 0.05
CHECK_CONNECTIONS = 32  # the most any benchmark uses at once (fanout)


@dataclass(frozen=True)
class Sizes:
    """How much each benchmark does; ``quick`` shrinks everything for debugging."""

    rate_repeats: int  # runs of fanout and curl (median taken)
    fanout_events: int
    curl_fire_events: int
    curl_loop_events: int
    overhead_events: int
    overhead_repeats: int
    startup_runs: int
    memory_small: int
    memory_large: int
    log_small: int
    log_large: int
    tail_runs: int
    check_seconds: float
    vary_events: int  # fire --vary --count N and fire --count N
    fixture_deliveries: int  # moxie.fire calls per fixture loop
    load_seconds: float = 6.0  # --duration of the rate and latency load runs
    max_rate_seconds: float = 10.0  # --duration of each step of maxrate
    max_rate_steps: int = 8  # rates of the maxrate ladder tried at most


FULL = Sizes(rate_repeats=3, fanout_events=3000, curl_fire_events=2000, curl_loop_events=300, overhead_events=2000,
             overhead_repeats=5, startup_runs=21, memory_small=2000, memory_large=100_000,
             log_small=1000, log_large=200_000, tail_runs=7, check_seconds=3.0, vary_events=10_000,
             fixture_deliveries=5000)
QUICK = Sizes(rate_repeats=1, fanout_events=300, curl_fire_events=300, curl_loop_events=30, overhead_events=300,
              overhead_repeats=1, startup_runs=5, memory_small=500, memory_large=5000,
              log_small=1000, log_large=20_000, tail_runs=3, check_seconds=1.0, vary_events=1000,
              fixture_deliveries=500, load_seconds=2.0, max_rate_seconds=2.0, max_rate_steps=2)


@dataclass(frozen=True)
class ReceiverCheck:
    """A receiver measured alone, by a load generator that is not moxiehook."""

    receiver: str
    result: load.LoadResult
    delay_s: float
    served: int  # POSTs the receiver itself counted: confirms the load generator's figure

    def line(self) -> str:
        result = self.result
        errors = f", {result.errors} errors" if result.errors else ""
        ceiling = ""
        if self.delay_s:
            # With N keep-alive clients, a receiver that waits d per answer can serve at most N / d.
            best = CHECK_CONNECTIONS / self.delay_s
            ceiling = (f" = {result.rate / best:.0%} of the {best:,.0f}/s ceiling "
                       f"{CHECK_CONNECTIONS} / {self.delay_s:g} s")
        return (f"{self.receiver}: {result.rate:,.0f} req/s with {result.tool}{ceiling}{errors} "
                f"({result.requests:,} answers; the receiver counted {self.served:,} POSTs)")


@dataclass(frozen=True)
class GeneratedLog:
    path: Path
    config: Path  # a config whose log_file is this log
    stats: workload.LogStats


class Session:
    def __init__(self, sizes: Sizes, say: Callable[[str], None]) -> None:
        self.sizes = sizes
        self.say = say
        self.env = _child_env()
        self.moxiehook_argv = _moxiehook_argv()
        self._compile_package()
        self._receivers: dict[str, Receiver | NginxReceiver] = {}
        self.checks: list[ReceiverCheck] = []
        self._logs: dict[int, GeneratedLog] = {}
        self._commands: dict[str, bool] = {}
        # Last, so that nothing above can fail after the folder exists and leave it behind.
        self._stack = contextlib.ExitStack()
        self.folder = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="moxiehook-bench-")))

    # -- moxiehook as a real process ------------------------------------------------------

    def moxiehook(self, config: Path, *args: str, check: bool = True) -> processes.Run:
        return processes.run([*self.moxiehook_argv, "--config", str(config), *args],
                             env=self.env, cwd=self.folder, check=check)

    def has_command(self, name: str) -> bool:
        """Whether this moxiehook has command ``name`` (``fire``, ``logs``) yet."""
        if name not in self._commands:
            config = self.config_for(f"probe-{name}", "http://127.0.0.1:9/unused")
            self._commands[name] = self.moxiehook(config, name, "--help", check=False).returncode == 0
        return self._commands[name]

    def config_for(self, name: str, url: str, log_file: str = "log.jsonl") -> Path:
        """A fresh config (and log) in its own folder: benchmarks never share a log."""
        return workload.write_config(self.folder / name, url, log_file)

    def _compile_package(self) -> None:
        # This environment may set PYTHONDONTWRITEBYTECODE; an installed moxiehook has
        # .pyc files, so compile once and let children write bytecode like a real install.
        compileall.compile_dir(Path(moxiehook.__file__).parent, quiet=1)

    # -- receivers ----------------------------------------------------------------------

    def fast_receiver(self) -> Receiver | NginxReceiver:
        """nginx when it is installed (a C server: the figure is the client's alone), else ours."""
        return self._receiver("fast", FAST_DELAY_S, nginx=NginxReceiver.available())

    def realistic_receiver(self) -> Receiver | NginxReceiver:
        return self._receiver("realistic", REALISTIC_DELAY_S)

    def _receiver(self, name: str, delay_s: float, nginx: bool = False) -> Receiver | NginxReceiver:
        if name not in self._receivers:
            made = NginxReceiver(name) if nginx else Receiver(name, delay_s)
            receiver = self._stack.enter_context(made)
            self._receivers[name] = receiver
            before = receiver.posts()
            result = load.measure(receiver.url(), workload.request_body(), workload.request_headers(),
                                  CHECK_CONNECTIONS, self.sizes.check_seconds, self.folder)
            check = ReceiverCheck(receiver.describe(), result, delay_s, receiver.posts() - before)
            self.checks.append(check)
            self.say(f"  receiver check: {check.line()}")
        return self._receivers[name]

    def fire(self, receiver: Receiver | NginxReceiver, config: Path, count: int, *options: str) -> processes.Run:
        """``moxiehook fire ClientCreate --count N``, checked: exit 0 and N POSTs received."""
        before = receiver.posts()
        result = self.moxiehook(config, "fire", workload.EVENT, "--count", str(count), *options)
        received = receiver.posts() - before
        if received != count:
            raise processes.CommandFailed(f"fire --count {count}: the receiver got {received} POSTs")
        return result

    # -- logs -----------------------------------------------------------------------------

    def log(self, records: int) -> GeneratedLog:
        """A log of ``records`` realistic records, written once per run."""
        if records not in self._logs:
            path = self.folder / f"log-{records}.jsonl"
            self.say(f"  writing a {records:,}-record log …")
            started = time.perf_counter()
            stats = workload.write_log(path, records)
            self.say(f"  … {stats.size_bytes / 1e6:,.0f} MB, {stats.failed:,} failed, "
                     f"in {time.perf_counter() - started:.1f} s")
            config = self.config_for(f"logs-{records}", "http://127.0.0.1:9/unused", str(path))
            self._logs[records] = GeneratedLog(path, config, stats)
        return self._logs[records]

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _child_env() -> dict[str, str]:
    """The environment of every measured process: no moxiehook settings, bytecode allowed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOXIEHOOK_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _moxiehook_argv() -> list[str]:
    """The console script beside this interpreter, else ``python -m moxiehook``."""
    script = Path(sys.executable).parent / "moxiehook"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "moxiehook"]


def has_tool(name: str) -> bool:
    return shutil.which(name) is not None
