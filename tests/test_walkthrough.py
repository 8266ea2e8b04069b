"""The README's walk-through, run verbatim in an empty folder.

A reader copies these commands one by one, so each one must do what the README says it does and
print what it shows. Only three things differ from a reader's run, and the test says which:
the receiver's port (8787 in the README, listen's default; a free one here, given to `listen` as
``--port``, so parallel tests never collide), the
folder's path (``/path/to/project``), and the figures that change from run to run (milliseconds,
rates, delivery ids). The docs site's walk-through page must hold the same commands and output.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS_PAGE = ROOT / "docs" / "guide" / "walk-through.md"
BIN = Path(sys.executable).parent
PORT = "8787"


def section(text: str, heading: str) -> str:
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def console_blocks(text: str) -> list[list[tuple[str, list[str]]]]:
    """Each ```console block as (command, expected output lines) pairs."""
    blocks = []
    for body in re.findall(r"```console\n(.*?)```", text, re.DOTALL):
        steps: list[tuple[str, list[str]]] = []
        for line in body.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                steps[-1][1].append(line)
        blocks.append(steps)
    return blocks


def normalise(line: str) -> str:
    line = re.sub(r"\d[\d,.]* ms\b", "N ms", line)
    line = re.sub(r"· [\d,.]+/s", "· N/s", line)
    return re.sub(r"dlv_[0-9A-Z]{20,}", "dlv_ID", line)


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def test_the_walkthrough_sends_only_to_loopback() -> None:
    text = section(README.read_text(encoding="utf-8"), "## Five-minute walk-through")
    commands = [command for block in console_blocks(text) for command, _ in block]
    hosts = {host for command in commands for host in re.findall(r"https?://([^/:\s]+)", command)}
    assert hosts == {"127.0.0.1"}


def test_the_docs_page_holds_the_same_walkthrough() -> None:
    readme = console_blocks(section(README.read_text(encoding="utf-8"), "## Five-minute walk-through"))
    page = console_blocks(DOCS_PAGE.read_text(encoding="utf-8"))
    assert page == readme


def test_the_walkthrough_prints_what_the_readme_shows(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOXIEHOOK_", "MY_TOKEN"))}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", HOME=str(tmp_path), NO_COLOR="1")
    blocks = console_blocks(section(README.read_text(encoding="utf-8"), "## Five-minute walk-through"))
    listener: subprocess.Popen[str] | None = None
    try:
        for block in blocks:
            for command, expected in block:
                command = command.replace(PORT, port)
                want = [normalise(line.replace(PORT, port)) for line in expected]
                if " listen " in command:
                    listener = subprocess.Popen(
                        ["bash", "-c", f"{command} --port {port}"], cwd=tmp_path, env=env, text=True,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
                    assert listener.stdout is not None
                    got = [listener.stdout.readline().rstrip("\n") for _ in want]
                    assert [normalise(line) for line in got] == want, command
                    wait_for_port(int(port))
                    continue
                done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
                got = done.stdout.replace(str(tmp_path), "/path/to/project").splitlines()
                assert [normalise(line) for line in got] == want, command
    finally:
        if listener is not None:
            os.killpg(listener.pid, signal.SIGTERM)
            listener.wait(timeout=10)


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"listen never bound port {port}")
