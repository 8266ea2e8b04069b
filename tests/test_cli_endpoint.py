"""``endpoint …``: add, list, show, remove, enable/disable/status, auth, headers, secret."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from moxiehook.config.store import load_config
from moxiehook.log.records import iter_records

SECRET = "whsec_" + "QUJD" * 8  # base64 of 24 bytes


@pytest.fixture
def crm(cli) -> str:
    """An endpoint 'crm' with bearer auth from ${CRM_TOKEN} and one mapping."""
    assert cli("endpoint", "add", "crm", "--auth", "bearer", "--token", "${CRM_TOKEN}").exit_code == 0
    assert cli("map", "add", "crm", "ClientCreate", "https://crm.example.com/hooks").exit_code == 0
    return "crm"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------
# add


def test_add_every_auth_type(cli, config_path: Path) -> None:
    assert cli("endpoint", "add", "a", "--auth", "none").exit_code == 0
    assert cli("endpoint", "add", "b", "--auth", "basic", "--username", "u", "--password", "${P}").exit_code == 0
    assert cli("endpoint", "add", "c", "--token", "${T}").exit_code == 0  # --token alone means bearer
    result = cli("endpoint", "add", "d", "--auth", "custom", "--header-name", "X-Api-Key", "--header-value", "${K}",
                 "--header", "X-Team: ops", "--description", "Dee", "--disabled")
    assert result.exit_code == 0, result.stderr
    config = load_config(config_path)
    assert [(e.name, e.auth.type) for e in config.endpoints.values()] == [
        ("a", "none"), ("b", "basic"), ("c", "bearer"), ("d", "custom")
    ]
    d = config.endpoints["d"]
    assert (d.auth.header, d.auth.value, d.headers, d.description) == ("X-Api-Key", "${K}", {"X-Team": "ops"}, "Dee")
    assert not d.enabled and d.disabled_reason and d.disabled_at
    assert config.endpoints["c"].auth.token == "${T}"  # stored verbatim


def test_add_without_auth_warns_on_stderr(cli) -> None:
    result = cli("endpoint", "add", "open")
    assert result.exit_code == 0
    assert "no auth" in result.stderr
    assert "added endpoint 'open'" in result.stdout


def test_add_with_literal_secret_makes_the_file_0600(cli, config_path: Path) -> None:
    config_path.chmod(0o644)
    assert cli("endpoint", "add", "x", "--token", "${T}").exit_code == 0
    assert mode(config_path) == 0o644  # a reference is not a secret
    assert cli("endpoint", "add", "y", "--token", "literal").exit_code == 0
    assert mode(config_path) == 0o600


def test_add_existing_endpoint(rejected, crm: str) -> None:
    rejected("endpoint", "add", "crm", match="endpoint 'crm' already exists")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--auth", "oauth"], ("--auth", "'oauth'")),
        (["--auth", "bearer"], ("--auth bearer needs --token",)),
        (["--auth", "basic", "--username", "u"], ("--password",)),
        (["--auth", "custom", "--header-name", "X-Key"], ("--header-value",)),
        (["--auth", "bearer", "--token", "t", "--password", "p"], ("--password cannot be used with --auth bearer",)),
        (["--header", "X Team: ops"], ("'X Team'", "RFC 9110")),
        (["--header", "no colon"], ("Name: value",)),
        (["--header", "Content-Type: text/plain"], ("'Content-Type'", "cannot be replaced")),
        (["--header", "X-Event-Type: Forged"], ("'X-Event-Type'",)),
        (["--header", "X-Event-Origin: x"], ("'X-Event-Origin'",)),
        (["--header", "Host: evil"], ("'Host'",)),
        (["--header", "content-length: 1"], ("'content-length'",)),
        (["--header", "X-A: a\rb"], ("CR, LF",)),
        (["--header", "X-A: a\nb"], ("CR, LF",)),
        (["--auth", "bearer", "--token", "a\nb"], ("CR, LF",)),
        (["--auth", "custom", "--header-name", "Host", "--header-value", "v"], ("'Host'",)),
        (["--token", "t", "--header", "Authorization: x"], ("already set",)),
        (["--signing-secret", "nope"], ("whsec_",)),
        (["--header", "X-Team: a", "--header", "x-team: b"], ("'x-team'", "twice")),
    ],
)
def test_add_rejects_bad_options(rejected, args: list[str], fragments: tuple[str, ...]) -> None:
    rejected("endpoint", "add", "x", *args, match=fragments)


def test_add_rejects_a_bad_name(rejected) -> None:
    rejected("endpoint", "add", "has space", match="invalid endpoint name")


# --------------------------------------------------------------------------
# list and show


def test_list_table_and_json(cli, crm: str) -> None:
    cli("endpoint", "add", "off", "--disabled")
    result = cli("endpoint", "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "state", "auth", "mappings", "disabled", "reason"]
    assert lines[1].split() == ["crm", "enabled", "bearer", "1"]
    assert lines[2].split()[:4] == ["off", "disabled", "none", "0"]
    assert "added with --disabled" in lines[2]

    data = json.loads(cli("endpoint", "list", "--json").stdout)
    assert [(e["name"], e["enabled"]) for e in data] == [("crm", True), ("off", False)]
    assert data[0]["auth"] == {"type": "bearer", "token": "${CRM_TOKEN}"}


def test_list_empty(cli) -> None:
    result = cli("endpoint", "list")
    assert result.exit_code == 0 and "no endpoints yet" in result.stdout
    assert json.loads(cli("endpoint", "list", "--json").stdout) == []


def test_list_json_masks_literal_secrets(cli) -> None:
    cli("endpoint", "add", "x", "--auth", "basic", "--username", "u", "--password", "hunter2")
    result = cli("endpoint", "list", "--json")
    assert "hunter2" not in result.stdout
    assert json.loads(result.stdout)[0]["auth"]["password"] == "***"


def test_show_masks_literal_secrets(cli) -> None:
    cli("endpoint", "add", "x", "--auth", "custom", "--header-name", "X-Key", "--header-value", "k3y",
        "--header", "X-Ref: ${REF}", "--signing-secret", SECRET)
    result = cli("endpoint", "show", "x", "--json")
    assert result.exit_code == 0
    assert "k3y" not in result.stdout and SECRET not in result.stdout
    data = json.loads(result.stdout)
    assert data["name"] == "x"
    assert data["auth"] == {"type": "custom", "header": "X-Key", "value": "***"}
    assert data["headers"] == {"X-Ref": "${REF}"}
    assert data["signing_secret"] == "***"
    text = cli("endpoint", "show", "x").stdout
    assert "k3y" not in text and SECRET not in text and "***" in text and "${REF}" in text


def test_show_and_status_of_unknown_endpoint(rejected) -> None:
    for command in ("show", "status", "remove", "enable", "disable"):
        rejected("endpoint", command, "nope", match="unknown endpoint 'nope'")


# --------------------------------------------------------------------------
# remove


def test_remove(cli, crm: str, config_path: Path) -> None:
    result = cli("endpoint", "remove", "crm")
    assert result.exit_code == 0
    assert "1 mapping" in result.stdout
    assert load_config(config_path).endpoints == {}


# --------------------------------------------------------------------------
# enable, disable, status


def test_disable_status_enable_cycle(cli, crm: str, config_path: Path, tmp_path: Path) -> None:
    status = cli("endpoint", "status", "crm")
    assert (status.exit_code, status.stdout) == (0, "enabled\n")

    result = cli("endpoint", "disable", "crm", "--reason", "server moved")
    assert (result.exit_code, result.stdout) == (0, "crm: disabled: server moved\n")
    status = cli("endpoint", "status", "crm")
    assert (status.exit_code, status.stdout) == (1, "disabled: server moved\n")
    endpoint = load_config(config_path).endpoints["crm"]
    assert endpoint.disabled_reason == "server moved" and endpoint.disabled_at

    # idempotent: a second disable without a reason changes nothing, and says so
    before = config_path.read_bytes()
    again = cli("endpoint", "disable", "crm")
    assert (again.exit_code, again.stdout, again.stderr) == (0, "crm: disabled: server moved\n",
                                                             "crm was already disabled\n")
    assert config_path.read_bytes() == before
    # with a new reason, the reason is replaced (as `gh issue edit` would), the time it was disabled stays,
    # and the one it replaced is said
    disabled_at = load_config(config_path).endpoints["crm"].disabled_at
    again = cli("endpoint", "disable", "crm", "--reason", "other")
    assert (again.exit_code, again.stdout) == (0, "crm: disabled: other\n")
    assert again.stderr == "crm was already disabled; its reason was 'server moved'\n"
    endpoint = load_config(config_path).endpoints["crm"]
    assert (endpoint.disabled_reason, endpoint.disabled_at) == ("other", disabled_at)
    assert cli("endpoint", "status", "crm").stdout == "disabled: other\n"

    result = cli("endpoint", "enable", "crm")
    assert (result.exit_code, result.stdout) == (0, "crm: enabled\n")
    endpoint = load_config(config_path).endpoints["crm"]
    assert endpoint.enabled and endpoint.disabled_reason is None and endpoint.disabled_at is None
    before = config_path.read_bytes()
    again = cli("endpoint", "enable", "crm")
    assert (again.exit_code, again.stdout) == (0, "crm: enabled\n")
    assert config_path.read_bytes() == before

    # each real change, and only those, went to the log
    records = list(iter_records(tmp_path / "log.jsonl", on_bad_line=lambda *a: None))
    assert [(r.endpoint, r.action) for r in records] == [("crm", "disabled"), ("crm", "enabled")]


def test_toggle_with_an_unwritable_log_changes_nothing(cli, rejected, crm: str, config_path: Path,
                                                       tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    config_path.write_text(config_path.read_text().replace('log_file = "log.jsonl"', 'log_file = "afile/log.jsonl"'))
    rejected("endpoint", "disable", "crm", match=("delivery log", "afile/log.jsonl"))
    assert cli("endpoint", "status", "crm").exit_code == 0  # still enabled
    # a no-op toggle does not need the log
    assert cli("endpoint", "enable", "crm").stdout == "crm: enabled\n"


def test_disable_without_reason(cli, crm: str) -> None:
    cli("endpoint", "disable", "crm")
    status = cli("endpoint", "status", "crm")
    assert status.exit_code == 1
    assert status.stdout.startswith("disabled: ") and len(status.stdout.strip()) > len("disabled:")


# --------------------------------------------------------------------------
# auth


def test_auth_replaces_the_auth(cli, crm: str, config_path: Path) -> None:
    result = cli("endpoint", "auth", "crm", "--auth", "basic", "--username", "u", "--password", "${PW}")
    assert result.exit_code == 0, result.stderr
    auth = load_config(config_path).endpoints["crm"].auth
    assert (auth.type, auth.username, auth.password, auth.token) == ("basic", "u", "${PW}", None)
    assert cli("endpoint", "auth", "crm", "--auth", "none").exit_code == 0
    assert load_config(config_path).endpoints["crm"].auth.type == "none"


def test_auth_rejects_bad_input(rejected, crm: str) -> None:
    rejected("endpoint", "auth", "crm", "--auth", "bearer", match="--auth bearer needs --token")
    rejected("endpoint", "auth", "crm", "--auth", "kerberos", match="'kerberos'")
    rejected("endpoint", "auth", "nope", "--auth", "none", match="unknown endpoint 'nope'")


def test_auth_cannot_clash_with_a_custom_header(cli, rejected, crm: str) -> None:
    assert cli("endpoint", "auth", "crm", "--auth", "none").exit_code == 0
    assert cli("endpoint", "set-header", "crm", "X-Api-Key", "k").exit_code == 0
    rejected("endpoint", "auth", "crm", "--auth", "custom", "--header-name", "x-api-key", "--header-value", "v",
             match="already set")


# --------------------------------------------------------------------------
# headers


def test_set_and_unset_header(cli, crm: str, config_path: Path) -> None:
    assert cli("endpoint", "set-header", "crm", "X-Team", "ops").exit_code == 0
    assert cli("endpoint", "set-header", "crm", "x-team", "${TEAM}").exit_code == 0  # same header, new value
    assert load_config(config_path).endpoints["crm"].headers == {"x-team": "${TEAM}"}
    assert "${TEAM}" in cli("endpoint", "show", "crm").stdout  # a reference is shown as written
    assert cli("endpoint", "unset-header", "crm", "X-TEAM").exit_code == 0
    assert load_config(config_path).endpoints["crm"].headers == {}


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("X Team", "ops", "RFC 9110"),
        ("X-Team:", "ops", "RFC 9110"),
        ("X-Team", "a\r\nInjected: yes", "CR, LF"),
        ("X-Team", "a\nb", "CR, LF"),
        ("Content-Type", "text/plain", "cannot be replaced"),
        ("x-event-type", "Other", "cannot be replaced"),
        ("X-Event-Origin", "evil.com", "cannot be replaced"),
        ("HOST", "evil.com", "cannot be replaced"),
        ("Content-Length", "0", "cannot be replaced"),
        ("Authorization", "Basic xyz", "already set"),  # crm has bearer auth
    ],
)
def test_set_header_rejects_bad_input(rejected, crm: str, key: str, value: str, fragment: str) -> None:
    rejected("endpoint", "set-header", "crm", key, value, match=fragment)


def test_header_commands_on_unknown_things(rejected, crm: str) -> None:
    rejected("endpoint", "set-header", "nope", "X-A", "b", match="unknown endpoint 'nope'")
    rejected("endpoint", "unset-header", "crm", "X-Missing", match="has no header 'X-Missing'")


# --------------------------------------------------------------------------
# signing secret


def test_secret_generate_set_remove(cli, crm: str, config_path: Path) -> None:
    config_path.chmod(0o644)
    result = cli("endpoint", "secret", "crm", "--generate")
    assert result.exit_code == 0
    printed = result.stdout.strip()
    assert printed.startswith("whsec_")
    assert load_config(config_path).endpoints["crm"].signing_secret == printed
    assert mode(config_path) == 0o600
    assert printed not in cli("endpoint", "show", "crm").stdout

    assert cli("endpoint", "secret", "crm", "--set", "${SIGNING}").exit_code == 0
    assert load_config(config_path).endpoints["crm"].signing_secret == "${SIGNING}"
    assert cli("endpoint", "secret", "crm", "--remove").exit_code == 0
    assert load_config(config_path).endpoints["crm"].signing_secret is None


def test_secret_rejects_bad_input(rejected, crm: str) -> None:
    rejected("endpoint", "secret", "crm", match="exactly one of")
    rejected("endpoint", "secret", "crm", "--generate", "--remove", match="exactly one of")
    rejected("endpoint", "secret", "crm", "--set", "whsec_!!", match="base64")
    rejected("endpoint", "secret", "crm", "--set", "whsec_QUJD", match="24 to 64 bytes")
    rejected("endpoint", "secret", "nope", "--generate", match="unknown endpoint 'nope'")
