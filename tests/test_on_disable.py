"""``settings.on_disable``: a real hook process run when a real ``fire`` disables an endpoint."""

from __future__ import annotations

import json
import os
import sys
import time
import tomllib
from pathlib import Path

import pytest

from moxiehook.config import load_config
from moxiehook.send import dispatch
from moxiehook.send.hooks import run_on_disable
from tests.conftest import Answer, Receiver, run_moxiehook

# Writes what it was given to the file named by argv[1]: its MOXIEHOOK_* variables, whether the
# config's secrets reached it, what stdin held; and prints a line (which must land on stderr).
RECORDER = r"""
import json, os, sys
seen = {name: value for name, value in os.environ.items() if name.startswith("MOXIEHOOK_")}
seen["secrets"] = [name for name in ("HOOK_TOKEN", "HOOK_HEADER") if name in os.environ]
seen["kept"] = os.environ.get("HOOK_KEEP")
seen["stdin"] = sys.stdin.read()
open(sys.argv[1], "w").write(json.dumps(seen))
print("hook ran for", seen["MOXIEHOOK_ENDPOINT"])
"""


def config_with_hook(path: Path, hook: list[str], url: str) -> Path:
    path.write_text(
        'version = 1\n\n[settings]\nlog_file = "log.jsonl"\ntimeout = 5.0\nmax_attempts = 1\n'
        f"on_disable = {json.dumps(hook)}\n\n"
        '[endpoints.crm]\nauth = { type = "bearer", token = "${HOOK_TOKEN}" }\n'
        'headers = { "X-Key" = "${HOOK_HEADER}" }\n'
        f'[[endpoints.crm.mappings]]\nevent = "ClientCreate"\nurl = "{url}"\n'
    )
    return path


ENV = {"HOOK_TOKEN": "tok-secret-1", "HOOK_HEADER": "hdr-secret-2", "HOOK_KEEP": "kept"}


def test_on_disable_gets_what_happened_and_no_secret(receiver: Receiver, tmp_path: Path) -> None:
    receiver.answer("/hook", Answer(status=401))
    seen_file = tmp_path / "seen.json"
    config = config_with_hook(tmp_path / "moxiehook.toml", [sys.executable, "-c", RECORDER, str(seen_file)],
                              receiver.url("/hook"))
    fired = run_moxiehook("--config", str(config), "fire", "ClientCreate", "--json", cwd=tmp_path, env=ENV)
    assert fired.returncode == 1  # as without a hook: an endpoint was disabled
    json.loads(fired.stdout)  # stdout is still one JSON document: the hook's output went to stderr
    assert "hook ran for crm" in fired.stderr
    assert "warning" not in fired.stderr
    seen = json.loads(seen_file.read_text())
    assert seen == {
        "MOXIEHOOK_ENDPOINT": "crm",
        "MOXIEHOOK_REASON": f"HTTP 401 Unauthorized from POST {receiver.url('/hook')}",
        "MOXIEHOOK_STATUS": "401",
        "MOXIEHOOK_URL": receiver.url("/hook"),
        "MOXIEHOOK_CONFIG": str(config),
        "secrets": [],
        "kept": "kept",
        "stdin": "",
    }
    assert tomllib.loads(config.read_text())["endpoints"]["crm"]["enabled"] is False


def test_a_missing_hook_is_one_warning_and_changes_nothing(receiver: Receiver, tmp_path: Path) -> None:
    receiver.answer("/hook", Answer(status=401))
    config = config_with_hook(tmp_path / "moxiehook.toml", ["/nonexistent/notify"], receiver.url("/hook"))
    fired = run_moxiehook("--config", str(config), "fire", "ClientCreate", cwd=tmp_path, env=ENV)
    assert fired.returncode == 1
    warnings = [line for line in fired.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: settings.on_disable (/nonexistent/notify) could not be started: "
                        "No such file or directory"]
    assert "Traceback" not in fired.stderr
    assert "endpoint 'crm' was disabled" in fired.stderr
    assert tomllib.loads(config.read_text())["endpoints"]["crm"]["enabled"] is False


def test_a_failing_hook_is_one_warning_and_the_exit_code_is_unchanged(receiver: Receiver, tmp_path: Path) -> None:
    receiver.answer("/hook", Answer(status=401))
    config = config_with_hook(tmp_path / "moxiehook.toml", [sys.executable, "-c", "raise SystemExit(3)"],
                              receiver.url("/hook"))
    fired = run_moxiehook("--config", str(config), "fire", "ClientCreate", cwd=tmp_path, env=ENV)
    assert fired.returncode == 1
    assert [line for line in fired.stderr.splitlines() if line.startswith("warning:")] == [
        f"warning: settings.on_disable ({sys.executable}) exited with status 3 "
        "(endpoint 'crm' is disabled all the same)"]


def test_no_disable_no_hook(receiver: Receiver, tmp_path: Path) -> None:
    seen_file = tmp_path / "seen.json"
    config = config_with_hook(tmp_path / "moxiehook.toml", [sys.executable, "-c", RECORDER, str(seen_file)],
                              receiver.url("/hook"))
    fired = run_moxiehook("--config", str(config), "fire", "ClientCreate", cwd=tmp_path, env=ENV)
    assert fired.returncode == 0, fired.stderr
    disabled = run_moxiehook("--config", str(config), "endpoint", "disable", "crm", cwd=tmp_path)
    assert disabled.returncode == 0
    assert not seen_file.exists()  # neither a delivered run nor a disable by hand runs the hook


def test_a_hanging_hook_and_what_it_started_are_stopped_at_the_limit(tmp_path: Path) -> None:
    """The core call with a 1 s limit (the CLI's 10 s one is the slow test below)."""
    pid_file = tmp_path / "child.pid"
    hang = ("import subprocess, sys, time; "
            f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            f"open({str(pid_file)!r}, 'w').write(str(child.pid)); time.sleep(60)")
    config = config_with_hook(tmp_path / "moxiehook.toml", [sys.executable, "-c", hang], "http://127.0.0.1:9/x")
    started = time.monotonic()
    problem = run_on_disable(load_config(config), config, "crm", "HTTP 401", 401, "http://127.0.0.1:9/x", timeout=1.0)
    assert time.monotonic() - started < 30  # bounded, not the hook's 60 s
    assert problem == f"settings.on_disable ({sys.executable}) did not finish within 1 s and was stopped"
    child = int(pid_file.read_text())
    for _ in range(100):  # the grandchild was killed with its group (bounded wait for the kernel to reap it)
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{child}/stat").read_text().split()[2] == "Z":
            break
        time.sleep(0.05)
    else:
        pytest.fail("the hook's child survived")


@pytest.mark.parametrize(("value", "message"), [
    ('"notify-send"', "settings.on_disable: expected an array"),
    ('[""]', "settings.on_disable[0]: expected a non-empty string"),
    ('["notify-send", 1]', "settings.on_disable[1]: expected a non-empty string"),
])
def test_a_bad_on_disable_is_a_config_error(tmp_path: Path, value: str, message: str) -> None:
    config = tmp_path / "moxiehook.toml"
    config.write_text(f'version = 1\n\n[settings]\non_disable = {value}\n')
    result = run_moxiehook("--config", str(config), "config", "validate", cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------
# hooks run side by side, off the delivery path, within one budget; Ctrl-C ends them

# Waits (bounded) until the file argv[1] exists or holds argv[2], then exits 0; exits 7 if it never does.
WAIT_FOR = r"""
import sys, time, pathlib
path, text = pathlib.Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] != "-" else None
if len(sys.argv) > 3:
    pathlib.Path(sys.argv[3]).write_text("started")
for _ in range(400):
    if path.exists() and (text is None or text in path.read_text()):
        sys.exit(0)
    time.sleep(0.05)
sys.exit(7)
"""


def two_endpoint_config(path: Path, hook: list[str], first: str, second: str) -> Path:
    path.write_text(
        'version = 1\n\n[settings]\nlog_file = "log.jsonl"\ntimeout = 5.0\nmax_attempts = 1\n'
        f"on_disable = {json.dumps(hook)}\n\n"
        + "".join(f'[endpoints.{name}]\nauth = {{ type = "none" }}\n[[endpoints.{name}.mappings]]\n'
                  f'event = "ClientCreate"\nurl = "{url}"\n' for name, url in (("a", first), ("b", second)))
    )
    return path


def run(config: Path, budget: float, concurrency: int = 1) -> dispatch.RunSummary:
    loaded = load_config(config)
    plan = dispatch.plan_fire(loaded, "ClientCreate", None)
    return dispatch.run_jobs(config, loaded, dispatch.fire_jobs(plan, "ClientCreate", [{"id": "x"}]),
                             dispatch.RunOptions(concurrency=concurrency, hook_timeout=budget))


def test_hooks_of_two_endpoints_run_side_by_side(receiver: Receiver, tmp_path: Path) -> None:
    """Each hook waits for the other's mark: one after the other, the first would wait out the budget."""
    receiver.answer("/a", Answer(status=401))
    receiver.answer("/b", Answer(status=410))
    # Each hook marks itself started (argv[3]) and waits for the other endpoint's mark.
    hook = [sys.executable, "-c",
            "import os, subprocess, sys; me = os.environ['MOXIEHOOK_ENDPOINT']; other = 'b' if me == 'a' else 'a'; "
            f"sys.exit(subprocess.call([sys.executable, '-c', {WAIT_FOR!r}, "
            f"{str(tmp_path)!r} + '/' + other, '-', {str(tmp_path)!r} + '/' + me]))"]
    config = two_endpoint_config(tmp_path / "moxiehook.toml", hook, receiver.url("/a"), receiver.url("/b"))
    summary = run(config, budget=30)
    assert sorted(name for name, _ in summary.disabled) == ["a", "b"]
    assert summary.warnings == []


def test_a_hook_does_not_hold_up_the_deliveries_after_it(receiver: Receiver, tmp_path: Path) -> None:
    """One sending thread: endpoint a is disabled first; its hook waits until b's delivery is in the log."""
    receiver.answer("/a", Answer(status=401))
    log = tmp_path / "log.jsonl"
    hook = [sys.executable, "-c", WAIT_FOR, str(log), '"endpoint":"b"']
    config = two_endpoint_config(tmp_path / "moxiehook.toml", hook, receiver.url("/a"), receiver.url("/b"))
    summary = run(config, budget=30, concurrency=1)
    assert (summary.delivered, summary.disabled[0][0]) == (1, "a")
    assert summary.warnings == []  # the hook saw b delivered while it ran


def test_the_budget_is_for_all_the_hooks_of_a_run(receiver: Receiver, tmp_path: Path) -> None:
    receiver.answer("/a", Answer(status=401))
    receiver.answer("/b", Answer(status=401))
    config = two_endpoint_config(tmp_path / "moxiehook.toml", [sys.executable, "-c", "import time; time.sleep(60)"],
                                 receiver.url("/a"), receiver.url("/b"))
    summary = run(config, budget=0.5, concurrency=2)
    stopped = f"settings.on_disable ({sys.executable}) did not finish within 0.5 s and was stopped"
    assert summary.warnings == [stopped] * 2
    # The commands' budget: 10 s in all (a test injects a shorter one instead of waiting it out).
    from moxiehook.send import RunOptions

    assert RunOptions(concurrency=1).hook_timeout == 10.0


def test_ctrl_c_while_a_hook_runs_ends_the_command_at_once(receiver: Receiver, tmp_path: Path) -> None:
    """A real process: Ctrl-C once the hook has started kills the hook's group and exits 130, without the 10 s wait."""
    import signal
    import subprocess

    receiver.answer("/hook", Answer(status=401))
    started = tmp_path / "started"
    hook = [sys.executable, "-c", WAIT_FOR, str(tmp_path / "never"), "-", str(started)]
    config = config_with_hook(tmp_path / "moxiehook.toml", hook, receiver.url("/hook"))
    process = subprocess.Popen([sys.executable, "-m", "moxiehook", "--config", str(config), "fire", "ClientCreate"],
                               cwd=tmp_path, env={**os.environ, **ENV}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(400):  # bounded: until the hook is running
            if started.exists():
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=5)  # the hook's 10 s would run past this
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 130, stderr
    assert f"settings.on_disable ({sys.executable}) was stopped (Ctrl-C)" in stderr
