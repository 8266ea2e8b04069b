"""``demo``: a self-contained tour that leaves no file behind."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from tests.conftest import run_moxiehook


def test_demo_exits_0_in_an_empty_folder_and_leaves_it_and_the_temp_root_as_they_were(tmp_path: Path) -> None:
    cwd = tmp_path / "empty"
    cwd.mkdir()
    temp_root = tmp_path / "temp-root"  # the demo's TemporaryDirectory goes here (TMPDIR)
    temp_root.mkdir()
    env = {"TMPDIR": str(temp_root), "HOME": str(tmp_path / "home")}

    result = run_moxiehook("demo", cwd=cwd, env=env, timeout=60)

    assert result.returncode == 0, result.stderr
    assert list(cwd.iterdir()) == []
    assert list(temp_root.iterdir()) == []
    assert not (tmp_path / "home").exists()
    out, err = result.stdout, result.stderr
    port = re.search(r"a receiver on http://127\.0\.0\.1:(\d+) ", out)
    assert port, out
    # the deliveries as the receiver saw them
    assert re.search(r"POST /legacy +→ 401  ClientCreate, wrong bearer token", out)
    assert re.search(r"POST /shop +→ 204  ClientCreate, auth ok", out)
    assert re.search(r"POST /shop +→ 204  DeliverableCreate, auth ok", out)
    assert "POST /legacy  → 401  DeliverableCreate" not in out  # skipped once disabled
    # the real warning and summaries from fire, on stderr
    legacy = f"http://127.0.0.1:{port.group(1)}/legacy"
    assert f"⚠ endpoint 'legacy' was disabled: HTTP 401 Unauthorized from POST {legacy}" in err
    assert "1 delivered, 1 failed, 0 skipped; disabled: legacy" in err
    assert "⚠ endpoint 'legacy' is disabled, its deliveries were skipped" in err
    assert "1 delivered, 0 failed, 1 skipped" in err
    # endpoint list and logs, as those commands print them
    assert re.search(r"legacy +disabled +bearer", out)
    assert re.search(r"skipped +- +fire +DeliverableCreate +legacy", out)
    assert "that 401 is the point of this demo" in out
    assert "moxiehook endpoint add" in out and "moxiehook listen" in out
    assert len(out.splitlines()) + len(err.splitlines()) < 45  # a short tour


def test_demo_in_process_changes_no_environment_variable(cli, tmp_path: Path) -> None:
    before = dict(os.environ)
    entries_before = set(Path(tempfile.gettempdir()).iterdir())
    result = cli("demo", config=None)
    assert result.exit_code == 0, result.stderr
    assert dict(os.environ) == before
    assert list(tmp_path.glob("*")) == [tmp_path / "moxiehook.toml"]  # only the fixture's own config
    leftovers = {p for p in set(Path(tempfile.gettempdir()).iterdir()) - entries_before
                 if p.name.startswith("moxiehook-demo-")}
    assert leftovers == set()
