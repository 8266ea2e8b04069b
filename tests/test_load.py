"""Load runs: ``fire EVENT --rate R --duration T`` (send/load.py), against the loopback receiver.

No assertion here depends on how fast this machine is: counts, records, the report's
shape, and lateness only where it cannot be otherwise (answers far slower than the
interval between starts). Speed is measured in bench/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import standardwebhooks

from moxiehook.errors import UsageError
from moxiehook.log import Attempt, DeliveryRecord, parse_duration
from moxiehook.send import LoadRun, check_load
from tests.conftest import Answer, Receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

ENDPOINT = """
[endpoints.crm]
auth = { type = "bearer", token = "t0k" }
[[endpoints.crm.mappings]]
event = "ClientCreate"
url = "URL/crm"
"""


def write_config(path: Path, receiver: Receiver, extra: str = "") -> Path:
    path.write_text(path.read_text() + ENDPOINT.replace("URL", receiver.url("")) + extra)
    return path


def ran_as_asked(code: int, stderr: str) -> bool:
    """A load run that delivered everything: exit 0, or exit 1 only because this (shared, busy)
    machine did not keep the schedule, which the run must then say in its one verdict line.
    Whether a run keeps its rate is this machine's speed, measured in bench/, not asserted here."""
    if code == 0:
        return True
    verdict = [line for line in stderr.splitlines() if line.startswith("✗ the load run failed: ")]
    reasons = verdict[0].removeprefix("✗ the load run failed: ").split("; ") if len(verdict) == 1 else ["?"]
    return code == 1 and all(r.startswith("achieved rate") or "were late" in r for r in reasons)


def log_records(config_path: Path) -> list[dict]:
    log = config_path.parent / "log.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


# ---------------------------------------------------------------------------
# the schedule, on a clock of its own


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def _record(outcome: str = "delivered", status: int | None = 204, error: str | None = None,
            ms: float = 5.0) -> DeliveryRecord:
    return DeliveryRecord(id="dlv_1", event_id="evt_1", event="ClientCreate", endpoint="crm", url="http://x/",
                          mode="load", replay_of=None, at="", outcome=outcome, status=status, error=error,
                          duration_ms=ms, attempts=[Attempt("", status, error, ms)] if outcome != "skipped" else [])


def test_starts_follow_the_rate_and_never_wait_for_answers() -> None:
    clock = FakeClock()
    run = LoadRun(rate=10, count=5, concurrency=8, clock=clock, sleep=clock.sleep)
    taken = []
    for job in run.jobs(iter(range(100))):  # more jobs than the schedule starts
        taken.append((job, clock.now))  # nothing finishes: an open model starts the next one anyway
    assert [job for job, _ in taken] == [0, 1, 2, 3, 4]
    assert [round(at - 100, 6) for _, at in taken] == [0, 0.1, 0.2, 0.3, 0.4]
    report = run.report()
    assert report.late == 0 and report.duration_s == 0.5


def test_a_start_that_finds_every_slot_busy_is_late_not_dropped() -> None:
    clock = FakeClock()
    run = LoadRun(rate=100, count=4, concurrency=1, clock=clock, sleep=clock.sleep)
    jobs = run.jobs(iter(range(4)))
    assert next(jobs) == 0  # at 0: the only slot is busy until 0.05
    clock.now += 0.05
    run.finished(_record())
    assert next(jobs) == 1  # due at 0.01, taken at 0.05: late
    run.finished(_record())  # answered at once: the slot is free from 0.05 on
    assert next(jobs) == 2  # due at 0.02, while the slot was busy: late too
    run.finished(_record())
    assert next(jobs) == 3  # due at 0.03, and so on: every start is made, none dropped
    run.finished(_record())
    assert list(jobs) == []
    report = run.report()
    assert report.late == 3 and report.sent == 4


def test_a_thread_slow_to_take_a_job_while_a_slot_was_free_is_not_late() -> None:
    clock = FakeClock()
    run = LoadRun(rate=100, count=3, concurrency=2, clock=clock, sleep=clock.sleep)
    jobs = run.jobs(iter(range(3)))
    next(jobs)
    clock.now += 0.03  # job 1 (due at 0.01) asked for late, but one of two slots was free all along
    next(jobs)
    assert run.report().late == 0


def test_the_report_counts_statuses_errors_and_percentiles() -> None:
    clock = FakeClock()
    run = LoadRun(rate=1000, count=104, concurrency=200, clock=clock, sleep=clock.sleep)
    for number, _ in enumerate(run.jobs(iter(range(104)))):
        if number < 100:
            run.finished(_record(ms=float(number + 1)))  # 1 … 100 ms
        elif number == 100:
            run.finished(_record("failed", 503, "HTTP 503 Service Unavailable (after 3 attempts)", 7.0))
        elif number == 101:
            run.finished(_record("failed", None, "timeout: no answer within 2 s", 2000.0))
        elif number == 102:
            run.finished(_record("failed", None, "connection error: connection refused", 0.5))
        else:
            run.finished(_record("skipped", None, "endpoint 'crm' was disabled during this run"))
    report = run.report().to_dict()
    assert report["sent"] == 103  # the skipped one was not sent
    assert report["statuses"] == {"204": 100, "503": 1}
    assert report["errors"] == {"connection refused": 1, "timeout": 1}  # refused: nobody listening, not slow
    assert report["latency_ms"] == {"p50": 50.0, "p90": 91.0, "p99": 100.0, "max": 2000.0}  # nearest rank of 103
    assert set(report) == {"requested_rate", "achieved_rate", "duration_s", "sent", "late", "latency_ms",
                           "statuses", "errors", "problems"}


@pytest.mark.parametrize(("text", "seconds"), [("6", 6), ("30s", 30), ("2m", 120), ("1.5h", 5400), (" 7d ", 604800),
                                                ("0.25", 0.25)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("rate", "duration"), [(0, 1), (-5, 1), (float("nan"), 1), (float("inf"), 1),
                                                (1e9, 1), (10, 0), (10, 8 * 86400), (0.1, 1)])
def test_rates_and_durations_that_make_no_sense(rate: float, duration: float) -> None:
    with pytest.raises(UsageError):
        check_load(rate, duration)


# ---------------------------------------------------------------------------
# through the CLI


def test_a_load_run_logs_every_delivery_as_load_and_reports_beside_the_summary(
        cli, config_path: Path, receiver: Receiver) -> None:
    write_config(config_path, receiver)
    result = cli("fire", "ClientCreate", "--rate", "50", "--duration", "0.4", "--json")
    assert ran_as_asked(result.exit_code, result.stderr), result.stderr
    document = json.loads(result.stdout)
    assert {"delivered", "failed", "skipped", "disabled", "deliveries", "load"} <= set(document)
    load = document["load"]
    assert set(load) == {"requested_rate", "achieved_rate", "duration_s", "sent", "late", "latency_ms",
                         "statuses", "errors", "problems"}
    assert load["requested_rate"] == 50 and load["sent"] == 20 and load["statuses"] == {"200": 20}
    assert load["errors"] == {} and set(load["latency_ms"]) == {"p50", "p90", "p99", "max"}
    latency = load["latency_ms"]
    assert latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    records = log_records(config_path)
    assert len(records) == 20 and {r["mode"] for r in records} == {"load"}
    assert len({r["event_id"] for r in records}) == 20  # a fresh copy for each delivery, as --count makes
    assert len(receiver.requests) == 20


def test_the_table_on_the_terminal(cli, config_path: Path, receiver: Receiver) -> None:
    write_config(config_path, receiver)
    result = cli("fire", "ClientCreate", "--rate", "20", "--duration", "0.25")
    assert ran_as_asked(result.exit_code, result.stderr), result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["rate", "sent", "latency", "statuses", "errors"]
    assert "5 delivered, 0 failed, 0 skipped" in result.stderr
    assert all(len(line) <= 80 for line in lines)


def test_starts_are_late_when_every_slot_waits_on_a_slow_receiver(
        cli, config_path: Path, receiver: Receiver) -> None:
    """One slot, answers taking 4 intervals: each start after the first finds the slot busy."""
    receiver.answer("/crm", Answer(status=204, delay=0.1))
    write_config(config_path, receiver)
    result = cli("fire", "ClientCreate", "--rate", "40", "--duration", "0.25", "--concurrency", "1", "--json")
    assert result.exit_code == 1, result.stderr  # every delivery went through, but not at the rate asked
    load = json.loads(result.stdout)["load"]
    assert load["sent"] == 10 and load["late"] == 9  # late, and still every one sent
    assert "9 of 10 starts (90.0 %) were late" in result.stderr.splitlines()[-1]
    records = log_records(config_path)
    assert [len(r["attempts"]) for r in records] == [1] * 10, [r["attempts"] for r in records]
    assert len(receiver.requests) == 10


def test_disabling_still_applies_mid_run(cli, config_path: Path, receiver: Receiver) -> None:
    receiver.answer("/crm", Answer(status=401))
    write_config(config_path, receiver)
    result = cli("fire", "ClientCreate", "--rate", "40", "--duration", "0.25", "--concurrency", "1", "--json")
    assert result.exit_code == 1
    assert "endpoint 'crm' was disabled" in result.stderr
    document = json.loads(result.stdout)
    assert document["load"]["sent"] == 1 and document["load"]["statuses"] == {"401": 1}
    assert document["failed"] == 1 and document["skipped"] == 9
    records = [r for r in log_records(config_path) if r["kind"] == "delivery"]
    assert [r["outcome"] for r in records] == ["failed"] + ["skipped"] * 9
    assert {r["mode"] for r in records} == {"load"}
    assert len(receiver.requests) == 1


def test_varied_and_signed_payloads_in_a_load_run(cli, config_path: Path, receiver: Receiver) -> None:
    write_config(config_path, receiver)
    text = config_path.read_text().replace('auth = { type = "bearer", token = "t0k" }',
                                           f'auth = {{ type = "bearer", token = "t0k" }}\nsigning_secret = "{SECRET}"')
    config_path.write_text(text)
    result = cli("fire", "ClientCreate", "--rate", "40", "--duration", "0.2", "--vary", "--seed", "7")
    assert ran_as_asked(result.exit_code, result.stderr), result.stderr
    assert len(receiver.requests) == 8
    assert len({r.body for r in receiver.requests}) == 8  # a different payload each time
    verifier = standardwebhooks.Webhook(SECRET)
    for request in receiver.requests:
        verifier.verify(request.body, request.headers)  # raises on a bad signature


@pytest.mark.parametrize(
    "args",
    [
        ("--rate", "0", "--duration", "1"), ("--rate", "-5", "--duration", "1"), ("--rate", "nan", "--duration", "1"),
        ("--rate", "inf", "--duration", "1"), ("--rate", "abc", "--duration", "1"), ("--rate", "10", "--duration", "0"),
        ("--rate", "10", "--duration", "-1s"), ("--rate", "10", "--duration", "abc"),
        ("--rate", "10", "--duration", "5x"),
        ("--rate", "10", "--duration", ""), ("--rate", "10", "--duration", "8d"), ("--rate", "10"),
        ("--duration", "5s"), ("--rate", "10", "--duration", "1", "--count", "3"),
        ("--rate", "10", "--duration", "1", "--dry-run"), ("--rate", "0.1", "--duration", "1"),
    ],
)
def test_bad_rates_and_durations_exit_2_and_send_nothing(cli, config_path: Path, receiver: Receiver,
                                                         args: tuple[str, ...]) -> None:
    write_config(config_path, receiver)
    result = cli("fire", "ClientCreate", *args)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert result.stderr.count("error:") == 1 or "Usage:" in result.stderr
    assert receiver.requests == [] and log_records(config_path) == []


def test_ctrl_c_ends_a_load_run_between_starts_with_its_partial_report(config_path: Path, receiver: Receiver,
                                                                      tmp_path: Path) -> None:
    """At 2 starts a second, Ctrl-C comes while the schedule waits: it ends at once (not after the
    wait), with exit 130, the deliveries made so far logged, and the report of them."""
    import os
    import signal
    import subprocess
    import sys
    import time

    write_config(config_path, receiver)
    process = subprocess.Popen(
        [sys.executable, "-m", "moxiehook", "--config", str(config_path), "fire", "ClientCreate",
         "--rate", "2", "--duration", "60", "--json"],
        cwd=tmp_path, env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(200):  # up to 20 s for the first delivery
            if receiver.requests:
                break
            time.sleep(0.1)
        assert receiver.requests, "no delivery was made"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    document = json.loads(stdout)
    sent = document["load"]["sent"]
    assert 1 <= sent < 120 and document["delivered"] == sent == len(receiver.requests)
    assert len(log_records(config_path)) == sent
    assert "Traceback" not in stderr


def test_a_live_line_on_a_terminal_then_the_table(config_path: Path, receiver: Receiver, tmp_path: Path) -> None:
    """On a terminal, stderr carries one line redrawn in place (rate, p50, errors so far), erased
    before the table; the run lasts 1 s, four times the redraw interval."""
    from tests.terminal import run_in_terminal

    write_config(config_path, receiver)
    code, screen = run_in_terminal("--config", str(config_path), "fire", "ClientCreate", "--rate", "20",
                                   "--duration", "1", cwd=tmp_path)
    assert ran_as_asked(code, screen.replace("\x1b[K", "").replace("\r", "\n")), screen
    live, _, after = screen.rpartition("\r\x1b[K")  # the last erase: the line is gone before the table
    assert "/s  p50 " in live and "errors 0  late 0\x1b[K" in live
    assert "\n" not in live.split("\r")[-1]  # redrawn in place, never scrolled
    assert after.splitlines()[0].startswith("rate ")
    assert "20 delivered, 0 failed, 0 skipped" in after
