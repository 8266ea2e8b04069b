"""``fire`` on a real terminal: the stdin hint, and a progress bar that ends on the final count."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.conftest import Answer, Receiver


class Terminal:
    """``python -m moxiehook ARGS`` with stdin, stdout and stderr on one pseudo-terminal, 80 columns."""

    def __init__(self, *args: str, cwd: Path) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 80, 0, 0))
        env = {name: value for name, value in os.environ.items() if name not in ("NO_COLOR", "FORCE_COLOR")}

        def controlling_terminal() -> None:  # in the child, after setsid: Ctrl-C typed on it is its SIGINT
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.process = subprocess.Popen([sys.executable, "-m", "moxiehook", *args], cwd=cwd, stdin=slave,
                                        stdout=slave, stderr=slave, env={**env, "TERM": "xterm", "COLUMNS": "80"},
                                        start_new_session=True, preexec_fn=controlling_terminal)
        os.close(slave)
        self.output = bytearray()

    def read_until(self, pattern: bytes, timeout: float = 30) -> bool:
        """Read until ``pattern`` (a regular expression) is in the output, the process ends, or ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not re.search(pattern, self.output):
            if not self._read_some():
                break
        return re.search(pattern, self.output) is not None

    def _read_some(self) -> bool:
        ready, _, _ = select.select([self.master], [], [], 0.1)
        if not ready:
            return self.process.poll() is None
        try:
            chunk = os.read(self.master, 65536)
        except OSError:
            return False
        self.output += chunk
        return bool(chunk)

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read_some():
            pass
        try:
            code = self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            os.close(self.master)
        return code, self.output.decode("utf-8", "replace").replace("\r\n", "\n")


def with_endpoint(config_path: Path, url: str) -> None:
    config_path.write_text(config_path.read_text() + f'\n[endpoints.crm]\nauth = {{ type = "none" }}\n'
                           f'[[endpoints.crm.mappings]]\nevent = "ClientCreate"\nurl = "{url}"\n')


def test_data_from_stdin_on_a_terminal_says_it_is_reading(tmp_path: Path, config_path: Path) -> None:
    with_endpoint(config_path, "http://127.0.0.1:9/hooks")
    terminal = Terminal("--config", str(config_path), "fire", "ClientCreate", "--data", "-", "--dry-run",
                        cwd=tmp_path)
    assert terminal.read_until(rb"reading the payload from stdin \(Ctrl-D to end\)")
    os.write(terminal.master, b'{"name": "Typed"}\n\x04')
    code, screen = terminal.finish()
    assert code == 0, screen
    assert '"name": "Typed"' in screen


def final_bar(screen: str) -> str:
    """The bar's last frame drawn, as text: ``30/30 30 delivered, 0 failed``."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.replace("\x1b[2K", "\n"))
    return re.findall(r"\d+/\d+ \d+ delivered, \d+ failed", text)[-1]


def test_the_bar_ends_on_the_final_count(tmp_path: Path, config_path: Path, receiver: Receiver) -> None:
    receiver.default = Answer(status=200, delay=0.02)
    with_endpoint(config_path, receiver.url("/hooks"))
    code, screen = Terminal("--config", str(config_path), "fire", "ClientCreate", "--count", "30",
                            "--concurrency", "1", cwd=tmp_path).finish()
    assert code == 0, screen
    bar = final_bar(screen)
    assert "30/30" in bar and "30 delivered, 0 failed" in bar, screen
    assert "\x1b[1A" not in screen[screen.rindex("30/30"):]  # left on screen, not erased


@pytest.mark.parametrize("concurrency", ["1", "8"])
def test_the_bar_ends_on_the_final_count_after_ctrl_c(tmp_path: Path, config_path: Path, receiver: Receiver,
                                                      concurrency: str) -> None:
    receiver.default = Answer(status=200, delay=0.05)
    with_endpoint(config_path, receiver.url("/hooks"))
    terminal = Terminal("--config", str(config_path), "fire", "ClientCreate", "--count", "4000",
                        "--concurrency", concurrency, cwd=tmp_path)
    assert terminal.read_until(rb" [1-9][0-9]* delivered")
    os.write(terminal.master, b"\x03")  # Ctrl-C typed: the terminal echoes ^C and sends SIGINT
    code, screen = terminal.finish()
    assert code == 130, screen
    delivered = re.search(r"(\d+) delivered, 0 failed, 0 skipped ·", screen)
    assert delivered, screen
    assert f"{delivered[1]} delivered, 0 failed" in final_bar(screen), screen
    assert f"{delivered[1]}/4000" in final_bar(screen), screen
    # the bar is not erased after its last frame (no cursor-up to clear it): the final count stays on screen
    after_bar = screen[screen.rindex(f"{delivered[1]}/4000"):]
    assert "\x1b[1A" not in after_bar, repr(after_bar)
