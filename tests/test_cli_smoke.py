"""A first pass through the CLI runner: errors are one line and exit 2."""

from pathlib import Path


def test_unknown_endpoint_is_one_error_line(cli, config_path: Path) -> None:
    before = config_path.read_bytes()
    result = cli("endpoint", "status", "nope")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: unknown endpoint 'nope' (see: moxiehook endpoint list)"
    assert result.stdout == ""
    assert config_path.read_bytes() == before
