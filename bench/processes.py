"""Running a command as a real process and measuring it: wall clock and peak memory.

Every run is bounded by a timeout and the child is killed on any exception
(Ctrl-C included), so the benchmarks never leave a process behind.
"""

from __future__ import annotations

import os
import selectors
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    seconds: float  # wall clock, from spawn to exit
    cpu_seconds: float  # user + system CPU time of this child
    max_rss_kib: int  # this child's peak resident set (ru_maxrss, KiB on Linux)
    returncode: int
    stdout: bytes
    stderr: str


class CommandFailed(RuntimeError):
    """A measured command did not do what it was asked; its figure would be meaningless."""


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S, check: bool = True) -> Run:
    """Run ``argv`` with stdout to a pipe; time it and read its own rusage.

    ``os.wait4`` gives the rusage of exactly this child (not the maximum over
    every child so far, as RUSAGE_CHILDREN would). stderr goes to a file so
    a chatty child can never block on a full pipe while we read stdout.
    """
    with tempfile.TemporaryFile() as stderr_file:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr_file,
                                   stdin=subprocess.DEVNULL, env=dict(env) if env is not None else None,
                                   cwd=cwd)
        try:
            stdout = _read_all(process, timeout_s)
            _, status, usage = os.wait4(process.pid, 0)
            seconds = time.perf_counter() - started
        except BaseException:
            process.kill()
            process.wait()
            raise
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, tell Popen
        stderr_file.seek(0)
        stderr = stderr_file.read().decode(errors="replace")
    result = Run(tuple(argv), seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss,
                 process.returncode, stdout, stderr)
    if check and result.returncode != 0:
        raise CommandFailed(f"{' '.join(argv)} exited {result.returncode}:\n{_tail(stderr)}")
    return result


def _read_all(process: subprocess.Popen[bytes], timeout_s: float) -> bytes:
    """All of the child's stdout, killing it if it runs past ``timeout_s``."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    chunks: list[bytes] = []
    fd = process.stdout.fileno()
    with selectors.DefaultSelector() as selector, process.stdout:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                process.kill()
                raise CommandFailed(f"{' '.join(map(str, process.args))} ran past {timeout_s:g} s")
            if selector.select(min(left, 1.0)):
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


@dataclass(frozen=True)
class Timing:
    """Medians over repeated runs of one command."""

    seconds: float  # wall clock
    cpu_seconds: float  # user + system: steadier than the wall clock on a busy machine


def median_interleaved(commands: Sequence[Callable[[], Run]], repeats: int) -> list[Timing]:
    """The median wall and CPU time of each command over ``repeats`` runs, taken in turns.

    Taking turns (A, B, A, B, …) spreads any slow moment of a shared machine
    over every command alike instead of penalising whichever ran then.
    """
    runs: list[list[Run]] = [[] for _ in commands]
    for _ in range(repeats):
        for index, command in enumerate(commands):
            runs[index].append(command())
    return [Timing(statistics.median(r.seconds for r in samples), statistics.median(r.cpu_seconds for r in samples))
            for samples in runs]
