"""A load run is a test: it fails (exit 1, one line saying why) when it did not do what was asked.

The rules are judged on reports built by hand (no clock, no network), then checked end to end
against the loopback receiver where the outcome does not depend on this machine's speed.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from moxiehook.send import LoadLimits, LoadReport, judge_load
from tests.conftest import Receiver
from tests.test_load import log_records, ran_as_asked, write_config


def report(requested: float = 100.0, achieved: float = 100.0, sent: int = 1000, late: int = 0,
           p99: float | None = 20.0, errors: dict[str, int] | None = None,
           statuses: dict[str, int] | None = None) -> LoadReport:
    return LoadReport(requested_rate=requested, achieved_rate=achieved, duration_s=sent / max(achieved, 1),
                      sent=sent, late=late, latency_ms={"p50": 5.0, "p90": 10.0, "p99": p99, "max": 30.0},
                      statuses=statuses if statuses is not None else {"204": sent}, errors=errors or {})


def test_a_run_at_the_rate_asked_passes() -> None:
    assert judge_load(report(), failed=0) == []


def test_a_run_far_below_the_rate_asked_fails_saying_so() -> None:
    """The run from the issue: 34/s of 100/s asked."""
    problems = judge_load(report(achieved=34.0), failed=0)
    assert problems == ["achieved rate 34.0/s is 66.0 % below the 100/s asked (more than 3 %)"]


def test_three_percent_below_is_still_a_pass_and_just_over_fails() -> None:
    assert judge_load(report(achieved=97.0), failed=0) == []
    assert judge_load(report(achieved=96.9), failed=0) != []


def test_more_than_one_percent_late_fails() -> None:
    assert judge_load(report(late=10), failed=0) == []  # 1.0 %: not more than 1 %
    problems = judge_load(report(late=11), failed=0)
    assert problems == ["11 of 1,000 starts (1.1 %) were late, waiting for a free slot (more than 1 %)"]


def test_max_p99_fails_the_run_when_crossed_naming_the_figure() -> None:
    assert judge_load(report(p99=250.0), failed=0, limits=LoadLimits(max_p99_ms=250)) == []
    problems = judge_load(report(p99=250.5), failed=0, limits=LoadLimits(max_p99_ms=250))
    assert problems == ["p99 latency 250.5 ms is above --max-p99 250 ms"]


def test_a_failed_delivery_fails_the_run_unless_within_max_error_rate() -> None:
    failing = report(statuses={"204": 995, "503": 5})
    assert judge_load(failing, failed=5) == ["5 of 1,000 deliveries failed (0.5 %)"]
    assert judge_load(failing, failed=5, limits=LoadLimits(max_error_rate=0.01)) == []
    problems = judge_load(failing, failed=5, limits=LoadLimits(max_error_rate=0.001))
    assert problems == ["error rate 0.005 (5 of 1,000 deliveries failed) is above --max-error-rate 0.001"]


def test_a_receiver_that_refuses_connections_is_reported_as_refused_not_late() -> None:
    refused = report(achieved=60.0, late=400, statuses={}, errors={"connection refused": 1000})
    problems = judge_load(refused, failed=1000)
    assert len(problems) == 1
    assert "refused" in problems[0] and "late" not in problems[0]


@pytest.mark.parametrize(("option", "value"), [("--max-p99", "0"), ("--max-p99", "-1"), ("--max-p99", "nan"),
                                               ("--max-error-rate", "1.5"), ("--max-error-rate", "-0.1"),
                                               ("--max-error-rate", "nan")])
def test_thresholds_that_make_no_sense_exit_2(cli, config_path: Path, receiver: Receiver, option: str,
                                              value: str) -> None:
    write_config(config_path, receiver)
    result = cli("fire", "ClientCreate", "--rate", "20", "--duration", "0.1", option, value)
    assert result.exit_code == 2, result.stderr
    assert option in result.stderr
    assert receiver.requests == []


def test_thresholds_need_a_load_run(cli, config_path: Path, receiver: Receiver) -> None:
    write_config(config_path, receiver)
    result = cli("fire", "ClientCreate", "--max-p99", "100")
    assert result.exit_code == 2
    assert "--max-p99" in result.stderr and "--rate" in result.stderr


def test_a_crossed_max_p99_exits_1_with_one_line_naming_it(cli, config_path: Path, receiver: Receiver) -> None:
    write_config(config_path, receiver)
    result = cli("fire", "ClientCreate", "--rate", "20", "--duration", "0.2", "--max-p99", "0.000001", "--json")
    assert result.exit_code == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if "--max-p99" in line]
    assert len(lines) == 1 and "p99 latency" in lines[0], result.stderr
    document = json.loads(result.stdout)
    assert document["failed"] == 0
    assert any("--max-p99" in problem for problem in document["load"]["problems"])


def test_a_refused_receiver_exits_1_and_says_refused(cli, config_path: Path, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config_path.write_text(config_path.read_text().replace("max_attempts = 3", "max_attempts = 1") + f"""
[endpoints.crm]
auth = {{ type = "bearer", token = "t0k" }}
[[endpoints.crm.mappings]]
event = "ClientCreate"
url = "http://127.0.0.1:{port}/crm"
""")
    result = cli("fire", "ClientCreate", "--rate", "20", "--duration", "0.2", "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["load"]["errors"] == {"connection refused": 4}
    assert [problem for problem in document["load"]["problems"] if "refused" in problem]
    assert not [problem for problem in document["load"]["problems"] if "late" in problem]
    assert len(log_records(config_path)) == 4


def test_the_summary_line_and_the_table_give_one_duration_and_one_rate(cli, config_path: Path,
                                                                       receiver: Receiver) -> None:
    write_config(config_path, receiver)
    result = cli("fire", "ClientCreate", "--rate", "20", "--duration", "0.5")
    assert ran_as_asked(result.exit_code, result.stderr), result.stderr
    table = re.search(r"rate +([\d.,]+)/s achieved of 20/s asked, over ([\d.]+) s", result.stdout)
    summary = re.search(r"10 delivered, 0 failed, 0 skipped · ([\d.]+) (s|ms) · ([\d.]+)/s", result.stderr)
    assert table and summary, (result.stdout, result.stderr)
    summary_s = float(summary.group(1)) / (1000 if summary.group(2) == "ms" else 1)
    assert float(table.group(2)) == pytest.approx(summary_s, abs=0.005)
    assert round(float(table.group(1))) == round(float(summary.group(3)))
    json_run = cli("fire", "ClientCreate", "--rate", "20", "--duration", "0.5", "--json")
    document = json.loads(json_run.stdout)
    assert document["rate_per_s"] == document["load"]["achieved_rate"]
    assert round(document["elapsed_s"], 2) == document["load"]["duration_s"]
