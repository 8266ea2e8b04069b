"""Property tests: the config loader, saver and editors under arbitrary input.

Guarantees shown here:

- any config the loader accepts survives save → load unchanged;
- an edit the validator rejects leaves the file byte-for-byte as it was;
- random bytes, mangled files, wrong types, deep nesting and huge strings end
  in a ``ConfigError`` (one ``error:`` line, exit 2), never a traceback;
- CR, LF or NUL in a header name or value, an event name or a URL given on
  the command line is refused with exit 2 and nothing written.

``max_examples`` stays modest (and ``deadline=None``: the machine is shared)
so the file runs in a few seconds; the counts are reported in the README.
"""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from moxiehook.cli import app
from moxiehook.config import edits as ops
from moxiehook.config.model import (
    AUTH_KEYS,
    Auth,
    Config,
    Endpoint,
    EventMapping,
    Settings,
    check_header_name,
    config_to_dict,
)
from moxiehook.config.store import load_config, parse_config_text, render_config, write_atomic
from moxiehook.errors import ConfigError, MoxiehookError, ValidationError

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CLI_PROPERTY = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# ---------------------------------------------------------------------------
# strategies for valid values (the rules of moxiehook.config.model)

SAFE_TEXT = st.text(
    alphabet=st.characters(blacklist_characters="\r\n\0", blacklist_categories=("Cs",)), max_size=30
)
NON_EMPTY_SAFE = SAFE_TEXT.filter(bool)
# What a header value may hold: visible ASCII, spaces and tabs.
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.just("\t"), max_size=30)
NON_EMPTY_HEADER_TEXT = HEADER_TEXT.filter(bool)
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
POSITIVE = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)


def _valid_header_name(name: str) -> bool:
    try:
        check_header_name(name)
    except ValidationError:
        return False
    return name.lower() != "authorization"


HEADER_NAME = st.from_regex(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}", fullmatch=True).filter(_valid_header_name)
EVENT = st.from_regex(r"[A-Za-z][A-Za-z0-9_.:-]{0,20}", fullmatch=True)
ENDPOINT_NAME = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)
HOST = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z]{2,6}){0,2}", fullmatch=True),
    st.sampled_from(["127.0.0.1", "localhost", "[::1]"]),
)
URL = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{port}/{path}",
    st.sampled_from(["http", "https"]),
    HOST,
    st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}")),
    st.from_regex(r"[A-Za-z0-9._~/%-]{0,30}", fullmatch=True),
)
REFERENCE = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True).map(lambda n: f"${{{n}}}")
SECRET_VALUE = st.one_of(NON_EMPTY_HEADER_TEXT, REFERENCE)
BASIC_PASSWORD = st.one_of(NON_EMPTY_SAFE, REFERENCE)  # base64 of UTF-8 on the wire: any text
SIGNING_SECRET = st.one_of(
    st.binary(min_size=24, max_size=64).map(lambda raw: "whsec_" + base64.b64encode(raw).decode()),
    REFERENCE,
)


@st.composite
def auths(draw: st.DrawFn) -> Auth:
    kind = draw(st.sampled_from(sorted(AUTH_KEYS)))
    values: dict[str, str] = {}
    for key in AUTH_KEYS[kind]:
        if key == "username":
            values[key] = draw(NON_EMPTY_SAFE.filter(lambda u: ":" not in u))
        elif key == "header":
            values[key] = draw(HEADER_NAME)
        elif key == "password":
            values[key] = draw(BASIC_PASSWORD)
        else:
            values[key] = draw(SECRET_VALUE)
    return Auth(type=kind, **values)


@st.composite
def endpoints(draw: st.DrawFn, name: str) -> Endpoint:
    auth = draw(auths())
    taken = {auth.header.lower()} if auth.header else set()
    headers = draw(st.dictionaries(HEADER_NAME.filter(lambda h: h.lower() not in taken), HEADER_TEXT, max_size=3))
    return Endpoint(
        name=name,
        enabled=draw(st.booleans()),
        description=draw(ANY_TEXT),
        auth=auth,
        headers=headers,
        mappings=draw(st.lists(st.builds(EventMapping, event=EVENT, url=URL), max_size=4)),
        timeout=draw(st.none() | POSITIVE),
        verify_tls=draw(st.none() | st.booleans() | ANY_TEXT.filter(bool)),
        signing_secret=draw(st.none() | SIGNING_SECRET),
        disabled_reason=draw(st.none() | ANY_TEXT),
        disabled_at=draw(st.none() | ANY_TEXT),
    )


@st.composite
def configs(draw: st.DrawFn) -> Config:
    config_settings = Settings(
        origin=draw(NON_EMPTY_HEADER_TEXT),
        log_file=draw(ANY_TEXT.filter(bool)),
        timeout=draw(POSITIVE),
        max_attempts=draw(st.integers(1, 100)),
        backoff=draw(st.just(0.0) | POSITIVE),
        concurrency=draw(st.integers(1, 1000)),
        disable_on=draw(st.lists(st.integers(100, 599), max_size=6)),
        verify_tls=draw(st.booleans() | ANY_TEXT.filter(bool)),
    )
    names = draw(st.lists(ENDPOINT_NAME, max_size=4, unique=True))
    return Config(settings=config_settings, endpoints={name: draw(endpoints(name)) for name in names})


# ---------------------------------------------------------------------------
# save → load


@PROPERTY
@given(configs())
def test_any_valid_config_survives_save_and_load_unchanged(config: Config) -> None:
    text = render_config(config)
    assert parse_config_text(text, "mem") == config
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "moxiehook.toml"
        write_atomic(path, text, secret=config.has_literal_secret())
        assert load_config(path) == config
        # A literal secret on disk is only ever readable by its owner.
        if config.has_literal_secret():
            assert os.stat(path).st_mode & 0o777 == 0o600


# ---------------------------------------------------------------------------
# a rejected edit leaves the file untouched

BASE = """\
version = 1

[settings]
log_file = "log.jsonl"

[endpoints.a]
auth = { type = "bearer", token = "${TOKEN}" }
headers = { "X-Team" = "ops" }

[[endpoints.a.mappings]]
event = "ClientCreate"
url = "https://a.example.com/hook"
"""

EDITS = st.one_of(
    st.tuples(st.just("add_mapping"), ANY_TEXT, ANY_TEXT),
    st.tuples(st.just("set_header"), ANY_TEXT, ANY_TEXT),
    st.tuples(st.just("add_endpoint"), ANY_TEXT, ANY_TEXT),
    st.tuples(st.just("set_signing_secret"), ANY_TEXT, ANY_TEXT),
    st.tuples(st.just("disable_endpoint"), ANY_TEXT, ANY_TEXT),
)


def _apply(path: Path, edit: tuple[str, str, str]) -> None:
    kind, first, second = edit
    if kind == "add_mapping":
        ops.add_mapping(path, "a", first, second)
    elif kind == "set_header":
        ops.set_header(path, "a", first, second)
    elif kind == "add_endpoint":
        ops.add_endpoint(path, Endpoint(name=first, description=second))
    elif kind == "set_signing_secret":
        ops.set_signing_secret(path, "a", first + second)
    else:
        ops.disable_endpoint(path, first, second)


@PROPERTY
@given(st.lists(EDITS, min_size=1, max_size=4))
def test_an_edit_is_either_saved_and_loadable_or_refused_with_the_file_untouched(
    edits: list[tuple[str, str, str]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "moxiehook.toml"
        path.write_text(BASE)
        for edit in edits:
            before = path.read_bytes()
            try:
                _apply(path, edit)
            except MoxiehookError:
                assert path.read_bytes() == before
            else:
                config = load_config(path)  # what was saved loads again …
                assert parse_config_text(render_config(config), path) == config  # … and is stable
            leftovers = {p.name for p in Path(folder).iterdir()} - {
                "moxiehook.toml", "moxiehook.toml.lock", "log.jsonl", "log.jsonl.lock"}
            assert leftovers == set()


# ---------------------------------------------------------------------------
# garbage in → ConfigError, never a traceback


def _load_outcome(text: str | bytes) -> Config | None:
    """Load ``text`` from a file: a Config, or None after a ConfigError. Anything else fails the test."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "moxiehook.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        try:
            return load_config(path)
        except ConfigError as exc:
            assert str(exc).startswith(str(path)), exc  # the message names the file
            return None


@PROPERTY
@given(st.binary(max_size=400))
def test_random_bytes_are_a_config_error_or_a_config(data: bytes) -> None:
    _load_outcome(data)


@PROPERTY
@given(configs(), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 3), st.binary(max_size=4)), max_size=5))
def test_a_mangled_valid_file_is_a_config_error_or_a_valid_config(
    config: Config, cuts: list[tuple[int, int, bytes]]
) -> None:
    data = bytearray(render_config(config).encode())
    for position, length, insert in cuts:
        at = position % (len(data) + 1)
        data[at : at + length] = insert
    loaded = _load_outcome(bytes(data))
    if loaded is not None:
        assert parse_config_text(render_config(loaded), "mem") == loaded


TOML_VALUES = st.recursive(
    st.none().map(lambda _: "x") | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=8,
)


def _replace_at(data: Any, choices: list[int], value: Any) -> Any:
    """``data`` with one node (picked by ``choices``) replaced by ``value``."""
    if not choices or not isinstance(data, (dict, list)) or not data:
        return value
    keys = list(data) if isinstance(data, dict) else list(range(len(data)))
    key = keys[choices[0] % len(keys)]
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[key] = _replace_at(data[key], choices[1:], value)
    return copy


@PROPERTY
@given(configs(), st.lists(st.integers(0, 50), max_size=6), TOML_VALUES)
def test_a_wrong_type_anywhere_is_a_config_error_or_a_valid_config(
    config: Config, choices: list[int], value: Any
) -> None:
    data = _replace_at(config_to_dict(config), choices, value)
    if not isinstance(data, dict):
        data = {"version": data}
    loaded = _load_outcome(tomli_w.dumps(data))
    if loaded is not None:
        assert parse_config_text(render_config(loaded), "mem") == loaded


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("x = " + "[" * 5000 + "]" * 5000, "nested too deeply"),
        ("version = " + "[" * 500 + "]" * 500, "nested too deeply"),
        ("x = " + "{a=" * 3000 + "1" + "}" * 3000, "nested too deeply"),
        ("[" + ".".join(["a"] * 3000) + "]", "a: unknown key"),
        ("[endpoints.a]\nheaders = " + "{a=" * 200 + "1" + "}" * 200, "expected a string, got a table"),
        ("version = 1\n[settings]\ntimeout = " + "9" * 5000, "invalid TOML"),
        ("version = 1\n[settings]\ntimeout = 1" + "0" * 400, "settings.timeout: number too large"),
        ("version = 1\n[settings]\ntimeout = nan", "settings.timeout: must be a finite number"),
        ("version = 1\n[settings]\nbackoff = inf", "settings.backoff: must be a finite number"),
        ("version = 1\n[endpoints.a]\ntimeout = -inf", "endpoints.a.timeout: must be a finite number"),
        ("version = 1\n[settings]\norigin = \"" + "o" * 2_000_000 + "\\r\"", "CR, LF or NUL"),
        ("version = 1\n[settings]\nmax_attempts = \"3\"", "expected an integer, got a string"),
        ("version = 1\n[settings]\nverify_tls = 1", "expected a boolean or a string"),
        ("version = true", "expected an integer, got a boolean"),
        ("version = 1\nendpoints = []", "expected a table, got an array"),
    ],
    ids=["deep-array", "deep-array-500", "deep-inline-table", "deep-dotted-table", "table-as-header",
         "huge-integer", "integer-beyond-float", "nan-timeout", "inf-backoff", "endpoint-inf-timeout",
         "huge-string-with-cr", "string-for-int", "int-for-bool", "bool-version", "array-for-table"],
)
def test_pathological_configs_are_one_error_line(cli, config_path: Path, text: str, fragment: str) -> None:
    config_path.write_text(text, encoding="utf-8")
    before = config_path.read_bytes()
    for args in (["config", "validate"], ["endpoint", "list"], ["map", "add", "a", "ClientCreate", "https://x.io/"]):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[:300]
        assert fragment in lines[0], lines[0][:300]
        assert str(config_path) in lines[0]
    assert config_path.read_bytes() == before


def test_a_huge_but_valid_string_is_kept_whole(config_path: Path) -> None:
    ops.add_endpoint(config_path, Endpoint(name="big", description="d" * 1_000_000))
    assert load_config(config_path).endpoints["big"].description == "d" * 1_000_000


# ---------------------------------------------------------------------------
# bad values on the command line

CONTROL = st.sampled_from(["\r", "\n", "\r\n", "\0"])


@st.composite
def with_control(draw: st.DrawFn, base: st.SearchStrategy[str]) -> str:
    """A value from ``base`` with a CR, LF or NUL spliced in somewhere."""
    text = draw(base)
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(CONTROL) + text[at:]


_RUNNER = CliRunner()


def _refused(config_path: Path, *args: str) -> str:
    """Run the CLI; assert exit 2, one ``error:`` line, config unchanged. Returns the line."""
    before = config_path.read_bytes()
    result = _RUNNER.invoke(app, ["--config", str(config_path), *args])
    assert result.exit_code == 2, (args, result.exit_code, result.stdout, result.stderr)
    assert not result.exception or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert config_path.read_bytes() == before
    return lines[0]


@pytest.fixture
def endpoint_a(config_path: Path) -> Path:
    ops.add_endpoint(config_path, Endpoint(name="a", auth=Auth(type="bearer", token="${T}")))
    return config_path


@CLI_PROPERTY
@given(value=with_control(SAFE_TEXT), name=HEADER_NAME)
def test_cr_lf_nul_in_a_header_value_is_refused(endpoint_a: Path, value: str, name: str) -> None:
    _refused(endpoint_a, "endpoint", "set-header", "a", name, value)
    _refused(endpoint_a, "endpoint", "add", "b", "--header", f"{name}: x{value}x")
    _refused(endpoint_a, "endpoint", "add", "c", "--header-name", "X-Key", "--header-value", value)
    _refused(endpoint_a, "endpoint", "auth", "a", "--auth", "bearer", "--token", value)


@CLI_PROPERTY
@given(name=with_control(st.from_regex(r"X-[A-Za-z]{0,10}", fullmatch=True)))
def test_cr_lf_nul_in_a_header_name_is_refused(endpoint_a: Path, name: str) -> None:
    _refused(endpoint_a, "endpoint", "set-header", "a", name, "v")
    _refused(endpoint_a, "endpoint", "add", "c", "--header-name", name, "--header-value", "v")


@CLI_PROPERTY
@given(event=with_control(EVENT), url=with_control(URL))
def test_cr_lf_nul_in_an_event_or_url_is_refused(endpoint_a: Path, event: str, url: str) -> None:
    assert "event" in _refused(endpoint_a, "map", "add", "a", event, "https://ok.example.com/")
    assert "url" in _refused(endpoint_a, "map", "add", "a", "ClientCreate", url)


@CLI_PROPERTY
@given(name=ANY_TEXT.filter(lambda n: not n.startswith("-")))
def test_any_endpoint_name_is_added_or_refused_cleanly(config_path: Path, name: str) -> None:
    before = config_path.read_bytes()
    result = _RUNNER.invoke(app, ["--config", str(config_path), "endpoint", "add", "--", name])
    assert not result.exception or isinstance(result.exception, SystemExit), result.exception
    if result.exit_code == 0:
        assert name in load_config(config_path).endpoints
        ops.remove_endpoint(config_path, name)
    else:
        assert result.exit_code == 2 and result.stderr.startswith("error: "), result.stderr
        assert config_path.read_bytes() == before


@pytest.mark.parametrize(
    "args",
    [
        ("endpoint", "set-header", "a", "X-Name\n", "v"),
        ("endpoint", "add", "b\n"),
        ("endpoint", "add", "c", "--header-name", "X-Key\n", "--header-value", "v"),
        ("map", "add", "a", "ClientCreate\n", "https://ok.example.com/"),
        ("map", "add", "a", "ClientCreate", "https://ok.example.com/\n"),
    ],
    ids=["header-name", "endpoint-name", "auth-header-name", "event", "url"],
)
def test_a_trailing_newline_is_refused(endpoint_a: Path, args: tuple[str, ...]) -> None:
    """Regression: regexes ending in `$` accepted a value ending in one newline."""
    _refused(endpoint_a, *args)


@pytest.mark.parametrize(
    "table",
    ['[endpoints."a\\n"]', '[endpoints.a.headers]\n"X-A\\n" = "v"',
     '[[endpoints.a.mappings]]\nevent = "ClientCreate\\n"\nurl = "https://x.io/"'],
    ids=["endpoint-name", "header-name", "event"],
)
def test_a_trailing_newline_in_the_file_is_a_config_error(table: str) -> None:
    assert _load_outcome(f"version = 1\n{table}\n") is None
