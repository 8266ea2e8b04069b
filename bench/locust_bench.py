"""Locust figures: the cost of MoxieUser beside a plain FastHttpUser, and deliveries/s of Locust runs.

    .venv/bin/python bench/locust_bench.py [--seconds 6] [--rounds 6] [--users 20]

Against nginx on loopback answering 204 at once (bench/receivers.py), with the two users of
bench/locust_users.py: ``MoxieBench`` (MoxieUser, building each delivery as ``fire`` does) and
``PlainBench`` (a plain FastHttpUser posting one such delivery, built once: the same bytes).

- The compared figure: requests per CPU-second of each, taking turns ``--rounds`` times in one
  process (Locust as a library, ``locust_users.alternate``), the median of each. One Locust
  process uses one core at most, so this is its rate on a core of its own; taking turns in one
  warm process, both meet the same machine as other work comes and goes. Target: MoxieUser
  ≥ 0.8 × the plain user.
- Deliveries/s achieved by ``locust --headless`` runs (wall clock, between Locust's first and
  last request, from its ``--json-file``): one process (one worker) with each user, then a master
  and two workers with MoxieUser. These move with whatever else the machine runs.

Exit status 0 when the target is met, 1 when not (or when a run failed). Needs the ``locust``
extra and nginx. Every process runs on 127.0.0.1 and is stopped at the end.
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


def run_one(user: str, seconds: int, users: int, env: dict[str, str], folder: Path) -> float:
    """Deliveries/s of one single-process ``locust --headless`` run of ``user``."""
    prefix = folder / user
    wait(locust(["--headless", "-u", str(users), "-r", str(users * 4), "-t", f"{seconds}s",
                 "--json-file", str(prefix), user], env, folder), seconds + 60)
    return rate(prefix)


def per_cpu(rounds: int, seconds: int, users: int, env: dict[str, str], folder: Path) -> dict[str, list[float]]:
    process = subprocess.run([sys.executable, str(USERS_FILE), str(rounds), str(seconds), str(users)], env=env,
                             cwd=folder, capture_output=True, text=True, timeout=rounds * 2 * (seconds + 5) + 60)
    if process.returncode != 0:
        raise RuntimeError(f"bench/locust_users.py exited {process.returncode}:\n{process.stderr[-2000:]}")
    figures: dict[str, list[float]] = json.loads(process.stdout)
    return figures


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
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--users", type=int, default=20, help="users per Locust process")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="moxiehook-bench-locust-") as name, NginxReceiver("fast") as nginx:
        folder = Path(name)
        config = write_config(folder, nginx.url("/hooks/clients"))
        env = {**os.environ, "MOXIEHOOK_CONFIG": str(config), "BENCH_TOKEN": "t0k"}
        try:
            figures = per_cpu(args.rounds, args.seconds, args.users, env, folder)
            for number, (moxie_round, plain_round) in enumerate(zip(*figures.values(), strict=True), 1):
                print(f"  round {number}: MoxieBench {moxie_round:,.0f}, PlainBench {plain_round:,.0f} "
                      "per CPU-second", file=sys.stderr, flush=True)
            achieved = {user: run_one(user, args.seconds, args.users, env, folder) for user in figures}
            two = run_two_workers(args.seconds, args.users, env, folder)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    moxie, plain = (statistics.median(figures[user]) for user in ("MoxieBench", "PlainBench"))
    ratio = moxie / plain
    print(f"MoxieUser:          {moxie:7,.0f} deliveries per CPU-second (median of {args.rounds})")
    print(f"plain FastHttpUser: {plain:7,.0f} requests per CPU-second, the same bytes")
    print(f"ratio: {ratio:.2f}x (target >= {TARGET}x) {'met' if ratio >= TARGET else 'MISSED'}")
    print(f"one process achieved: MoxieUser {achieved['MoxieBench']:,.0f}/s, "
          f"plain FastHttpUser {achieved['PlainBench']:,.0f}/s")
    print(f"master + two workers achieved, MoxieUser: {two:,.0f}/s ({os.cpu_count()} cores)")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
