"""Odd log files and destructive log commands (issue 19, items 11 and 13).

- A log that is a FIFO is refused like a folder (exit 2, naming the file), by every command
  that reads or writes it, and never opened for reading in blocking mode (which would wait
  forever for a writer).
- ``logs prune`` of a symlinked log prunes the file the link points to; the link stays a link.
- ``logs prune --keep 0`` empties the log only with ``--yes``; without it, exit 2 and nothing changes.
- A config saved with a UTF-8 byte order mark (Windows Notepad does that) is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from conftest import BASIC_CONFIG, run_moxiehook
from logrecords import delivery, write

from moxiehook.log.records import encode

# Each of these would block forever on a FIFO: a bound is the test's own safety net, never reached.
BOUND = 30


@pytest.fixture
def log(config_path: Path) -> Path:
    return config_path.parent / "log.jsonl"


def run(config_path: Path, *args: str):
    return run_moxiehook("--config", str(config_path), *args, timeout=BOUND)


@pytest.mark.parametrize("args", [("logs",), ("logs", "--json"), ("logs", "--follow"), ("logs", "show", "dlv_x"),
                                  ("logs", "prune", "--keep", "1"), ("logs", "--endpoint", "crm")])
def test_a_fifo_log_is_refused_by_the_readers(config_path: Path, log: Path, args: tuple[str, ...]) -> None:
    os.mkfifo(log)
    result = run(config_path, *args)
    assert result.returncode == 2, result.stderr
    assert str(log) in result.stderr and "FIFO" in result.stderr
    assert "Traceback" not in result.stderr
    assert stat.S_ISFIFO(log.stat().st_mode)  # left as it was


@pytest.mark.parametrize("args", [("logs", "--tail", "0"), ("logs", "show", "dlv_x"), ("logs", "prune", "--keep", "1")])
def test_a_device_log_reads_as_an_empty_log(config_path: Path, args: tuple[str, ...]) -> None:
    """``/dev/null`` logs nothing; ``/dev/zero`` is one endless line, never read (it would fill memory)."""
    for device in ("/dev/null", "/dev/zero"):
        config_path.write_text(BASIC_CONFIG.replace('"log.jsonl"', f'"{device}"'))
        result = run(config_path, *args)
        assert result.returncode == (2 if args[1] == "show" else 0), result.stderr
        assert "Traceback" not in result.stderr


def test_a_fifo_log_is_refused_by_fire_before_anything_is_sent(config_path: Path, log: Path, receiver) -> None:
    config_path.write_text(BASIC_CONFIG + f"""
[endpoints.crm]
auth = {{ type = "bearer", token = "t" }}
[[endpoints.crm.mappings]]
event = "ClientCreate"
url = "{receiver.url()}"
""")
    os.mkfifo(log)
    result = run(config_path, "fire", "ClientCreate")
    assert result.returncode == 2, result.stderr
    assert str(log) in result.stderr and "FIFO" in result.stderr
    assert receiver.requests == []


def test_prune_of_a_symlinked_log_prunes_its_target(config_path: Path, log: Path, tmp_path: Path) -> None:
    real = tmp_path / "elsewhere" / "real.jsonl"
    real.parent.mkdir()
    records = [delivery(n) for n in range(5)]
    write(real, *records)
    log.symlink_to(real)
    result = run(config_path, "logs", "prune", "--keep", "2")
    assert result.returncode == 0, result.stderr
    assert log.is_symlink() and os.readlink(log) == str(real)
    assert real.read_bytes() == b"".join(encode(r) for r in records[-2:])
    assert not [p.name for p in real.parent.iterdir() if p.name.endswith(".tmp")]  # no temp file left


def test_prune_keep_0_needs_yes(config_path: Path, log: Path) -> None:
    records = [delivery(n) for n in range(3)]
    write(log, *records)
    before = log.read_bytes()
    result = run(config_path, "logs", "prune", "--keep", "0")
    assert result.returncode == 2
    assert "--yes" in result.stderr
    assert log.read_bytes() == before
    result = run(config_path, "logs", "prune", "--keep", "0", "--before", "1h")
    assert (result.returncode, log.read_bytes()) == (2, before)
    result = run(config_path, "logs", "prune", "--keep", "0", "--yes")
    assert result.returncode == 0, result.stderr
    assert log.read_bytes() == b""
    assert "dropped 3 records, kept 0" in result.stdout


def test_a_config_with_a_utf8_bom_is_read(config_path: Path, log: Path) -> None:
    config_path.write_bytes(b"\xef\xbb\xbf" + BASIC_CONFIG.encode())
    write(log, record := delivery(0))
    result = run(config_path, "logs", "--json")
    assert result.returncode == 0, result.stderr
    assert record.id in result.stdout
    result = run(config_path, "endpoint", "add", "crm", "--auth", "none")
    assert result.returncode == 0, result.stderr
    assert not config_path.read_bytes().startswith(b"\xef\xbb\xbf")  # written back as plain UTF-8
