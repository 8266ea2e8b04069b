"""Locust figures: deliveries/s of one Locust process with ``MoxieUser``, beside a plain ``FastHttpUser``.

    .venv/bin/python bench/locust_bench.py [--seconds 10] [--rounds 3] [--users 20]

Against nginx on loopback answering 204 at once (bench/receivers.py), one Locust process runs
``MoxieBench`` then ``PlainBench`` (bench/locust_users.py: the same bytes, the plain user built
them once), taking turns ``--rounds`` times. Two figures per run, each the median of its rounds:

- deliveries/s: requests between Locust's first and last request (its ``--json-file`` totals,
  written at exit), over that time: what the process achieved on this machine, as loaded;
- deliveries per CPU-second: the requests over the CPU time (user + system) the Locust process
  used from the start of the test to its end (bench/locust_users.py measures it in the process,
  leaving out Locust's start-up). One Locust process is one core at most, so this is its rate on
  a core of its own, and it moves much less than the rate when other work shares the machine:
  the compared figure.

Then one master and two workers run ``MoxieBench``: the two-worker figure (deliveries/s). The
target: MoxieUser ≥ 0.8 × the plain user, per CPU-second. Exit status 0 when met, 1 when not (or
when a run failed).

Needs the ``locust`` extra and nginx. Every process runs on 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `bench` and `moxiehook` importable

from bench.receivers import NginxReceiver  # noqa: E402

TARGET = 0.8
USERS_FILE = Path(__file__).resolve().parent / "locust_users.py"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def write_config(folder: Path, url: str) -> Path:
    path = folder / "moxiehook.toml"
    path.write_text(f"""\
version = 1

[endpoints.bench]
auth = {{ type = "bearer", token = "${{BENCH_TOKEN}}" }}
headers = {{ "X-Team" = "ops" }}
signing_secret = "{SECRET}"

[[endpoints.bench.mappings]]
event = "ClientCreate"
url = "{url}"
""")
    return path


def locust(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "locust", "-f", str(USERS_FILE), *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait(process: subprocess.Popen[str], timeout: float) -> str:
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
        raise RuntimeError(f"locust did not end within {timeout:g} s:\n{out[-2000:]}") from None
    if process.returncode != 0:
        raise RuntimeError(f"locust exited {process.returncode}:\n{out[-2000:]}")
    return out


def totals(json_prefix: Path) -> tuple[int, float]:
    """The run's one entry: its request count and its first-to-last request time."""
    entries = json.loads(Path(f"{json_prefix}.json").read_text())
    (entry,) = entries
    if entry["num_failures"]:
        raise RuntimeError(f"{entry['num_failures']} of {entry['num_requests']} requests failed")
    return int(entry["num_requests"]), float(entry["last_request_timestamp"] - entry["start_time"])


def rate(json_prefix: Path) -> float:
    count, elapsed = totals(json_prefix)
    return count / elapsed


def run_one(user: str, seconds: int, users: int, env: dict[str, str], folder: Path,
            tag: str) -> tuple[float, float]:
    """(deliveries/s, deliveries per CPU-second) of one single-process run of ``user``."""
    prefix = folder / tag
    cpu_file = folder / f"{tag}-cpu.json"
    wait(locust(["--headless", "-u", str(users), "-r", str(users * 10), "-t", f"{seconds}s",
                 "--json-file", str(prefix), user], {**env, "BENCH_CPU_FILE": str(cpu_file)}, folder), seconds + 60)
    count, elapsed = totals(prefix)
    cpu = json.loads(cpu_file.read_text())
    return count / elapsed, cpu["requests"] / cpu["cpu_s"]


def run_two_workers(seconds: int, users: int, env: dict[str, str], folder: Path) -> float:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    prefix = folder / "two-workers"
    master = locust(["--master", "--headless", "--expect-workers", "2", "--master-bind-host", "127.0.0.1",
                     "--master-bind-port", str(port), "-u", str(users * 2), "-r", str(users * 20),
                     "-t", f"{seconds}s", "--json-file", str(prefix), "MoxieBench"], env, folder)
    workers = [locust(["--worker", "--master-host", "127.0.0.1", "--master-port", str(port), "MoxieBench"],
                      env, folder) for _ in range(2)]
    try:
        wait(master, seconds + 90)
    finally:
        for worker in workers:
            try:
                worker.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.communicate()
    return rate(prefix)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--users", type=int, default=20, help="users per Locust process")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="moxiehook-bench-locust-") as name, NginxReceiver("fast") as nginx:
        folder = Path(name)
        config = write_config(folder, nginx.url("/hooks/clients"))
        env = {**os.environ, "MOXIEHOOK_CONFIG": str(config), "BENCH_TOKEN": "t0k"}
        wall: dict[str, list[float]] = {"MoxieBench": [], "PlainBench": []}
        per_cpu: dict[str, list[float]] = {"MoxieBench": [], "PlainBench": []}
        try:
            for number in range(args.rounds):
                for user in ("MoxieBench", "PlainBench"):
                    achieved, efficiency = run_one(user, args.seconds, args.users, env, folder, f"{user}-{number}")
                    wall[user].append(achieved)
                    per_cpu[user].append(efficiency)
                    print(f"  round {number + 1}: {user} {achieved:,.0f}/s, {efficiency:,.0f} per CPU-second",
                          file=sys.stderr, flush=True)
            two = run_two_workers(args.seconds, args.users, env, folder)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    moxie, plain = (statistics.median(per_cpu[u]) for u in ("MoxieBench", "PlainBench"))
    moxie_wall, plain_wall = (statistics.median(wall[u]) for u in ("MoxieBench", "PlainBench"))
    ratio = moxie / plain
    print(f"one process, MoxieUser:          {moxie:7,.0f} deliveries per CPU-second, {moxie_wall:7,.0f}/s achieved")
    print(f"one process, plain FastHttpUser: {plain:7,.0f} requests per CPU-second,   {plain_wall:7,.0f}/s achieved")
    print(f"ratio (per CPU-second, medians of {args.rounds}): {ratio:.2f}x (target >= {TARGET}x) "
          f"{'met' if ratio >= TARGET else 'MISSED'}")
    print(f"master + two workers, MoxieUser: {two:7,.0f} deliveries/s achieved ({os.cpu_count()} cores)")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
