"""What a sending run does at its edges (issue 15): open-file limits, Ctrl-C, failures, progress, dry runs.

Real processes against real loopback servers: a child with a low ``ulimit -n``,
SIGINT sent to a child in the middle of a run, a pseudo-terminal for the bar.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from conftest import BASIC_CONFIG, Answer


def _config(config_path: Path, *urls: str, settings: str = "") -> None:
    mappings = "".join(f'[[endpoints.crm.mappings]]\nevent = "ClientCreate"\nurl = "{url}"\n' for url in urls)
    config_path.write_text(BASIC_CONFIG + settings + f'[endpoints.crm]\nauth = {{ type = "bearer", token = "t" }}\n{mappings}')


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
