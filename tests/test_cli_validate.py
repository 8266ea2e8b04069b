"""`config validate` catches what an edit by hand lets through: a near-miss event, a mistyped key."""

from __future__ import annotations

from pathlib import Path


def test_a_hand_edited_near_miss_event_is_a_warning_with_the_suggestion(cli, config_path: Path) -> None:
    """`map add crm ClientCreat …` is refused; the same mapping written by hand must not pass silently."""
    with config_path.open("a") as handle:
        handle.write('\n[endpoints.crm]\n[[endpoints.crm.mappings]]\nevent = "ClientCreat"\n'
                     'url = "http://127.0.0.1:8787/hooks"\n')
    refused = cli("map", "add", "crm", "ClientCreat", "http://127.0.0.1:8787/hooks")
    assert refused.exit_code == 2
    result = cli("config", "validate")
    assert result.exit_code == 0  # still a valid file: the user's own event type may look like that
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert any("endpoints.crm.mappings[0].event" in line and "'ClientCreat'" in line
               and "did you mean ClientCreate?" in line for line in warnings), result.stderr


def test_an_own_event_far_from_the_catalog_gets_no_warning(cli, config_path: Path) -> None:
    with config_path.open("a") as handle:
        handle.write('\n[endpoints.crm]\nauth = { type = "bearer", token = "${T}" }\n'
                     '[[endpoints.crm.mappings]]\nevent = "WarehouseRestocked"\nurl = "http://127.0.0.1:8787/hooks"\n')
    result = cli("config", "validate")
    assert result.exit_code == 0
    assert result.stderr == ""


def test_an_unknown_key_gets_the_closest_known_one(cli, config_path: Path) -> None:
    config_path.write_text(config_path.read_text().replace("timeout = 2.0", "timout = 2.0"))
    result = cli("config", "validate")
    assert result.exit_code == 2
    assert "settings.timout: unknown key (did you mean 'timeout'?)" in result.stderr


def test_an_unknown_key_in_an_endpoint_gets_the_closest_known_one(cli, config_path: Path) -> None:
    with config_path.open("a") as handle:
        handle.write('\n[endpoints.crm]\ndescripton = "CRM"\n')
    result = cli("config", "validate")
    assert result.exit_code == 2
    assert "endpoints.crm.descripton: unknown key (did you mean 'description'?)" in result.stderr
