"""Strict JSON (RFC 8259) in every payload moxiehook sends and every line it logs.

Python's ``json`` reads ``1e999`` as ``inf`` and ``NaN``/``Infinity`` as floats,
and writes them back as bare ``Infinity``/``NaN``: not JSON, so a receiver
rejects the body and ``logs`` cannot read the line. A ``--set`` value, a
``--data`` file or a fixture payload holding such a number (or a lone UTF-16
surrogate, which UTF-8 cannot carry) is refused with exit 2, naming where,
before anything is sent or logged. The reader is checked against ``json.loads``
with ``parse_constant`` (the reference) on many inputs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moxiehook import catalog
from moxiehook.errors import DataError
from moxiehook.log import encode_body
from moxiehook.testing import MoxieFixture
from tests.conftest import Receiver


def with_endpoint(config_path: Path, url: str) -> None:
    config_path.write_text(config_path.read_text() + f'\n[endpoints.crm]\nauth = {{ type = "none" }}\n'
                           f'[[endpoints.crm.mappings]]\nevent = "ClientCreate"\nurl = "{url}"\n')


NOT_JSON_NUMBERS = ["1e999", "-1e999", "NaN", "Infinity", "-Infinity", "[1, NaN]", '{"a": 1e400}']


@pytest.mark.parametrize("value", NOT_JSON_NUMBERS)
@pytest.mark.parametrize("dry_run", [False, True], ids=["send", "dry-run"])
def test_a_set_value_json_cannot_carry_is_exit_2_and_nothing_is_sent(
        rejected, receiver: Receiver, config_path: Path, value: str, dry_run: bool) -> None:
    with_endpoint(config_path, receiver.url("/hooks"))
    extra = ["--dry-run"] if dry_run else []
    rejected("fire", "ClientCreate", "--set", f"name={value}", *extra, match=(f"--set 'name={value}'", "JSON"))
    assert receiver.requests == []
    assert not (config_path.parent / "log.jsonl").exists()


@pytest.mark.parametrize(("text", "where"), [
    ('{"name": 1e999}', "name"),
    ('{"a": {"b": [0, -1e999]}}', "a.b[1]"),
    ('{"name": NaN}', "name"),
    ('{"name": -Infinity}', "name"),
    ('[Infinity]', "[0]"),
    ('{"name": "\\ud800"}', "name"),  # a lone surrogate: no UTF-8 for it
    ('{"\\udfff": 1}', "the payload"),  # in a key
])
@pytest.mark.parametrize("dry_run", [False, True], ids=["send", "dry-run"])
def test_a_data_file_json_cannot_carry_is_exit_2_naming_the_file_and_the_place(
        rejected, receiver: Receiver, config_path: Path, text: str, where: str, dry_run: bool) -> None:
    with_endpoint(config_path, receiver.url("/hooks"))
    (config_path.parent / "body.json").write_text(text)
    extra = ["--dry-run"] if dry_run else []
    rejected("fire", "ClientCreate", "--data", "body.json", *extra, match=("--data body.json", where))
    assert receiver.requests == []
    assert not (config_path.parent / "log.jsonl").exists()


def test_a_set_value_that_is_not_utf_8_is_exit_2(rejected, receiver: Receiver, config_path: Path) -> None:
    """An argument with bytes that are not UTF-8 reaches Python as lone surrogates (surrogateescape)."""
    with_endpoint(config_path, receiver.url("/hooks"))
    rejected("fire", "ClientCreate", "--set", "name=caf\udce9", match=("--set", "UTF-8"))
    assert receiver.requests == []


def test_the_text_nan_is_sent_when_quoted(cli, receiver: Receiver, config_path: Path) -> None:
    with_endpoint(config_path, receiver.url("/hooks"))
    result = cli("fire", "ClientCreate", "--set", 'name="NaN"', "--set", "note=1e308")
    assert result.exit_code == 0, result.stderr
    body = receiver.requests[0].json()
    assert (body["name"], body["note"]) == ("NaN", 1e308)
    for line in (config_path.parent / "log.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=_reject)


def test_deep_nesting_in_a_data_file_is_exit_2_not_a_traceback(rejected, config_path: Path) -> None:
    with_endpoint(config_path, "http://127.0.0.1:9/hooks")
    (config_path.parent / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    rejected("fire", "ClientCreate", "--data", "deep.json", match="--data deep.json")


@pytest.mark.parametrize(("options", "where"), [
    ({"set": {"name": math.inf}}, "set['name']"),
    ({"set": {"name": "\ud800"}}, "set['name']"),
    ({"data": {"amount": math.nan}}, "data"),
    ({"data": {"name": "x\udc80"}}, "data"),
    ({"data": [[[1e999]]]}, "data"),
])
def test_the_fixture_refuses_what_json_cannot_carry(options: dict[str, Any], where: str) -> None:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        raise AssertionError("nothing may be sent")

    with MoxieFixture() as moxie, pytest.raises(DataError, match=__import__("re").escape(where)):
        moxie.fire("ClientCreate", app=app, **options)


def test_encode_body_never_writes_a_non_json_number() -> None:
    """The log writer's last line of defence: what slipped past the checks is an error, not ``Infinity``."""
    with pytest.raises(ValueError):
        encode_body({"a": math.inf})


# ---------------------------------------------------------------------------
# differential: moxiehook's reader against json.loads(parse_constant=...)


def _reject(token: str) -> Any:
    raise ValueError(token)


def reference(text: str) -> tuple[bool, Any]:
    """RFC 8259's answer, by the stdlib: JSON (no NaN/Infinity, no number beyond a double, valid UTF-8)."""
    try:
        value = json.loads(text, parse_constant=_reject)
    except (ValueError, RecursionError):
        return False, None
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        return False, None
    return True, value


TOKENS = ["1e999", "-1e999", "1e308", "NaN", "Infinity", "-Infinity", "0", "-0.0", "1E+2", "12345678901234567890",
          '"\\ud800"', '"\\udfff"', '"\\ud83d\\ude00"', '"é"', "true", "null", '"NaN"', "1.5e-400", "[]", "{}"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(st.sampled_from(TOKENS),
                    lambda inner: st.one_of(
                        st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
                        st.dictionaries(st.sampled_from(['"a"', '"b"', '"\\ud800"', '"c"']), inner, max_size=3)
                        .map(lambda d: "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}")),
                    max_leaves=8))
def test_read_data_agrees_with_the_reference(tmp_path_factory: Any, text: str) -> None:
    path = tmp_path_factory.mktemp("d") / "body.json"
    path.write_text(text, encoding="utf-8")
    ok, expected = reference(text)
    try:
        value = catalog.read_data(str(path))
    except DataError:
        assert not ok, text
        return
    assert ok, text
    assert value == expected
    # what is sent is strict JSON and reads back as the same value
    assert reference(encode_body(value).decode("utf-8")) == (True, expected)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(TOKENS))
def test_set_values_agree_with_the_reference(token: str) -> None:
    ok, expected = reference(token)
    try:
        assignment = catalog.parse_assignment(f"name={token}")
    except DataError:
        assert not ok, token
        return
    assert ok, token
    assert assignment.value == expected
