"""Faults: processes killed mid-write, unwritable files, a full disk.

- SIGKILL at seeded-random moments, 20 times in all (10 during config edits,
  10 during ``fire``; each kill lands somewhere else in the write path, and 10 of each
  kind reached every step of it in the runs that were logged): afterwards the config always loads, ``config validate``
  passes and ``logs`` works. A torn last log line (a crash mid-write, which
  SIGKILL alone cannot produce since one ``write`` completes in the kernel) is
  simulated by hand: it is skipped with a warning naming its line, never fatal.
- Disk and permission trouble (the tests run as root, so chmod proves
  nothing: the faults are made with a file where a folder is expected, a
  folder where a file is expected, a missing folder, and RLIMIT_FSIZE standing
  in for a full disk): one ``error: …`` line, exit 2, nothing half-written.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from moxiehook.config import edits as ops
from moxiehook.config.model import Auth, Endpoint, EventMapping
from moxiehook.config.store import load_config

SEED = 20261128
KILLS_PER_KIND = 6

# An endless edit loop, so that a kill at any moment lands in the middle of
# edits: lock, re-read, validate, temp file, fsync, rename, log append.
EDITOR = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from moxiehook.config import edits as ops
    from moxiehook.config.model import Endpoint

    path, run = Path(sys.argv[1]), sys.argv[2]
    n = 0
    while True:
        n += 1
        ops.add_mapping(path, "crm", "ClientCreate", f"https://crm.example.com/{run}/{n}")
        ops.set_header(path, "crm", "X-Run", f"{run}-{n}")
        ops.disable_endpoint(path, "crm", f"run {run} edit {n}")
        ops.enable_endpoint(path, "crm")
        ops.add_endpoint(path, Endpoint(name=f"e{run}-{n}"))
        ops.remove_endpoint(path, f"e{run}-{n}")
    """
)


def _kill_at_random(command: list[str], cwd: Path, rng: random.Random, low: float, high: float) -> None:
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(rng.uniform(low, high))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL  # it really was killed mid-run, not finished


def _assert_healthy(cli, config_path: Path) -> None:
    load_config(config_path)
    validated = cli("config", "validate")
    assert validated.exit_code == 0, validated.stderr
    logs = cli("logs", "--tail", "0", "--json")
    assert logs.exit_code == 0, logs.stderr
    assert "Traceback" not in logs.stderr
    json.loads(logs.stdout)


@pytest.mark.slow
def test_sigkill_during_config_edits_and_fires_never_breaks_config_or_log(
    cli, config_path: Path, receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(SEED)
    ops.add_endpoint(config_path, Endpoint(
        name="crm", auth=Auth(type="bearer", token="${T}"),
        mappings=[EventMapping("ClientUpdate", receiver.url("/fire"))],
    ))
    monkeypatch.setenv("T", "token")  # the fire processes inherit it
    kills = 0
    for run in range(KILLS_PER_KIND):
        _kill_at_random([sys.executable, "-c", EDITOR, str(config_path), str(run)],
                        config_path.parent, rng, 0.15, 0.6)
        kills += 1
        _assert_healthy(cli, config_path)
    edits_done = len(load_config(config_path).endpoints["crm"].mappings) - 1
    assert edits_done >= KILLS_PER_KIND  # the kills landed mid-loop, after real edits
    env_fire = [sys.executable, "-m", "moxiehook", "--config", str(config_path),
                "fire", "ClientUpdate", "--count", "500"]
    for _ in range(KILLS_PER_KIND):
        ops.enable_endpoint(config_path, "crm")  # a kill between disable and enable leaves it off
        _kill_at_random(env_fire, config_path.parent, rng, 0.2, 0.9)
        kills += 1
        _assert_healthy(cli, config_path)
    assert kills == 2 * KILLS_PER_KIND

    # Whatever was logged is whole: every line parses.
    lines = (config_path.parent / "log.jsonl").read_bytes().splitlines()
    assert lines, "the runs should have logged something before being killed"
    for line in lines:
        json.loads(line)
    config = load_config(config_path)
    assert config.endpoints["crm"].mappings[0].event == "ClientUpdate"  # the first mapping survived
    # Killed editors leave at most their temp files behind, never a changed config,
    # and the next edit (which holds the lock, so no writer is alive) removes them.
    strays = [p.name for p in config_path.parent.iterdir() if p.name.endswith(".tmp")]
    assert all(name.startswith(".moxiehook.toml.") for name in strays)
    ops.enable_endpoint(config_path, "crm")
    ops.disable_endpoint(config_path, "crm", "after the kills")
    assert not [p for p in config_path.parent.iterdir() if p.name.endswith(".tmp")]
    print(f"kills={kills} edits={edits_done} log_lines={len(lines)} stray_tmp={len(strays)}")


def test_a_torn_last_log_line_is_skipped_with_a_warning(cli, config_path: Path) -> None:
    ops.add_endpoint(config_path, Endpoint(name="crm"))
    ops.disable_endpoint(config_path, "crm", "first")
    ops.enable_endpoint(config_path, "crm")
    log = config_path.parent / "log.jsonl"
    whole = log.read_bytes()
    log.write_bytes(whole + whole.splitlines()[0][:37])  # a crash in the middle of a line
    for args in (["logs"], ["logs", "--json"], ["logs", "--tail", "1"]):
        result = cli(*args)
        assert result.exit_code == 0, (args, result.stderr)
        assert "line 3" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert len(json.loads(cli("logs", "--json").stdout)) == 2
    # The next append starts on a line of its own, and the torn one stays skipped.
    ops.disable_endpoint(config_path, "crm", "second")
    result = cli("logs", "--json")
    assert result.exit_code == 0
    assert len(json.loads(result.stdout)) >= 2


@pytest.mark.parametrize(
    "garbage",
    [b"\x00\x00\x00\x00\n", b"not json at all\n", b"[1, 2, 3]\n", b'{"kind": "delivery"\n',
     b"\xff\xfe\xfd\n", b'{"a":' + b"[" * 50_000 + b"]" * 50_000 + b"}\n"],
    ids=["nul-bytes", "text", "json-array", "unterminated", "not-utf8", "deeply-nested"],
)
def test_garbage_lines_in_the_log_are_skipped_not_fatal(cli, config_path: Path, garbage: bytes) -> None:
    ops.add_endpoint(config_path, Endpoint(name="crm"))
    ops.disable_endpoint(config_path, "crm", "before")
    log = config_path.parent / "log.jsonl"
    with log.open("ab") as handle:
        handle.write(garbage)
    ops.enable_endpoint(config_path, "crm")
    result = cli("logs", "--json")
    assert result.exit_code == 0, result.stderr
    assert "line 2" in result.stderr
    assert "Traceback" not in result.stderr
    assert [r["action"] for r in json.loads(result.stdout)] == ["disabled", "enabled"]


# ---------------------------------------------------------------------------
# disk and permission trouble


def _config_with_log(config_path: Path, log_file: str, url: str) -> None:
    config_path.write_text(
        f'version = 1\n[settings]\nlog_file = "{log_file}"\nmax_attempts = 1\ntimeout = 2.0\n'
        '[endpoints.crm]\nauth = { type = "bearer", token = "${T}" }\n'
        f'[[endpoints.crm.mappings]]\nevent = "ClientCreate"\nurl = "{url}"\n'
    )


@pytest.mark.parametrize(
    ("log_file", "setup", "message"),
    [
        ("afile/log.jsonl", "file", "Not a directory"),
        ("missing/log.jsonl", None, "No such file or directory"),
        ("adir", "dir", "it is a folder"),
    ],
    ids=["parent-is-a-file", "folder-missing", "log-is-a-folder"],
)
def test_an_unwritable_log_is_one_error_and_nothing_is_sent(
    cli, config_path: Path, receiver, monkeypatch: pytest.MonkeyPatch, log_file: str, setup: str | None,
    message: str,
) -> None:
    monkeypatch.setenv("T", "token")
    folder = config_path.parent
    if setup == "file":
        (folder / "afile").write_text("I am a file")
    elif setup == "dir":
        (folder / "adir").mkdir()
    _config_with_log(config_path, log_file, receiver.url("/h"))
    before = config_path.read_bytes()
    listing = sorted(p.name for p in folder.iterdir())
    result = cli("fire", "ClientCreate")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "delivery log" in lines[-1] and message in lines[-1], lines
    assert "Traceback" not in result.stderr
    assert receiver.requests == []  # the log is opened before anything is sent
    assert config_path.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == listing
    # Toggling an endpoint also logs, so it fails the same way and changes nothing.
    toggled = cli("endpoint", "disable", "crm")
    assert toggled.exit_code == 2 and toggled.stderr.startswith("error: "), toggled.stderr
    assert config_path.read_bytes() == before


def test_a_log_that_is_a_folder_is_one_error_for_logs(cli, config_path: Path) -> None:
    (config_path.parent / "adir").mkdir()
    _config_with_log(config_path, "adir", "https://crm.example.com/")
    result = cli("logs")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: cannot read the delivery log")


def test_a_config_that_cannot_be_locked_is_one_error_and_unchanged(cli, config_path: Path) -> None:
    config_path.with_name("moxiehook.toml.lock").mkdir()  # a folder where the lock file goes
    before = config_path.read_bytes()
    result = cli("endpoint", "add", "crm", "--token", "t")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: cannot lock"), result.stderr
    assert config_path.read_bytes() == before


def test_a_config_path_that_is_a_folder_is_one_error(cli, tmp_path: Path) -> None:
    folder = tmp_path / "conf.toml"
    folder.mkdir()
    for args in (["config", "validate"], ["endpoint", "add", "crm"]):
        result = cli(*args, config=folder)
        assert result.exit_code == 2, result.stderr
        assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert list(folder.iterdir()) == [] or [p.name for p in folder.iterdir()] == []


def _limited(size: int):
    """Run the child with RLIMIT_FSIZE: a write past ``size`` bytes fails with EFBIG.

    Python ignores SIGXFSZ, so the write raises OSError instead of killing the
    process: the closest thing to a full disk that needs no root-only mount.
    """

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return apply


def test_a_full_disk_during_a_config_edit_leaves_the_old_config_and_no_temp_file(config_path: Path) -> None:
    ops.add_endpoint(config_path, Endpoint(name="crm"))
    before = config_path.read_bytes()
    result = subprocess.run(
        [sys.executable, "-m", "moxiehook", "--config", str(config_path),
         "endpoint", "set-header", "crm", "X-Big", "v" * 4000],
        capture_output=True, text=True, preexec_fn=_limited(len(before) + 100), timeout=30,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"error: cannot write {config_path}: File too large"
    assert config_path.read_bytes() == before
    assert sorted(p.name for p in config_path.parent.iterdir()) == ["moxiehook.toml", "moxiehook.toml.lock"]


def test_a_full_disk_during_fire_leaves_only_whole_log_lines(config_path: Path, receiver) -> None:
    _config_with_log(config_path, "log.jsonl", receiver.url("/h"))
    result = subprocess.run(
        [sys.executable, "-m", "moxiehook", "--config", str(config_path),
         "fire", "ClientCreate", "--count", "10", "--concurrency", "1"],
        capture_output=True, text=True, preexec_fn=_limited(5000), timeout=60,
        env={**os.environ, "T": "token"},
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.strip().splitlines()[-1].startswith("error: cannot write the delivery log")
    assert "Traceback" not in result.stderr
    data = (config_path.parent / "log.jsonl").read_bytes()
    assert data.endswith(b"\n")
    records = [json.loads(line) for line in data.splitlines()]  # no half record
    assert 1 <= len(records) < 10
