"""``map add|remove|list``: routing events to URLs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moxiehook.config.store import load_config


@pytest.fixture
def endpoints(cli) -> None:
    assert cli("endpoint", "add", "crm", "--token", "${T}").exit_code == 0
    assert cli("endpoint", "add", "billing", "--disabled").exit_code == 0


def mappings(config_path: Path, endpoint: str) -> list[tuple[str, str]]:
    return [(m.event, m.url) for m in load_config(config_path).endpoints[endpoint].mappings]


def test_add_several_urls_for_one_event(cli, endpoints: None, config_path: Path) -> None:
    first = cli("map", "add", "crm", "ClientCreate", "https://a.example.com/h")
    assert first.exit_code == 0, first.stderr
    assert first.stdout == "crm: ClientCreate → https://a.example.com/h\n"
    assert cli("map", "add", "crm", "ClientCreate", "https://b.example.com/h").exit_code == 0
    assert mappings(config_path, "crm") == [
        ("ClientCreate", "https://a.example.com/h"),
        ("ClientCreate", "https://b.example.com/h"),
    ]


def test_add_an_event_outside_the_catalog_warns(cli, endpoints: None, config_path: Path) -> None:
    result = cli("map", "add", "crm", "InvoicePaid", "https://e.com/h")
    assert result.exit_code == 0
    assert "not in the catalog" in result.stderr and "--data" in result.stderr
    assert mappings(config_path, "crm") == [("InvoicePaid", "https://e.com/h")]


def test_add_credentials_over_plain_http_warns(cli, endpoints: None) -> None:
    result = cli("map", "add", "crm", "ClientCreate", "http://crm.example.com/h")
    assert result.exit_code == 0
    assert "plain http://" in result.stderr
    quiet = cli("map", "add", "crm", "ClientUpdate", "http://127.0.0.1:8080/h")  # loopback is fine
    assert quiet.stderr == ""


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("nope", "ClientCreate", "https://e.com"), ("unknown endpoint 'nope'",)),
        (("crm", "ClientCreate", "ftp://e.com/h"), ("'ftp://e.com/h'", "http:// or https://")),
        (("crm", "ClientCreate", "e.com/h"), ("http:// or https://",)),
        (("crm", "ClientCreate", "https://"), ("has no host",)),
        (("crm", "ClientCreate", "http:///path"), ("has no host",)),
        (("crm", "ClientCreate", "https://e.com:99999/"), ("invalid URL",)),
        (("crm", "Client Create", "https://e.com"), ("invalid event name",)),
        (("crm", "ClientCreate"), ("missing argument",)),
    ],
)
def test_add_rejects_bad_input(rejected, endpoints: None, args: tuple[str, ...], fragments: tuple[str, ...]) -> None:
    rejected("map", "add", *args, match=fragments)


def test_add_the_same_mapping_twice(cli, rejected, endpoints: None) -> None:
    assert cli("map", "add", "crm", "ClientCreate", "https://e.com/h").exit_code == 0
    rejected("map", "add", "crm", "ClientCreate", "https://e.com/h", match="already maps ClientCreate")


def test_remove_one_url_or_all(cli, endpoints: None, config_path: Path) -> None:
    for url in ("https://a.com", "https://b.com"):
        cli("map", "add", "crm", "ClientCreate", url)
    cli("map", "add", "crm", "ClientUpdate", "https://a.com")
    one = cli("map", "remove", "crm", "ClientCreate", "https://a.com")
    assert one.exit_code == 0
    assert one.stdout == "crm: removed ClientCreate → https://a.com\n"
    assert mappings(config_path, "crm") == [("ClientCreate", "https://b.com"), ("ClientUpdate", "https://a.com")]
    cli("map", "add", "crm", "ClientCreate", "https://c.com")
    every = cli("map", "remove", "crm", "ClientCreate")
    assert every.exit_code == 0 and len(every.stdout.splitlines()) == 2
    assert mappings(config_path, "crm") == [("ClientUpdate", "https://a.com")]


def test_remove_what_does_not_exist(cli, rejected, endpoints: None) -> None:
    cli("map", "add", "crm", "ClientCreate", "https://a.com")
    rejected("map", "remove", "crm", "ClientDelete", match="has no mapping for ClientDelete")
    rejected("map", "remove", "crm", "ClientCreate", "https://other.com", match="https://other.com")
    rejected("map", "remove", "nope", "ClientCreate", match="unknown endpoint 'nope'")


def test_list_table_and_json(cli, endpoints: None) -> None:
    cli("map", "add", "crm", "ClientCreate", "https://a.com/x")
    cli("map", "add", "billing", "AgreementSigned", "https://b.com/y")
    result = cli("map", "list")
    assert result.exit_code == 0
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows == [
        ["endpoint", "event", "url", "state"],
        ["crm", "ClientCreate", "https://a.com/x", "enabled"],
        ["billing", "AgreementSigned", "https://b.com/y", "disabled"],
    ]
    data = json.loads(cli("map", "list", "--json").stdout)
    assert data == [
        {"endpoint": "crm", "event": "ClientCreate", "url": "https://a.com/x", "enabled": True},
        {"endpoint": "billing", "event": "AgreementSigned", "url": "https://b.com/y", "enabled": False},
    ]


def test_list_empty(cli) -> None:
    result = cli("map", "list")
    assert result.exit_code == 0 and "no mappings yet" in result.stdout
    assert json.loads(cli("map", "list", "--json").stdout) == []
