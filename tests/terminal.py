"""Running moxiehook as a real process on a pseudo-terminal of a given size (for layout and colour)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path


def run_in_terminal(*args: str, cwd: Path, env: dict[str, str] | None = None, columns: int = 80,
                    timeout: float = 30) -> tuple[int, str]:
    """``python -m moxiehook ARGS`` with stdout and stderr on a pty ``columns`` wide.

    Returns the exit code and what the terminal received (CR LF turned into LF).
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    base = {name: value for name, value in os.environ.items() if name not in ("NO_COLOR", "FORCE_COLOR")}
    process = subprocess.Popen(
        [sys.executable, "-m", "moxiehook", *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
        env={**base, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": "50", **(env or {})},
    )
    os.close(slave)
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        code = process.wait(timeout=max(0.1, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    return code, output.decode("utf-8", "replace").replace("\r\n", "\n")


def first_lines_in_terminal(*args: str, cwd: Path, lines: int, columns: int = 80, timeout: float = 20) -> str:
    """What ``python -m moxiehook ARGS`` (a command that runs until stopped, ``logs --follow``)
    shows on a pty ``columns`` wide until it has written ``lines`` lines; then Ctrl-C stops it."""
    import signal

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "moxiehook", *args], cwd=cwd, stdout=slave, stderr=slave,
                               env={**os.environ, "COLUMNS": str(columns)})
    os.close(slave)
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while output.count(b"\n") < lines and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                output += os.read(master, 65536)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
        os.close(master)
    return output.decode("utf-8", "replace")
