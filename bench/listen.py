"""``listen`` benchmarks: how fast it answers, printing or not, and the relay under 200 senders.

- ``listen_quiet``: ``listen --quiet`` vs a bare stdlib ``ThreadingHTTPServer``
  (``bench/bare_server.py``), both loaded by ``hey -c 8`` with the same POST.
- ``listen_print``: the same with ``listen`` printing each request in full,
  stdout to a file.
- ``relay``: ``listen --forward-to`` the fast receiver, 4 processes × 50
  keep-alive senders for a minute (5 s with ``--quick``): every request must
  be answered once, reach the app once and be logged once.

``listen``'s rate counts until it has printed every request: after ``hey``
ends, ``listen`` is stopped and the time it takes to print what is still
queued (and exit) is added. Each run starts its own server. Without ``hey``
the two rate figures are skipped (``apt-get install hey``).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import processes, workload
from bench.benchmarks import Figure, Target, _unmeasured
from bench.peers import BENCH_DIR
from bench.session import QUICK, Session, has_tool

HEY_CONNECTIONS = 8
RELAY_PROCESSES = 4
RELAY_THREADS = 50


def _requests(session: Session) -> int:
    # Three times the printer's queue bound (10,000), so the steady state dominates.
    return 5_000 if session.sizes is QUICK else 30_000


@contextmanager
def _serving(session: Session, argv: list[str], ready: Path,
             stdout: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start a server that writes its URL to ``ready``; yield (url, process); kill it at the end."""
    ready.unlink(missing_ok=True)
    with open(stdout, "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                   env=session.env, cwd=session.folder)
    try:
        for _ in range(400):  # 20 s at most
            if ready.exists() or process.poll() is not None:
                break
            time.sleep(0.05)
        if not ready.exists():
            raise processes.CommandFailed(f"{argv[0]} did not become ready within 20 s")
        yield ready.read_text().strip(), process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def _hey(session: Session, url: str, count: int) -> tuple[float, dict[str, int]]:
    """``hey -n COUNT -c 8`` POSTing the benchmark body: (seconds, answers by status)."""
    body = session.folder / "hey-body.json"
    body.write_bytes(workload.request_body())
    argv = ["hey", "-n", str(count), "-c", str(HEY_CONNECTIONS), "-m", "POST", "-D", str(body)]
    for name, value in workload.request_headers().items():
        argv += ["-T", value] if name.lower() == "content-type" else ["-H", f"{name}: {value}"]
    run = processes.run([*argv, url + "/hooks/clients"])
    text = run.stdout.decode()
    statuses = {code: int(n) for code, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", text)}
    total = re.search(r"Total:\s+([\d.]+) secs", text)
    if total is None or sum(statuses.values()) != count:
        raise processes.CommandFailed(f"hey did not report {count} answers:\n{text[-2000:]}")
    return float(total.group(1)), statuses


def _bare_rate(session: Session, count: int) -> float:
    ready = session.folder / "bare.ready"
    argv = [sys.executable, str(BENCH_DIR / "bare_server.py"), str(ready)]
    with _serving(session, argv, ready, session.folder / "bare.out") as (url, _):
        seconds, statuses = _hey(session, url, count)
    if statuses != {"204": count}:
        raise processes.CommandFailed(f"the bare server answered {statuses}")
    return count / seconds


def _listen_rate(session: Session, count: int, *options: str) -> tuple[float, int]:
    """Requests/s until every request was answered AND printed; and the lines printed."""
    stdout = session.folder / "listen.out"
    config = session.config_for("listen", "http://127.0.0.1:9/unused")
    ready = session.folder / "listen.ready"
    argv = [*session.moxiehook_argv, "--config", str(config), "listen", "--port", "0", *options,
            "--ready-file", str(ready)]
    with _serving(session, argv, ready, stdout) as (url, process):
        seconds, statuses = _hey(session, url, count)
        drained = time.perf_counter()
        process.send_signal(signal.SIGINT)  # prints what is still queued, then exits
        process.wait(timeout=120)
        seconds += time.perf_counter() - drained
    if statuses != {"204": count}:
        raise processes.CommandFailed(f"listen answered {statuses}")
    printed = stdout.read_text(errors="replace").count("→ 204")
    if printed != count:
        raise processes.CommandFailed(f"listen printed {printed} of {count} requests")
    return count / seconds, printed


def _versus_bare(session: Session, name: str, target: Target, *options: str) -> Figure:
    count = _requests(session)
    if not has_tool("hey"):
        return _unmeasured(name, "hey not installed (apt-get install hey)", "—", target)
    repeats = session.sizes.rate_repeats
    bare_rates, listen_rates = [], []
    for _ in range(repeats):  # taking turns, so a busy moment hits both alike
        bare_rates.append(_bare_rate(session, count))
        listen_rates.append(_listen_rate(session, count, *options)[0])
    bare, listen = sorted(bare_rates)[repeats // 2], sorted(listen_rates)[repeats // 2]
    return Figure(name, f"{listen:,.0f} req/s", f"{bare:,.0f} req/s (bare ThreadingHTTPServer)", listen / bare,
                  target, [f"hey -n {count:,} -c {HEY_CONNECTIONS}, median of {repeats}; listen's time runs "
                           "until every request is printed; stdout to a file"])


def listen_quiet(session: Session) -> Figure:
    """listen --quiet vs a bare ThreadingHTTPServer, hey -c 8, same body."""
    return _versus_bare(session, "listen_quiet", Target(0.5, at_least=True), "--quiet")


def listen_print(session: Session) -> Figure:
    """listen printing each request (stdout to a file) vs a bare ThreadingHTTPServer."""
    return _versus_bare(session, "listen_print", Target(0.2, at_least=True))


def relay(session: Session) -> Figure:
    """listen --forward-to under 200 concurrent senders: nothing lost, nothing twice."""
    seconds = 5.0 if session.sizes is QUICK else 60.0
    target = Target(1, at_least=True)
    receiver = session.fast_receiver()
    config = session.config_for("relay", receiver.url())
    log = config.parent / "log.jsonl"
    ready = session.folder / "relay.ready"
    argv = [*session.moxiehook_argv, "--config", str(config), "listen", "--port", "0", "--quiet",
            "--forward-to", receiver.url(""), "--ready-file", str(ready)]
    before = receiver.posts()
    with _serving(session, argv, ready, session.folder / "relay.out") as (url, process):
        host, port = url.removeprefix("http://").rsplit(":", 1)
        senders = [subprocess.Popen([sys.executable, str(BENCH_DIR / "relay_senders.py"), host, port, f"p{i}",
                                     str(RELAY_THREADS), str(seconds)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=session.env)
                   for i in range(RELAY_PROCESSES)]
        results: list[tuple[str, int]] = []
        try:
            for sender in senders:
                out, err = sender.communicate(timeout=seconds + 300)
                if sender.returncode != 0:
                    raise processes.CommandFailed(f"a sender failed: {err.decode()[-2000:]}")
                results += [(key, status) for key, status in json.loads(out)]
        finally:
            for sender in senders:
                if sender.poll() is None:
                    sender.kill()
                    sender.wait()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    sent = len(results)
    keys = {key for key, _ in results}
    answered = sum(1 for _, status in results if status == 204)
    at_app = receiver.posts() - before
    logged = [json.loads(line)["request"]["body"]["key"] for line in log.read_text().splitlines()
              if '"mode":"forward"' in line]
    duplicated = (sent - len(keys)) + (len(logged) - len(set(logged)))
    exact = answered == sent == at_app == len(logged) and set(logged) == keys and not duplicated
    return Figure("relay", f"{sent:,} requests in {seconds:g} s ({sent / seconds:,.0f}/s), "
                           f"{sent - answered} not answered 204, {duplicated} twice",
                  f"{at_app:,} at the app, {len(logged):,} logged", 1.0 if exact else at_app / max(sent, 1), target,
                  [f"{RELAY_PROCESSES} processes × {RELAY_THREADS} keep-alive connections to listen --forward-to "
                   "the fast receiver; ratio 1 = every request answered, at the app and in the log exactly once"])
