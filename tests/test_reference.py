"""docs/reference.md is what the CLI itself says: regenerated, it must not change."""

from __future__ import annotations

from pathlib import Path

from moxiehook.cli import reference

PAGE = Path(__file__).resolve().parent.parent / "docs" / "reference.md"


def test_the_checked_in_reference_is_what_the_cli_generates() -> None:
    assert PAGE.read_text(encoding="utf-8") == reference.render(), (
        f"docs/reference.md is out of date with the CLI: regenerate it with `{reference.COMMAND}`"
    )


def test_the_reference_covers_every_command_with_its_usage(cli) -> None:
    page = reference.render()
    for path in ("moxiehook fire", "moxiehook endpoint add", "moxiehook logs show", "moxiehook listen"):
        assert f"## `{path}`" in page
    assert "moxiehook fire [OPTIONS] EVENT" in page  # usage as --help shows it, no {EVENT}
    assert "[bold]" not in page
