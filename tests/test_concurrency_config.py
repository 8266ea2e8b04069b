"""Concurrent edits from real processes never lose an update (SPEC §3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from moxiehook.config.store import load_config

PROCESSES = 12


@pytest.fixture
def crm_config(config_path: Path) -> None:
    """The basic config plus an endpoint 'crm' without mappings."""
    config_path.write_text(config_path.read_text() + "\n[endpoints.crm]\n")


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "moxiehook", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ},
    )


def test_parallel_map_add_keeps_every_mapping(crm_config: None, config_path: Path) -> None:
    before = load_config(config_path)
    assert before.endpoints["crm"].mappings == []
    urls = [f"https://crm.example.com/hooks/{n}" for n in range(PROCESSES)]
    # Start them all before waiting for any, so their edits overlap.
    processes = [start("--config", str(config_path), "map", "add", "crm", "ClientCreate", url) for url in urls]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=120)
        results.append((process.returncode, stdout, stderr))
    assert [code for code, _, _ in results] == [0] * PROCESSES, [r for r in results if r[0]]
    mappings = load_config(config_path).endpoints["crm"].mappings
    assert sorted(m.url for m in mappings) == sorted(urls)
    assert {m.event for m in mappings} == {"ClientCreate"}
    # no temp file left behind by any writer
    assert sorted(p.name for p in config_path.parent.iterdir()) == ["moxiehook.toml", "moxiehook.toml.lock"]


def test_parallel_toggles_and_edits_of_different_endpoints(crm_config: None, config_path: Path) -> None:
    """Different kinds of edit at once: each lands, none undoes another."""
    path = str(config_path)
    commands = [
        ("endpoint", "add", "billing", "--token", "${BILLING_TOKEN}"),
        ("endpoint", "disable", "crm", "--reason", "maintenance"),
        ("endpoint", "set-header", "crm", "X-Team", "ops"),
        ("map", "add", "crm", "ClientUpdate", "https://crm.example.com/u"),
        ("endpoint", "add", "audit"),
        ("map", "add", "crm", "ClientDelete", "https://crm.example.com/d"),
    ]
    processes = [start("--config", path, *command) for command in commands]
    codes = [p.wait(timeout=120) for p in processes]
    for process in processes:
        process.communicate()
    assert codes == [0] * len(commands)
    config = load_config(config_path)
    assert set(config.endpoints) == {"crm", "billing", "audit"}
    crm = config.endpoints["crm"]
    assert (crm.enabled, crm.disabled_reason, crm.headers) == (False, "maintenance", {"X-Team": "ops"})
    assert sorted(m.event for m in crm.mappings) == ["ClientDelete", "ClientUpdate"]
