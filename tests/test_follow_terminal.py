"""``logs --follow`` in a real pseudo-terminal: each record printed exactly once, whatever happens
to the terminal (resizes, SIGWINCH) or to the log (writers appending at once, a line taken back,
a prune dropping the last line already shown)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from logrecords import delivery, write

from moxiehook.log.records import LogWriter, encode
from tests.conftest import run_moxiehook

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="a POSIX pseudo-terminal")

SHORT_ID = re.compile(r"dlv_…[0-9A-Z]{10}")


class Terminal:
    """``moxiehook ARGS`` as the foreground job of its own pseudo-terminal, as in a real terminal.

    The terminal is the child's controlling terminal, so a resize (``resize``) sends it SIGWINCH
    exactly as a terminal emulator does; ``text`` is everything it printed so far.
    """

    def __init__(self, *args: str, columns: int = 100) -> None:
        self.master, slave = pty.openpty()
        self.resize(columns)
        self.output = bytearray()

        def own_terminal() -> None:  # in the child: a session of its own, this pty its terminal
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        base = {name: value for name, value in os.environ.items() if name not in ("NO_COLOR", "COLUMNS", "LINES")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moxiehook", *args], stdin=slave, stdout=slave, stderr=slave,
            preexec_fn=own_terminal, env={**base, "TERM": "xterm-256color"},
        )
        os.close(slave)

    def resize(self, columns: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))

    def read(self, wait: float = 0.05) -> None:
        ready, _, _ = select.select([self.master], [], [], wait)
        if ready:
            with contextlib.suppress(OSError):  # EIO: the child closed the terminal
                self.output += os.read(self.master, 65536)

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace").replace("\r\n", "\n")

    def wait_for(self, done, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not done(self.text):
            assert time.monotonic() < deadline, f"not seen within {timeout} s; the terminal shows:\n{self.text}"
            assert self.process.poll() is None, f"moxiehook ended:\n{self.text}"
            self.read()

    def quiet(self, rounds: int = 8) -> None:
        """Read until the program prints nothing for a few of its polls (a follow never ends by itself)."""
        idle = 0
        while idle < rounds:
            before = len(self.output)
            self.read(0.1)
            idle = idle + 1 if len(self.output) == before else 0

    def stop(self) -> int:
        try:
            self.process.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 10
            while self.process.poll() is None and time.monotonic() < deadline:
                self.read()
            return self.process.wait(timeout=1)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            os.close(self.master)


@pytest.fixture
def log(config_path: Path) -> Path:
    return config_path.parent / "log.jsonl"


WRITER = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from logrecords import delivery, write
for n in range({count}):
    record = delivery(n)
    write(Path(sys.argv[1]), record)
    print(record.id, flush=True)
"""


def test_follow_prints_each_record_once_and_whole_through_resizes(config_path: Path, log: Path) -> None:
    """Three writers append while the terminal is resized (SIGWINCH) again and again: every record
    appears exactly once, and its id whole (a row fitted to the old width and cut to the new one
    lost its id)."""
    write(log, first := delivery(0))
    terminal = Terminal("--config", str(config_path), "logs", "--follow", "--tail", "0", columns=120)
    try:
        terminal.wait_for(lambda text: first.id[-10:] in text)
        code = WRITER.format(tests=str(Path(__file__).parent), count=40)
        writers = [subprocess.Popen([sys.executable, "-c", code, str(log)], stdout=subprocess.PIPE, text=True)
                   for _ in range(3)]
        widths = [62, 120, 75, 100, 64, 90]
        turn = 0
        while any(writer.poll() is None for writer in writers):
            terminal.resize(widths[turn % len(widths)])
            terminal.process.send_signal(signal.SIGWINCH)
            turn += 1
            terminal.read(0.01)
        ids = [first.id] + [line for writer in writers for line in writer.communicate()[0].split()]
        assert len(ids) == 121
        terminal.wait_for(lambda text: len(SHORT_ID.findall(text)) >= len(ids))
        terminal.quiet()
    finally:
        code_ = terminal.stop()
    assert code_ == 0
    shown = SHORT_ID.findall(terminal.text)
    assert sorted(shown) == sorted(f"dlv_…{record_id[-10:]}" for record_id in ids)
    assert "Traceback" not in terminal.text


def json_ids(text: str) -> list[str]:
    return [json.loads(line)["id"] for line in text.splitlines() if line.startswith("{")]


def test_a_line_taken_back_by_a_writer_does_not_replay_the_log(config_path: Path, log: Path) -> None:
    """A writer takes its line back when what it pairs with fails (``endpoint disable`` whose config
    cannot be written): the log shrinks by that line. That is not a truncated log: nothing shown
    before is shown again, and the next record is shown once."""
    earlier = [delivery(0), delivery(1)]
    write(log, *earlier)
    terminal = Terminal("--config", str(config_path), "logs", "--follow", "--json", "--tail", "0")
    taken_back = delivery(2)
    taken_back.request["body"]["note"] = "x" * 2000  # longer than the next record
    try:
        terminal.wait_for(lambda text: json_ids(text) == [r.id for r in earlier])

        def shown_then_fail() -> None:  # under the writer's lock, after its line was written
            terminal.wait_for(lambda text: taken_back.id in text)
            terminal.process.send_signal(signal.SIGWINCH)
            raise OSError("the paired write failed")

        with LogWriter(log) as writer, pytest.raises(OSError):
            writer.append_line(encode(taken_back), then=shown_then_fail)
        assert log.read_bytes() == b"".join(encode(r) for r in earlier)
        terminal.quiet()  # the follow has seen the log shrink
        later = delivery(3)
        write(log, later)
        terminal.wait_for(lambda text: later.id in text)
        terminal.quiet()
    finally:
        code = terminal.stop()
    assert code == 0
    assert json_ids(terminal.text) == [*(r.id for r in earlier), taken_back.id, later.id]
    assert "warning" not in terminal.text


def test_a_prune_dropping_the_last_line_shown_does_not_replay_the_kept_ones(config_path: Path, log: Path) -> None:
    """Records are appended when their delivery ends, so their times are not in order: a prune
    ``--before`` can drop the last line shown and keep an earlier one. The follow goes on after
    the lines it showed, not from the top of the new file."""
    slow, quick = delivery(10), delivery(1)  # logged in this order: the slow one started later
    blank_then = delivery(11)
    write(log, slow, quick)
    terminal = Terminal("--config", str(config_path), "logs", "--follow", "--json", "--tail", "0")
    try:
        terminal.wait_for(lambda text: json_ids(text) == [slow.id, quick.id])
        result = run_moxiehook("--config", str(config_path), "logs", "prune", "--before", "2026-11-28T14:05:00Z")
        assert result.returncode == 0, result.stderr
        assert log.read_bytes() == encode(slow)
        terminal.process.send_signal(signal.SIGWINCH)
        terminal.quiet()
        with log.open("ab") as handle:  # a hand-made blank line, then a record
            handle.write(b"\n")
        write(log, blank_then)
        terminal.wait_for(lambda text: blank_then.id in text)
        terminal.quiet()
    finally:
        code = terminal.stop()
    assert code == 0
    assert json_ids(terminal.text) == [slow.id, quick.id, blank_then.id]


def test_a_replaced_log_after_a_blank_line_is_not_read_again(config_path: Path, log: Path) -> None:
    """The last line read was blank: a replaced log is still read on after the lines shown."""
    earlier = [delivery(0), delivery(1)]
    write(log, *earlier)
    with log.open("ab") as handle:
        handle.write(b"\n")
    terminal = Terminal("--config", str(config_path), "logs", "--follow", "--json", "--tail", "0")
    try:
        terminal.wait_for(lambda text: json_ids(text) == [r.id for r in earlier])
        result = run_moxiehook("--config", str(config_path), "logs", "prune", "--keep", "1")
        assert result.returncode == 0, result.stderr
        later = delivery(2)
        write(log, later)
        terminal.wait_for(lambda text: later.id in text)
        terminal.quiet()
    finally:
        code = terminal.stop()
    assert code == 0
    assert json_ids(terminal.text) == [*(r.id for r in earlier), later.id]
