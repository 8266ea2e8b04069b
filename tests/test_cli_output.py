"""What reaches the terminal and stdout: colours, NO_COLOR, write errors on stdout, table layout.

Run as real processes, on a pseudo-terminal where the terminal is the point.
"""

from __future__ import annotations

from pathlib import Path

from terminal import run_in_terminal


def test_error_and_warning_labels_are_coloured_on_a_terminal_unless_no_color(config_path: Path) -> None:
    """NO_COLOR (https://no-color.org) turns off the `error:`/`warning:` colours too, not only Rich's."""
    folder = config_path.parent
    code, shown = run_in_terminal("endpoint", "show", "nope", cwd=folder)
    assert code == 2
    assert "\x1b[" in shown and "error:" in shown
    for value in ("1", "yes"):
        code, shown = run_in_terminal("endpoint", "show", "nope", cwd=folder, env={"NO_COLOR": value})
        assert code == 2
        assert shown == "error: unknown endpoint 'nope' (see: moxiehook endpoint list)\n"
    (folder / "log.jsonl").write_text("torn\n")
    code, shown = run_in_terminal("logs", "--json", cwd=folder, env={"NO_COLOR": "1"})
    assert code == 0
    assert shown == "warning: log.jsonl line 1 is not a valid log record; skipped\n[]\nthe delivery log is empty\n"
