"""What a sending run does at its edges (issue 15): open-file limits, Ctrl-C, failures, progress, dry runs.

Real processes against real loopback servers: a child with a low ``ulimit -n``,
SIGINT sent to a child in the middle of a run, a pseudo-terminal for the bar.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import BASIC_CONFIG, Answer


def _config(config_path: Path, *urls: str) -> None:
    mappings = "".join(f'[[endpoints.crm.mappings]]\nevent = "ClientCreate"\nurl = "{url}"\n' for url in urls)
    config_path.write_text(BASIC_CONFIG + f'[endpoints.crm]\nauth = {{ type = "bearer", token = "t" }}\n{mappings}')


def _moxiehook(config_path: Path, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "moxiehook", "-c", str(config_path), *args],
                          capture_output=True, text=True, timeout=120, cwd=config_path.parent, **kwargs)


def _log_records(config_path: Path) -> list[dict]:
    log = config_path.with_name("log.jsonl")
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []


# ---------------------------------------------------------------------------
# 13. --concurrency beyond the open-file limit


def test_concurrency_beyond_the_open_file_limit_is_capped_with_a_warning(config_path: Path, receiver) -> None:
    receiver.default = Answer(status=204, body=b"", delay=0.3)
    _config(config_path, receiver.url())

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))  # soft = hard: it cannot be raised

    result = _moxiehook(config_path, "fire", "ClientCreate", "--count", "100", "--concurrency", "200",
                        preexec_fn=low_limit)
    assert result.returncode == 0, result.stderr
    assert "warning: a concurrency of 200 needs more open files than this process may have (ulimit -n 64): " \
           "sending at most" in result.stderr
    assert "100 delivered, 0 failed, 0 skipped" in result.stderr
    records = _log_records(config_path)
    assert len(records) == 100 and {r["outcome"] for r in records} == {"delivered"}
    assert len(receiver.requests) == 100


def test_the_soft_open_file_limit_is_raised_before_anything_is_capped(config_path: Path, receiver) -> None:
    receiver.default = Answer(status=204, body=b"", delay=0.3)
    _config(config_path, receiver.url())
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]

    def low_soft_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))

    result = _moxiehook(config_path, "fire", "ClientCreate", "--count", "200", "--concurrency", "100",
                        preexec_fn=low_soft_limit)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr
    assert "200 delivered, 0 failed, 0 skipped" in result.stderr


# ---------------------------------------------------------------------------
# 18. why a delivery failed; 22. elapsed time and rate


def test_each_failed_delivery_gets_a_line_with_its_reason(config_path: Path, receiver) -> None:
    receiver.answer("/unprocessable", Answer(status=422, body=b"bad field"))
    receiver.answer("/slow", Answer(status=204, body=b"", delay=1.5))
    _config(config_path, receiver.url("/ok"), receiver.url("/unprocessable"), receiver.url("/slow"),
            "http://127.0.0.1:9/refused")
    config_path.write_text(config_path.read_text().replace("timeout = 2.0", "timeout = 0.5")
                           .replace("max_attempts = 3", "max_attempts = 1"))
    result = _moxiehook(config_path, "fire", "ClientCreate")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    # in the order the deliveries ended
    assert sorted(lines[:3]) == sorted([
        f"✗ crm · ClientCreate · {receiver.url('/unprocessable')} · HTTP 422 Unprocessable Entity",
        f"✗ crm · ClientCreate · {receiver.url('/slow')} · timeout: no answer within 0.5 s",
        "✗ crm · ClientCreate · http://127.0.0.1:9/refused · connection error: connection refused",
    ])
    first_id = next(r["id"] for r in _log_records(config_path) if r["url"] in lines[0])
    assert lines[3] == f"  details: moxiehook --config {config_path} logs show {first_id}"
    assert lines[4].startswith("1 delivered, 3 failed, 0 skipped · ")
    assert len(lines) == 5


def test_failure_lines_stop_at_a_screenful_and_count_the_rest(config_path: Path, receiver) -> None:
    receiver.default = Answer(status=422)
    _config(config_path, receiver.url("/a"))
    result = _moxiehook(config_path, "fire", "ClientCreate", "--count", "14", "--concurrency", "1")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert [line.startswith("✗ crm · ClientCreate · ") for line in lines[:10]] == [True] * 10
    assert lines[10] == f"  … and 4 more: moxiehook --config {config_path} logs --outcome failed"
    assert lines[11].startswith(f"  details: moxiehook --config {config_path} logs show dlv_")
    assert lines[12].startswith("0 delivered, 14 failed, 0 skipped · ") and lines[12].endswith("/s")
    assert len(lines) == 13
    shown = lines[11].split()[-1]
    details = _moxiehook(config_path, "logs", "show", shown, "--json")
    assert details.returncode == 0 and json.loads(details.stdout)["status"] == 422


def test_a_failure_reason_from_the_network_is_escaped() -> None:
    """A Location header is the network's text in the error; it must not act on the terminal."""
    from moxiehook.cli.run_view import failure_lines
    from moxiehook.log import DeliveryRecord
    from moxiehook.send import RunSummary

    record = DeliveryRecord(id="dlv_1", event_id="evt_1", event="ClientCreate", endpoint="crm", url="http://h/x",
                            mode="fire", replay_of=None, at="", outcome="failed", status=302,
                            error="HTTP 302 Found (redirects are not followed; Location: /x\x1b[2J\x9b31m)",
                            duration_ms=1.0)
    lines = failure_lines(RunSummary(failed=1, failures=[record]))
    assert lines[0] == ("✗ crm · ClientCreate · http://h/x · HTTP 302 Found (redirects are not followed; "
                        "Location: /x\\x1b[2J\\x9b31m)")


def test_elapsed_time_reads_as_a_person_reads_it() -> None:
    from moxiehook.cli.run_view import elapsed_text, rate_text

    assert [elapsed_text(s) for s in (0.0001, 0.0042, 0.31, 3.123, 12.34, 125.0)] == \
        ["1 ms", "4 ms", "310 ms", "3.12 s", "12.3 s", "2m05s"]
    assert [rate_text(r) for r in (0.5, 9.94, 558.2, 12345.6)] == ["0.5/s", "9.9/s", "558/s", "12,346/s"]


def test_the_summary_keeps_elapsed_time_and_rate(config_path: Path, receiver) -> None:
    _config(config_path, receiver.url())
    result = _moxiehook(config_path, "fire", "ClientCreate", "--count", "20", "--json")
    assert result.returncode == 0, result.stderr
    line = result.stderr.strip()
    counts, elapsed, rate = line.split(" · ")
    assert counts == "20 delivered, 0 failed, 0 skipped"
    number, unit = elapsed.split(" ")
    assert unit in ("ms", "s") and float(number) > 0
    assert rate.endswith("/s") and float(rate[:-2].replace(",", "")) > 0
    document = json.loads(result.stdout)
    assert document["elapsed_s"] > 0 and document["rate_per_s"] > 0
    assert abs(document["rate_per_s"] - 20 / document["elapsed_s"]) < 0.2 * document["rate_per_s"] + 1


def test_the_progress_bar_shows_delivered_failed_rate_and_elapsed(config_path: Path, receiver) -> None:
    from terminal import run_in_terminal

    receiver.answer("/bad", Answer(status=422))
    receiver.default = Answer(status=204, body=b"", delay=0.05)
    _config(config_path, receiver.url("/good"), receiver.url("/bad"))
    code, screen = run_in_terminal("-c", str(config_path), "fire", "ClientCreate", "--count", "40",
                                   "--concurrency", "2", cwd=config_path.parent, columns=80)
    assert code == 1, screen
    frames = [frame for frame in screen.replace("\n", "\r").split("\r") if "delivered," in frame and "/s" in frame]
    assert frames, screen
    import re

    bar = re.compile(r"(\d+)/80 (\d+) delivered, (\d+) failed · [\d.,]+/s · \d:\d\d:\d\d")
    matches = [bar.search(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", frame)) for frame in frames]
    assert any(m and int(m.group(3)) > 0 for m in matches), frames[-3:]
    assert all(m is None or int(m.group(1)) == int(m.group(2)) + int(m.group(3)) for m in matches)
    assert screen.rstrip().splitlines()[-1].startswith("40 delivered, 40 failed, 0 skipped · ")


# ---------------------------------------------------------------------------
# 24 (part). --dry-run streams its previews


def _peak_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])


@pytest.mark.parametrize("form", ["--json", "text"])
def test_a_large_dry_run_starts_printing_before_it_has_built_every_preview(config_path: Path, form: str) -> None:
    """200,000 previews took 221 MB as text and 1.9 GB as JSON when built whole before printing.

    Streamed, the first 64 KiB arrive while the process has used a fraction of that:
    its peak RSS is read from /proc while it waits on the full pipe.
    """
    _config(config_path, "http://127.0.0.1:9/x")
    args = ["fire", "ClientCreate", "--dry-run", "--count", "200000"] + (["--json"] if form == "--json" else [])
    process = subprocess.Popen([sys.executable, "-m", "moxiehook", "-c", str(config_path), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=config_path.parent)
    try:
        assert process.stdout is not None
        head = process.stdout.read(65536)
        peak = _peak_rss_kib(process.pid)
    finally:
        process.kill()
        process.wait()
    assert head.startswith(b"[\n  {\n" if form == "--json" else b"POST http://127.0.0.1:9/x\n")
    assert peak < 120 * 1024, f"peak RSS {peak} KiB before the first 64 KiB of output"


def test_a_streamed_dry_run_prints_the_same_json_document(config_path: Path) -> None:
    _config(config_path, "http://127.0.0.1:9/x", "http://127.0.0.1:9/y")
    result = _moxiehook(config_path, "fire", "ClientCreate", "--dry-run", "--count", "3", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert result.stdout == json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    assert [request["url"] for request in document] == ["http://127.0.0.1:9/x", "http://127.0.0.1:9/y"] * 3
    assert len({request["body"]["id"] for request in document}) == 3
    text = _moxiehook(config_path, "fire", "ClientCreate", "--dry-run", "--count", "3")
    assert text.stdout.count("POST http://127.0.0.1:9/") == 6
    assert text.stderr.strip() == "dry run: 6 request(s) shown, nothing sent"


# ---------------------------------------------------------------------------
# 5. Ctrl-C during a run


def _wait_for_requests(receiver, count: int, process: subprocess.Popen[str]) -> None:
    for _ in range(300):  # at most 15 s
        if len(receiver.requests) >= count:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"the receiver got {len(receiver.requests)} requests, not {count}")


def _interrupt(process: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGINT, then the output. A run that waited for its slow deliveries (30 s) would time out here."""
    process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _slow_config(config_path: Path, receiver, backoff: float = 0.01, attempts: int = 1) -> None:
    _config(config_path, receiver.url())
    config_path.write_text(config_path.read_text().replace("timeout = 2.0", "timeout = 60.0")
                           .replace("max_attempts = 3", f"max_attempts = {attempts}")
                           .replace("backoff = 0.01", f"backoff = {backoff}"))


@pytest.mark.parametrize("concurrency", [1, 4])
def test_ctrl_c_during_fire_cuts_the_deliveries_in_flight_logs_them_and_exits_130(
        config_path: Path, receiver, concurrency: int) -> None:
    receiver.default = Answer(status=204, body=b"", delay=30)
    _slow_config(config_path, receiver)
    process = subprocess.Popen(
        [sys.executable, "-m", "moxiehook", "-c", str(config_path), "fire", "ClientCreate", "--count", "50",
         "--concurrency", str(concurrency), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=config_path.parent)
    _wait_for_requests(receiver, concurrency, process)
    stdout, stderr = _interrupt(process)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    document = json.loads(stdout)
    assert (document["interrupted"], document["delivered"], document["failed"]) == (True, 0, concurrency)
    assert [d["error"] for d in document["deliveries"]] == ["interrupted (Ctrl-C)"] * concurrency
    records = _log_records(config_path)
    assert sorted(r["id"] for r in records) == sorted(d["id"] for d in document["deliveries"])
    assert len(receiver.requests) == concurrency  # nothing started after Ctrl-C
    lines = stderr.splitlines()
    assert "⚠ interrupted (Ctrl-C): no further delivery was started" in stderr
    assert lines[-1].startswith(f"0 delivered, {concurrency} failed, 0 skipped · ")


def test_ctrl_c_during_a_wait_before_a_retry_starts_no_new_attempt(config_path: Path, receiver) -> None:
    receiver.default = Answer(status=503)
    _slow_config(config_path, receiver, backoff=20, attempts=3)
    process = subprocess.Popen(
        [sys.executable, "-m", "moxiehook", "-c", str(config_path), "fire", "ClientCreate", "--count", "3",
         "--concurrency", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=config_path.parent)
    _wait_for_requests(receiver, 1, process)
    time.sleep(0.2)  # the first answer is in: the delivery now waits 16–24 s before its 2nd attempt
    _, stderr = _interrupt(process)
    assert process.returncode == 130, stderr
    [record] = _log_records(config_path)
    assert record["error"] == "HTTP 503 Service Unavailable; interrupted (Ctrl-C) before the next attempt"
    assert len(record["attempts"]) == 1 and len(receiver.requests) == 1


def test_ctrl_c_during_replay_logs_the_cut_deliveries_and_prints_the_json(config_path: Path, receiver) -> None:
    receiver.default = Answer(status=422)
    _slow_config(config_path, receiver)
    assert _moxiehook(config_path, "fire", "ClientCreate", "--count", "3").returncode == 1
    receiver.default = Answer(status=204, body=b"", delay=30)
    sent_before = len(receiver.requests)
    process = subprocess.Popen(
        [sys.executable, "-m", "moxiehook", "-c", str(config_path), "replay", "--failed", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=config_path.parent)
    _wait_for_requests(receiver, sent_before + 3, process)
    stdout, stderr = _interrupt(process)
    assert process.returncode == 130, stderr
    document = json.loads(stdout)
    assert document["interrupted"] is True and document["failed"] == 3
    replays = [r for r in _log_records(config_path) if r["mode"] == "replay"]
    assert len(replays) == 3 and {r["error"] for r in replays} == {"interrupted (Ctrl-C)"}
