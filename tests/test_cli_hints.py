"""Advice moxiehook prints works when copied, and every environment error names the variable and the key.

The hints are run as printed, in a shell, in a fresh folder: a hint that fails when followed
is worse than none.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import run_moxiehook

BIN = Path(sys.executable).parent


def shell(command: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``command`` as a user would paste it into bash, with this venv's ``moxiehook`` on PATH."""
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **(env or {})})


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextmanager
def listening(command: str, cwd: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """Start a printed ``moxiehook listen …`` as a real process and wait (bounded) for its first line."""
    process = subprocess.Popen(["bash", "-c", command], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True,
                               env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **env})
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "listening on" in first, first + (process.stdout.read() if process.poll() is not None else "")
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the shell and the moxiehook it started
        process.wait(timeout=10)


def test_init_sample_hints_run_as_printed(tmp_path: Path) -> None:
    """`init --sample`'s endpoints send `${CRM_TOKEN}`: the printed `fire` line must provide it."""
    if not port_is_free(8787):
        pytest.skip("the sample's receiver port 8787 is in use on this machine")
    result = shell("moxiehook init --sample", tmp_path)
    assert result.returncode == 0, result.stderr
    hints = dict(re.findall(r"^(next|then): (.+)$", result.stderr, re.MULTILINE))
    assert set(hints) == {"next", "then"}, result.stderr
    listen = hints["next"]
    with listening(listen, tmp_path, {}):
        fired = shell(hints["then"], tmp_path)
    assert fired.returncode == 0, fired.stderr
    assert "1 delivered" in fired.stderr


def test_demo_next_steps_run_as_printed(tmp_path: Path) -> None:
    """Each line of the demo's "Next" block, pasted in order into one shell session, succeeds."""
    out = run_moxiehook("demo", cwd=tmp_path, timeout=60).stdout
    block = out.split("Next, with your own receiver:\n", 1)[1]
    steps = [line.strip() for line in block.splitlines() if line.strip()]
    commands = [step.split(" #")[0].strip() for step in steps]  # a shell drops the comments too
    listen = next(c for c in commands if "moxiehook listen" in c)
    port = int(re.search(r"--port (\d+)", listen).group(1))  # type: ignore[union-attr]
    if not port_is_free(port):
        pytest.skip(f"port {port} of the demo's hint is in use on this machine")
    folder = tmp_path / "fresh"
    folder.mkdir()
    env: dict[str, str] = {}
    for command in commands:
        if command.startswith("export "):
            name, _, value = command.removeprefix("export ").partition("=")
            env[name] = shlex.split(value)[0]
            continue
        if command is listen:
            continue
        if command.startswith("moxiehook fire"):
            with listening(listen, folder, env):
                done = shell(command, folder, env)
        else:
            done = shell(command, folder, env)
        assert done.returncode == 0, (command, done.stderr)
    assert "1 delivered" in done.stderr


def test_a_missing_variable_in_listen_names_the_full_key(tmp_path: Path) -> None:
    (tmp_path / "moxiehook.toml").write_text(
        '[endpoints.crm]\nauth = { type = "bearer", token = "${CRM_TOKEN_UNSET}" }\n'
        '[[endpoints.crm.mappings]]\nevent = "ClientCreate"\nurl = "http://127.0.0.1:9/hooks"\n')
    env = {name: value for name, value in os.environ.items() if name != "CRM_TOKEN_UNSET"}
    listen = subprocess.run([sys.executable, "-m", "moxiehook", "listen", "--endpoint", "crm", "--port", "0"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=30, env=env)
    fire = run_moxiehook("fire", "ClientCreate", cwd=tmp_path)
    assert listen.returncode == 2
    assert "CRM_TOKEN_UNSET" in listen.stderr and "endpoints.crm.auth.token" in listen.stderr
    assert fire.returncode == 2
    assert listen.stderr.strip() == fire.stderr.strip()  # the same words for the same fault


def test_a_non_ascii_value_from_a_variable_names_the_variable_and_the_key(tmp_path: Path) -> None:
    (tmp_path / "moxiehook.toml").write_text(
        '[endpoints.crm]\nauth = { type = "bearer", token = "${CRM_TOKEN}" }\n'
        '[[endpoints.crm.mappings]]\nevent = "ClientCreate"\nurl = "http://127.0.0.1:9/hooks"\n')
    fired = run_moxiehook("fire", "ClientCreate", cwd=tmp_path, env={"CRM_TOKEN": "tökén"})
    assert fired.returncode == 2
    line = fired.stderr.strip()
    assert "CRM_TOKEN" in line and "endpoints.crm.auth.token" in line, line
    assert "tökén" not in line  # the value may be a secret


def test_a_non_ascii_value_from_a_variable_in_listen_names_the_variable_and_the_key(tmp_path: Path) -> None:
    (tmp_path / "moxiehook.toml").write_text('[endpoints.crm]\nauth = { type = "bearer", token = "${CRM_TOKEN}" }\n')
    listen = subprocess.run([sys.executable, "-m", "moxiehook", "listen", "--endpoint", "crm", "--port", "0"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=30,
                            env={**os.environ, "CRM_TOKEN": "tökén"})
    assert listen.returncode == 2, listen.stderr
    assert "CRM_TOKEN" in listen.stderr and "endpoints.crm.auth.token" in listen.stderr, listen.stderr


@pytest.mark.parametrize(("args", "expected"), [
    (("test", "crm"), "error: endpoint 'crm' has no mappings (add one: moxiehook map add crm EVENT URL)"),
    (("test", "crm", "--event", "ClientCreate"),
     "error: endpoint 'crm' has no mapping for ClientCreate (add one: moxiehook map add crm ClientCreate URL)"),
])
def test_an_endpoint_without_mappings_is_said_in_plain_words(cli, config_path: Path, args: tuple[str, ...],
                                                             expected: str) -> None:
    with config_path.open("a") as handle:
        handle.write("\n[endpoints.crm]\n")
    result = cli(*args)
    assert result.exit_code == 3
    # The hint names the config the command was given (the cli fixture passes --config).
    assert result.stderr.strip() == expected.replace("moxiehook map", f"moxiehook --config {config_path} map")
