"""The config model: parsing with validation, serialisation, and the sample config."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest

import moxiehook
from moxiehook.config.model import (
    Auth,
    Config,
    Endpoint,
    EventMapping,
    Settings,
    check_header_name,
    check_header_value,
    check_url,
    config_to_dict,
    endpoint_to_dict,
    masked_config_dict,
    parse_config,
)
from moxiehook.errors import ValidationError

ROOT = Path(__file__).resolve().parent.parent
PACKAGED_SAMPLE = Path(moxiehook.__file__).parent / "sample-config.toml"


def endpoint_table(**extra: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "auth": {"type": "bearer", "token": "${TOKEN}"},
        "mappings": [{"event": "ClientCreate", "url": "https://example.com/hook"}],
    }
    table.update(extra)
    return table


def with_endpoint(**extra: Any) -> dict[str, Any]:
    return {"version": 1, "endpoints": {"crm": endpoint_table(**extra)}}


def rejects(data: dict[str, Any], *fragments: str) -> str:
    with pytest.raises(ValidationError) as caught:
        parse_config(data)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


# --------------------------------------------------------------------------
# the sample config and the dataclass defaults agree


def test_top_level_sample_is_the_packaged_one() -> None:
    assert (ROOT / "sample-config.toml").read_bytes() == PACKAGED_SAMPLE.read_bytes()


def test_sample_parses_and_its_settings_are_the_defaults() -> None:
    data = tomllib.loads(PACKAGED_SAMPLE.read_text(encoding="utf-8"))
    config = parse_config(data)
    assert config.settings == Settings()
    # every default is written out, so the sample documents every settings key
    assert set(data["settings"]) == {f.name for f in dataclasses.fields(Settings)}
    assert config.endpoints, "the sample should show at least one endpoint"
    assert not config.has_literal_secret(), "the sample must not teach literal secrets"


def test_an_empty_file_is_a_valid_config_with_defaults() -> None:
    assert parse_config({}) == Config()


# --------------------------------------------------------------------------
# unknown keys anywhere are rejected (typos must not pass)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"verison": 1}, "verison"),
        ({"settings": {"timeuot": 3}}, "settings.timeuot"),
        (with_endpoint(enabeld=False), "endpoints.crm.enabeld"),
        (with_endpoint(auth={"type": "bearer", "token": "t", "tokn": "t"}), "endpoints.crm.auth.tokn"),
        # a key of another auth type is a typo for this one
        (with_endpoint(auth={"type": "none", "token": "t"}), "endpoints.crm.auth.token"),
        (
            with_endpoint(mappings=[{"event": "ClientCreate", "url": "https://e.com", "ulr": "x"}]),
            "endpoints.crm.mappings[0].ulr",
        ),
    ],
)
def test_unknown_key_is_rejected_naming_it(data: dict[str, Any], key: str) -> None:
    rejects(data, key, "unknown key")


@pytest.mark.parametrize(
    ("data", "key", "expected"),
    [
        ({"version": "1"}, "version", "an integer"),
        ({"settings": {"timeout": "10"}}, "settings.timeout", "a number"),
        ({"settings": {"max_attempts": 2.5}}, "settings.max_attempts", "an integer"),
        ({"settings": {"concurrency": True}}, "settings.concurrency", "boolean"),
        ({"settings": {"verify_tls": 1}}, "settings.verify_tls", "a boolean or a string"),
        ({"settings": []}, "settings", "a table"),
        (with_endpoint(enabled="yes"), "endpoints.crm.enabled", "a boolean"),
        (with_endpoint(headers={"X-Team": 5}), "endpoints.crm.headers.X-Team", "a string"),
        (with_endpoint(mappings={"event": "ClientCreate"}), "endpoints.crm.mappings", "an array"),
        ({"endpoints": {"crm": "https://e.com"}}, "endpoints.crm", "a table"),
    ],
)
def test_wrong_value_type_is_rejected_naming_the_key(data: dict[str, Any], key: str, expected: str) -> None:
    rejects(data, key, expected)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"settings": {"timeout": 0}}, "settings.timeout"),
        ({"settings": {"timeout": -1.5}}, "settings.timeout"),
        ({"settings": {"max_attempts": 0}}, "settings.max_attempts"),
        ({"settings": {"concurrency": -2}}, "settings.concurrency"),
        (with_endpoint(timeout=0), "endpoints.crm.timeout"),
    ],
)
def test_non_positive_numbers_are_rejected(data: dict[str, Any], key: str) -> None:
    rejects(data, key, "greater than 0")


def test_unknown_auth_type_is_rejected() -> None:
    rejects(with_endpoint(auth={"type": "oauth"}), "endpoints.crm.auth.type", "'oauth'", "bearer")


@pytest.mark.parametrize(
    ("auth", "key"),
    [
        ({"type": "bearer"}, "auth.token"),
        ({"type": "bearer", "token": ""}, "auth.token"),
        ({"type": "basic", "username": "u"}, "auth.password"),
        ({"type": "custom", "header": "X-Key"}, "auth.value"),
    ],
)
def test_missing_auth_keys_are_rejected(auth: dict[str, str], key: str) -> None:
    rejects(with_endpoint(auth=auth), f"endpoints.crm.{key}", "required")


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "example.com/hook", "http://", "https:///path", "http://exa mple.com"]
)
def test_bad_urls_are_rejected(url: str) -> None:
    with pytest.raises(ValidationError, match="url"):
        check_url(url)
    rejects(with_endpoint(mappings=[{"event": "ClientCreate", "url": url}]), "endpoints.crm.mappings[0].url")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/x", "https://example.com", "http://[::1]/h?a=b"])
def test_good_urls_pass(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize("name", ["Bad Name", "X:Team", "", "Ünicode", "X(1)"])
def test_header_name_must_be_a_token(name: str) -> None:
    with pytest.raises(ValidationError, match="RFC 9110"):
        check_header_name(name)


@pytest.mark.parametrize(
    "name", ["Content-Type", "content-type", "X-Event-Type", "X-EVENT-ORIGIN", "Host", "Content-Length"]
)
def test_reserved_headers_cannot_be_replaced(name: str) -> None:
    with pytest.raises(ValidationError, match="set by moxiehook"):
        check_header_name(name)
    rejects(with_endpoint(headers={name: "x"}), "set by moxiehook")
    rejects(with_endpoint(auth={"type": "custom", "header": name, "value": "v"}), "auth.header")


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\r\n"])
def test_cr_or_lf_in_header_values_is_rejected(value: str) -> None:
    with pytest.raises(ValidationError, match="CR, LF"):
        check_header_value(value)
    rejects(with_endpoint(headers={"X-Team": value}), "endpoints.crm.headers.X-Team")
    rejects(with_endpoint(auth={"type": "bearer", "token": value}), "endpoints.crm.auth.token")


def test_a_header_given_twice_in_different_case_is_rejected() -> None:
    rejects(with_endpoint(headers={"X-Team": "a", "x-team": "b"}), "endpoints.crm.headers.x-team", "twice")


def test_bad_endpoint_and_event_names_are_rejected() -> None:
    rejects({"endpoints": {"has space": endpoint_table()}}, "endpoints.has space", "invalid endpoint name")
    rejects(with_endpoint(mappings=[{"event": "Client Create", "url": "https://e.com"}]), "event")


def test_a_mapping_needs_event_and_url() -> None:
    rejects(with_endpoint(mappings=[{"url": "https://e.com"}]), "mappings[0].event", "required")
    rejects(with_endpoint(mappings=[{"event": "ClientCreate"}]), "mappings[0].url", "required")


# --------------------------------------------------------------------------
# serialising


FULL = Config(
    settings=Settings(origin="example.org", timeout=3.0, disable_on=[401, 410], verify_tls="ca.pem"),
    endpoints={
        "crm": Endpoint(
            name="crm",
            description="CRM",
            auth=Auth(type="basic", username="u", password="hunter2"),
            headers={"X-Team": "ops", "X-Key": "${KEY}"},
            mappings=[EventMapping("ClientCreate", "https://e.com/a"), EventMapping("ClientCreate", "https://e.com/b")],
            timeout=1.5,
            verify_tls=False,
        ),
        "off": Endpoint(
            name="off",
            enabled=False,
            auth=Auth(type="custom", header="X-Api-Key", value="${API_KEY}"),
            signing_secret="whsec_" + "A" * 32,
            disabled_reason="HTTP 401 Unauthorized from POST https://e.com/a",
            disabled_at="2026-11-28T14:00:00.123Z",
        ),
        "plain": Endpoint(name="plain"),
    },
)


def test_dict_round_trip_gives_an_equal_config() -> None:
    assert parse_config(config_to_dict(FULL)) == FULL


def test_masking_hides_literal_secrets_and_keeps_references() -> None:
    masked = masked_config_dict(FULL)
    assert masked["endpoints"]["crm"]["auth"] == {"type": "basic", "username": "u", "password": "***"}
    assert masked["endpoints"]["off"]["auth"]["value"] == "${API_KEY}"
    assert masked["endpoints"]["off"]["signing_secret"] == "***"
    assert "hunter2" not in repr(masked)
    # the unmasked dict is what gets written
    assert config_to_dict(FULL)["endpoints"]["crm"]["auth"]["password"] == "hunter2"
    assert endpoint_to_dict(FULL.endpoints["crm"])["auth"]["password"] == "hunter2"


@pytest.mark.parametrize(
    ("auth", "secret"),
    [
        (Auth(), False),
        (Auth(type="bearer", token="${T}"), False),
        (Auth(type="bearer", token="abc"), True),
        (Auth(type="basic", username="literal-user", password="${P}"), False),
        (Auth(type="custom", header="X-Key", value="v"), True),
    ],
)
def test_literal_secret_detection(auth: Auth, secret: bool) -> None:
    assert Config(endpoints={"e": Endpoint(name="e", auth=auth)}).has_literal_secret() is secret


def test_literal_signing_secret_counts_as_a_secret() -> None:
    assert Endpoint(name="e", signing_secret="whsec_" + "A" * 32).has_literal_secret()
    assert not Endpoint(name="e", signing_secret="${SIGNING}").has_literal_secret()
