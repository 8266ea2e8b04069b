"""What reaches the terminal and stdout: colours, NO_COLOR, write errors on stdout, table layout.

Run as real processes, on a pseudo-terminal where the terminal is the point.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Receiver
from logrecords import delivery, write
from terminal import run_in_terminal


def test_error_and_warning_labels_are_coloured_on_a_terminal_unless_no_color(config_path: Path) -> None:
    """NO_COLOR (https://no-color.org) turns off the `error:`/`warning:` colours too, not only Rich's."""
    folder = config_path.parent
    code, shown = run_in_terminal("endpoint", "show", "nope", cwd=folder)
    assert code == 2
    assert "\x1b[" in shown and "error:" in shown
    for value in ("1", "yes"):
        code, shown = run_in_terminal("endpoint", "show", "nope", cwd=folder, env={"NO_COLOR": value})
        assert code == 2
        assert shown == "error: unknown endpoint 'nope' (see: moxiehook endpoint list)\n"
    (folder / "log.jsonl").write_text("torn\n")
    code, shown = run_in_terminal("logs", "--json", cwd=folder, env={"NO_COLOR": "1"})
    assert code == 0
    assert shown == "warning: log.jsonl line 1 is not a valid log record; skipped\n[]\nthe delivery log is empty\n"


# --- stdout that cannot be written ------------------------------------------------

needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")


def run(args: list[str], cwd: Path, stdout: object, env: dict[str, str] | None = None,
        close_stdout: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "moxiehook", *args], cwd=cwd, stdout=stdout, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})}, timeout=60,
        preexec_fn=(lambda: os.close(1)) if close_stdout else None,
    )


@needs_dev_full
@pytest.mark.parametrize("args", [["events", "--json"], ["events"], ["logs", "--json"], ["logs"],
                                  ["logs", "show", "FIRST", "--json"], ["config", "show"], ["map", "list"]])
def test_a_full_disk_on_stdout_is_one_error_line(config_path: Path, args: list[str]) -> None:
    folder = config_path.parent
    first = delivery(0)
    write(folder / "log.jsonl", first, *[delivery(n) for n in range(1, 50)])
    args = [first.id if arg == "FIRST" else arg for arg in args]
    with open("/dev/full", "w") as full:
        result = run(args, folder, full)
    assert (result.returncode, result.stderr) == (1, "error: cannot write the output: No space left on device\n")


@pytest.mark.parametrize("args", [["events", "--json"], ["events"], ["logs", "--json"], ["config", "path"]])
def test_a_closed_stdout_is_one_error_line(config_path: Path, args: list[str]) -> None:
    write(config_path.parent / "log.jsonl", delivery(0))
    result = run(args, config_path.parent, None, close_stdout=True)
    assert (result.returncode, result.stderr) == (1, "error: cannot write the output: stdout is closed\n")


def test_a_command_that_writes_nothing_on_stdout_does_not_mind_it_closed(config_path: Path) -> None:
    result = run(["endpoint", "status", "nope"], config_path.parent, None, close_stdout=True)
    assert (result.returncode, result.stderr.splitlines()[0][:31]) == (2, "error: unknown endpoint 'nope' ")
    result = run(["fire", "ClientCreate"], config_path.parent, None, close_stdout=True)
    assert (result.returncode, result.stderr) == (3, "error: no mapping for ClientCreate (see: moxiehook map list)\n")


def test_a_reader_that_stops_early_ends_the_command_quietly(config_path: Path) -> None:
    """`moxiehook logs --json | head`: exit 141 (as if by SIGPIPE, like git or seq), nothing on stderr."""
    folder = config_path.parent
    write(folder / "log.jsonl", *[delivery(n) for n in range(3000)])  # ~2 MB: far more than a pipe holds
    process = subprocess.Popen([sys.executable, "-m", "moxiehook", "logs", "--json", "--tail", "0"], cwd=folder,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.read(100).startswith(b"[\n  {")
    process.stdout.close()
    stderr = process.stderr.read()
    assert (process.wait(timeout=60), stderr) == (141, b"")


@needs_dev_full
def test_fire_json_to_a_full_disk_after_sending_is_one_error_line(config_path: Path, receiver: Receiver) -> None:
    folder = config_path.parent
    with config_path.open("a") as handle:
        handle.write(f'\n[endpoints.mine]\n[[endpoints.mine.mappings]]\nevent = "ClientCreate"\n'
                     f'url = "{receiver.url()}"\n')
    with open("/dev/full", "w") as full:
        result = run(["fire", "ClientCreate", "--json"], folder, full)
    lines = result.stderr.splitlines()
    assert result.returncode == 1
    assert lines[-2].startswith("1 delivered, 0 failed, 0 skipped · ")
    assert lines[-1] == "error: cannot write the output: No space left on device"
    assert "Traceback" not in result.stderr
    assert len(receiver.requests) == 1
    assert len((folder / "log.jsonl").read_text().splitlines()) == 1
