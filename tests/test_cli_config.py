"""``init``, ``config show|validate|path``, the global options, and bad config files."""

from __future__ import annotations

import json
import re
import stat
import tomllib
from pathlib import Path

import pytest

import moxiehook
from moxiehook.config import Settings
from moxiehook.config.store import load_config

PACKAGED_SAMPLE = Path(moxiehook.__file__).parent / "sample-config.toml"

SECRETS = """\
version = 1

[endpoints.crm]
auth = { type = "bearer", token = "t0psecret" }
headers = { "X-Team" = "ops", "X-Key" = "${KEY}" }
signing_secret = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

[endpoints.billing]
auth = { type = "basic", username = "moxie", password = "${BILLING_PASSWORD}" }
"""


# --------------------------------------------------------------------------
# init


def test_init_writes_the_settings_with_their_defaults_and_no_live_endpoint(cli, tmp_path: Path) -> None:
    """The walk-through's `fire` must not hit (and disable) sample endpoints aimed at its own `listen`."""
    target = tmp_path / "new" / "moxiehook.toml"
    target.parent.mkdir()
    result = cli("init", config=target)
    assert result.exit_code == 0, result.stderr
    assert str(target) in result.stdout
    text = target.read_text()
    config = load_config(target)
    assert config.endpoints == {}
    assert config.settings == Settings()
    for key in vars(Settings()):  # every setting written out, not left implicit
        assert f"\n{key} = " in text, key
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    result = cli("fire", "ClientCreate", config=target)
    assert result.exit_code == 3  # nothing to send to: no request, no disabled endpoint


def test_init_examples_are_the_sample_endpoints_commented_out(cli, tmp_path: Path) -> None:
    target = tmp_path / "new.toml"
    assert cli("init", config=target).exit_code == 0
    uncommented = re.sub(r"(?m)^# (?=\[|[a-z_]+ = )", "", target.read_text())
    assert tomllib.loads(uncommented) == tomllib.loads(PACKAGED_SAMPLE.read_text())


def test_init_sample_writes_exactly_the_packaged_sample(cli, tmp_path: Path) -> None:
    target = tmp_path / "new.toml"
    result = cli("init", "--sample", config=target)
    assert result.exit_code == 0, result.stderr
    assert target.read_bytes() == PACKAGED_SAMPLE.read_bytes()
    assert all(m.url.startswith("http://127.0.0.1:8787/")  # listen's default port
               for e in load_config(target).endpoints.values() for m in e.mappings)


def test_init_uses_the_discovered_path(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "project").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    result = cli("init", config=None)
    assert result.exit_code == 0, result.stderr
    assert load_config(tmp_path / "project" / "moxiehook.toml").endpoints == {}


def test_init_refuses_to_overwrite(rejected, config_path: Path) -> None:
    rejected("init", match=(str(config_path), "already exists", "--force"))


def test_init_force_overwrites(cli, config_path: Path) -> None:
    result = cli("init", "--force", "--sample")
    assert result.exit_code == 0, result.stderr
    assert config_path.read_bytes() == PACKAGED_SAMPLE.read_bytes()


def test_init_below_a_regular_file_fails_cleanly(rejected, tmp_path: Path) -> None:
    # Running as root, permissions cannot block a write; a parent that is a file can.
    (tmp_path / "file").write_text("keep")
    rejected("init", match="cannot", path=tmp_path / "file" / "moxiehook.toml")
    assert (tmp_path / "file").read_text() == "keep"


# --------------------------------------------------------------------------
# config path and discovery


def test_config_path_discovery_order(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("config", "path", config=None).stdout == f"{tmp_path / 'moxiehook.toml'}\n"
    monkeypatch.setenv("MOXIEHOOK_CONFIG", str(tmp_path / "env.toml"))
    assert cli("config", "path", config=None).stdout == f"{tmp_path / 'env.toml'}\n"
    result = cli("config", "path", config=tmp_path / "flag.toml")
    assert result.exit_code == 0
    assert result.stdout == f"{tmp_path / 'flag.toml'}\n"


def test_short_config_option_and_relative_path(cli, tmp_path: Path) -> None:
    result = cli("-c", "sub/x.toml", "config", "path", config=None)
    assert result.stdout == f"{tmp_path / 'sub' / 'x.toml'}\n"


def test_version(cli) -> None:
    result = cli("--version", config=None)
    assert result.exit_code == 0
    assert result.stdout == f"moxiehook {moxiehook.__version__}\n"


# --------------------------------------------------------------------------
# config show


def test_show_masks_literal_secrets_and_keeps_references(cli, config_path: Path) -> None:
    config_path.write_text(SECRETS)
    result = cli("config", "show")
    assert result.exit_code == 0, result.stderr
    assert "t0psecret" not in result.stdout and "whsec_" not in result.stdout
    shown = tomllib.loads(result.stdout)
    assert shown["endpoints"]["crm"]["auth"]["token"] == "***"
    assert shown["endpoints"]["crm"]["signing_secret"] == "***"
    assert shown["endpoints"]["crm"]["headers"]["X-Key"] == "${KEY}"
    assert shown["endpoints"]["billing"]["auth"]["password"] == "${BILLING_PASSWORD}"


def test_show_json_masks_too(cli, config_path: Path) -> None:
    config_path.write_text(SECRETS)
    result = cli("config", "show", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert data["endpoints"]["crm"]["auth"] == {"type": "bearer", "token": "***"}
    assert data["settings"]["timeout"] == 10.0


def test_show_reveal_shows_secrets(cli, config_path: Path) -> None:
    config_path.write_text(SECRETS)
    data = json.loads(cli("config", "show", "--reveal", "--json").stdout)
    assert data["endpoints"]["crm"]["auth"]["token"] == "t0psecret"
    assert data["endpoints"]["crm"]["signing_secret"].startswith("whsec_")
    assert "t0psecret" in cli("config", "show", "--reveal").stdout


def test_show_output_is_a_config_that_loads_back(cli, config_path: Path, tmp_path: Path) -> None:
    config_path.write_text(SECRETS)
    copy = tmp_path / "copy.toml"
    copy.write_text(cli("config", "show", "--reveal").stdout)
    assert load_config(copy) == load_config(config_path)


# --------------------------------------------------------------------------
# config validate


def test_validate_ok(cli, config_path: Path) -> None:
    config_path.write_text(PACKAGED_SAMPLE.read_text())
    result = cli("config", "validate")
    assert result.exit_code == 0, result.stderr
    assert "valid (2 endpoints, 4 mappings)" in result.stdout


def test_validate_warns_about_readable_literal_secrets(cli, config_path: Path) -> None:
    config_path.write_text(SECRETS)
    config_path.chmod(0o644)
    result = cli("config", "validate")
    assert result.exit_code == 0
    assert "chmod 600" in result.stderr
    assert "valid" in result.stdout


# --------------------------------------------------------------------------
# a bad config file: exit 2, one line, the file untouched, for reads and writes

BAD_FILES = {
    "malformed TOML": ('version = 1\n[settings]\ntimeout = = 3\n', ("invalid TOML", "line 3", "column")),
    "unknown top-level key": ('version = 1\nendpoint = {}\n', ("endpoint: unknown key",)),
    "unknown settings key": ('[settings]\nmax_attempt = 3\n', ("settings.max_attempt: unknown key",)),
    "unknown endpoint key": ('[endpoints.crm]\nenable = true\n', ("endpoints.crm.enable: unknown key",)),
    "unknown auth key": (
        '[endpoints.crm]\nauth = { type = "bearer", token = "t", user = "u" }\n',
        ("endpoints.crm.auth.user: unknown key",),
    ),
    "unknown mapping key": (
        '[[endpoints.crm.mappings]]\nevent = "ClientCreate"\nurl = "https://e.com"\nmethod = "PUT"\n',
        ("endpoints.crm.mappings[0].method: unknown key",),
    ),
    "wrong type": ('[settings]\ntimeout = "10"\n', ("settings.timeout", "expected a number", "a string")),
    "unknown auth type": ('[endpoints.crm]\nauth = { type = "oauth" }\n', ("unknown auth type 'oauth'",)),
    "missing auth key": ('[endpoints.crm]\nauth = { type = "bearer" }\n', ("endpoints.crm.auth.token: required",)),
    "bad url": (
        '[[endpoints.crm.mappings]]\nevent = "ClientCreate"\nurl = "ftp://e.com/x"\n',
        ("endpoints.crm.mappings[0].url", "http:// or https://"),
    ),
    "url without host": (
        '[[endpoints.crm.mappings]]\nevent = "ClientCreate"\nurl = "https:///x"\n',
        ("has no host",),
    ),
    "header name not a token": ('[endpoints.crm.headers]\n"X Team" = "ops"\n', ("RFC 9110",)),
    "CR in header value": ('[endpoints.crm.headers]\nX-Team = "a\\rb"\n', ("CR, LF",)),
    "reserved header": ('[endpoints.crm.headers]\nHost = "evil"\n', ("'Host'", "cannot be replaced")),
    "zero timeout": ('[settings]\ntimeout = 0\n', ("settings.timeout", "greater than 0")),
    "negative attempts": ('[settings]\nmax_attempts = -1\n', ("settings.max_attempts", "greater than 0")),
    "zero concurrency": ('[settings]\nconcurrency = 0\n', ("settings.concurrency", "greater than 0")),
    "unsupported version": ('version = 2\n', ("unsupported config version 2",)),
}


@pytest.mark.parametrize("name", BAD_FILES)
@pytest.mark.parametrize(
    "command",
    [("config", "validate"), ("config", "show"), ("endpoint", "add", "new"), ("map", "add", "crm", "ClientCreate", "https://e.com")],
    ids=["validate", "show", "endpoint-add", "map-add"],
)
def test_bad_config_file_is_reported_and_left_alone(rejected, config_path: Path, name: str,
                                                    command: tuple[str, ...]) -> None:
    text, fragments = BAD_FILES[name]
    config_path.write_text(text)
    rejected(*command, match=(str(config_path), *fragments))


def test_missing_config_is_reported_and_not_created(rejected, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    path = tmp_path / "empty" / "moxiehook.toml"
    rejected("endpoint", "add", "x", path=path, match=("no config file", "moxiehook init"))
    rejected("config", "validate", path=path, match="no config file")
    assert list(path.parent.iterdir()) == []  # not even a lock file


def test_config_that_is_a_directory(rejected, tmp_path: Path) -> None:
    path = tmp_path / "conf.toml"
    path.mkdir()
    rejected("config", "show", path=path, match=("cannot read", str(path)))
    rejected("map", "add", "crm", "ClientCreate", "https://e.com", path=path, match="cannot read")
    assert list(path.iterdir()) == []


def test_config_that_is_not_utf8(rejected, config_path: Path) -> None:
    config_path.write_bytes(b'version = 1\n[settings]\norigin = "\xff"\n')
    rejected("config", "validate", match=("not a UTF-8", str(config_path)))
    rejected("endpoint", "add", "x", match="not a UTF-8")


def test_config_below_a_regular_file(rejected, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    rejected("endpoint", "list", path=tmp_path / "file" / "moxiehook.toml", match="cannot read")


def test_unknown_root_option_is_one_error_line(rejected) -> None:
    rejected("--conifg", "x", "config", "path", match=("no such option: --conifg",))


def test_unknown_command_is_one_error_line(rejected) -> None:
    rejected("confg", match=("no such command 'confg' (did you mean 'config'?)",))
