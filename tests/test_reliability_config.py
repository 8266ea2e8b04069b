"""Concurrent edits of one config file by many real processes lose nothing.

The claim: every edit is a read-modify-write under an exclusive lock
with an atomic rename, so commands running at the same time never lose each
other's change. Only real processes can show it: threads in one interpreter
would share the GIL and could hide a missing lock.

Two shapes:

- 16 worker processes, each a small ``python -c`` script calling the core
  ``moxiehook.config.edits`` functions (8 ``add_mapping`` and 3 toggles). One
  interpreter per worker doing many edits keeps the test to a few seconds on 2
  cores: the contention is in the edits, and interpreter start-up (most of
  the cost of more workers) measures nothing about locking.
- 12 real ``python -m moxiehook`` processes (the full CLI path: option
  parsing, the error handler, the same store) editing at once: mappings,
  toggles, headers and new endpoints, each landing and none undoing another.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from moxiehook.config import edits as ops
from moxiehook.config.model import Endpoint
from moxiehook.config.store import load_config
from moxiehook.log.records import iter_records

WORKERS = 16
MAPPINGS_PER_WORKER = 8

# Each worker adds its 8 mappings to its own endpoint AND to the shared one
# (so two kinds of contention: on the file, and on one endpoint's list), then
# toggles its own endpoint disable → enable → (disable if even).
WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from moxiehook.config import edits as ops

    path, index = Path(sys.argv[1]), int(sys.argv[2])
    name = f"ep{index:02d}"
    for n in range(MAPPINGS_PER_WORKER):
        ops.add_mapping(path, name, "ClientCreate", f"https://hooks.example.com/{index}/{n}")
        ops.add_mapping(path, "shared", "ClientUpdate", f"https://shared.example.com/{index}/{n}")
    ops.disable_endpoint(path, name, f"worker {index} first pass")
    ops.enable_endpoint(path, name)
    if index % 2 == 0:
        ops.disable_endpoint(path, name, f"worker {index} final")
    """
).replace("MAPPINGS_PER_WORKER", str(MAPPINGS_PER_WORKER))


def _spawn_all(commands: list[list[str]], cwd: Path, timeout: float = 60) -> list[subprocess.CompletedProcess[str]]:
    """Start every command before waiting for any, so they really overlap."""
    procs = [
        subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for cmd in commands
    ]
    results = []
    for cmd, proc in zip(commands, procs, strict=False):
        out, err = proc.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess(cmd, proc.returncode, out, err))
    return results


@pytest.fixture
def many_endpoints(config_path: Path) -> Path:
    for index in range(WORKERS):
        ops.add_endpoint(config_path, Endpoint(name=f"ep{index:02d}"))
    ops.add_endpoint(config_path, Endpoint(name="shared"))
    return config_path


@pytest.mark.slow
def test_16_processes_editing_at_once_lose_no_mapping_and_no_toggle(many_endpoints: Path) -> None:
    path = many_endpoints
    results = _spawn_all(
        [[sys.executable, "-c", WORKER, str(path), str(i)] for i in range(WORKERS)], cwd=path.parent
    )
    for result in results:
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr

    config = load_config(path)
    for index in range(WORKERS):
        endpoint = config.endpoints[f"ep{index:02d}"]
        assert [m.url for m in endpoint.mappings] == [
            f"https://hooks.example.com/{index}/{n}" for n in range(MAPPINGS_PER_WORKER)
        ]
        if index % 2 == 0:
            assert not endpoint.enabled
            assert endpoint.disabled_reason == f"worker {index} final"
            assert endpoint.disabled_at
        else:
            assert endpoint.enabled
            assert endpoint.disabled_reason is None and endpoint.disabled_at is None
    shared = {m.url for m in config.endpoints["shared"].mappings}
    assert len(config.endpoints["shared"].mappings) == WORKERS * MAPPINGS_PER_WORKER
    assert shared == {
        f"https://shared.example.com/{i}/{n}" for i in range(WORKERS) for n in range(MAPPINGS_PER_WORKER)
    }

    # Every toggle also appended one whole `endpoint` record to the log.
    bad: list[int] = []
    records = list(iter_records(path.parent / "log.jsonl", on_bad_line=bad.append))
    assert bad == []
    expected = WORKERS * 2 + WORKERS // 2  # disable + enable each, + the evens' final disable
    assert len(records) == expected
    assert sum(r.action == "disabled" for r in records) == WORKERS + WORKERS // 2

    # No temp file left behind by 16 x 19 atomic writes.
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "log.jsonl", "log.jsonl.lock", "moxiehook.toml", "moxiehook.toml.lock"]


def test_12_cli_processes_editing_at_once_lose_nothing(config_path: Path) -> None:
    for index in range(4):
        ops.add_endpoint(config_path, Endpoint(name=f"cli{index}"))
    base = [sys.executable, "-m", "moxiehook", "--config", str(config_path)]
    commands = []
    for index in range(4):
        name = f"cli{index}"
        commands.append(base + ["map", "add", name, "ClientCreate", f"https://a.example.com/{index}"])
        commands.append(base + ["map", "add", name, "ClientDelete", f"https://b.example.com/{index}"])
        commands.append(base + ["endpoint", "disable", name, "--reason", f"cli {index}"])
    commands[-3:] = [base + ["endpoint", "add", "billing", "--token", "${BILLING_TOKEN}"],
                     base + ["endpoint", "set-header", "cli3", "X-Team", "ops"],
                     base + ["endpoint", "disable", "cli3", "--reason", "cli 3"]]
    results = _spawn_all(commands, cwd=config_path.parent)
    for result in results:
        assert result.returncode == 0, (result.args, result.stderr)
        assert "Traceback" not in result.stderr

    listed = json.loads(
        subprocess.run(base + ["map", "list", "--json"], capture_output=True, text=True, check=True).stdout
    )
    assert sorted((row["endpoint"], row["url"], row["enabled"]) for row in listed) == sorted(
        (f"cli{i}", f"https://{host}.example.com/{i}", False) for i in range(3) for host in "ab"
    )
    config = load_config(config_path)
    assert set(config.endpoints) == {"cli0", "cli1", "cli2", "cli3", "billing"}
    assert config.endpoints["cli3"].headers == {"X-Team": "ops"}
    assert config.endpoints["billing"].auth.token == "${BILLING_TOKEN}"
    assert [config.endpoints[f"cli{i}"].disabled_reason for i in range(4)] == [f"cli {i}" for i in range(4)]
    check = subprocess.run(base + ["config", "validate"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_a_losing_racer_gets_a_clean_error_and_the_winner_is_kept(config_path: Path) -> None:
    """Eight processes add the same endpoint: one wins, seven exit 2 with one line."""
    base = [sys.executable, "-m", "moxiehook", "--config", str(config_path)]
    results = _spawn_all(
        [base + ["endpoint", "add", "same", "--token", f"t{i}", "--description", f"by {i}"] for i in range(8)],
        cwd=config_path.parent,
    )
    winners = [r for r in results if r.returncode == 0]
    losers = [r for r in results if r.returncode != 0]
    assert len(winners) == 1
    for loser in losers:
        assert loser.returncode == 2
        assert loser.stderr.strip() == "error: endpoint 'same' already exists"
    winner_index = results.index(winners[0])
    endpoint = load_config(config_path).endpoints["same"]
    assert endpoint.description == f"by {winner_index}"
    assert endpoint.auth.token == f"t{winner_index}"
    assert os.stat(config_path).st_mode & 0o777 == 0o600  # it holds a literal token
