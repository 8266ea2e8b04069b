"""Bad values given to fire, logs and replay: one ``error:`` line, exit 2, nothing sent.

Each case runs against a real loopback receiver and checks, besides the exit
code and the single error line, that no request reached it and no log was
written. The ``--set`` fallback (a value that is not JSON is a string)
and the payloads that are JSON but odd (an array, a bare string) are checked
for what they do send.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moxiehook.config import edits as ops
from moxiehook.config.model import Auth, Endpoint, EventMapping

BAD_INPUT = settings(max_examples=50, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


class CountingServer:
    """A loopback HTTP server that counts requests; one per module, so that the
    many short tests here do not each wait for a server to shut down."""

    def __init__(self) -> None:
        counter = self
        self.requests: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib naming
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                counter.requests.append(self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


@pytest.fixture(scope="module")
def counting_server() -> Iterator[CountingServer]:
    server = CountingServer()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def receiver(counting_server: CountingServer) -> Iterator[CountingServer]:
    """Overrides conftest's receiver here: requests seen during this test only."""
    counting_server.requests.clear()
    yield counting_server


@pytest.fixture
def hooked(config_path: Path, receiver) -> Path:
    """An endpoint 'crm' mapping ClientCreate and a custom event to the receiver."""
    ops.add_endpoint(config_path, Endpoint(
        name="crm", auth=Auth(type="bearer", token="t0ken"),
        mappings=[EventMapping("ClientCreate", receiver.url("/h")), EventMapping("MyEvent", receiver.url("/h"))],
    ))
    return config_path


def refused(cli, config_path: Path, receiver, *args: str, input: str | None = None) -> str:
    """Assert a clean refusal: exit 2, one error line, nothing sent, nothing logged."""
    before = config_path.read_bytes()
    result = cli(*args, input=input)
    assert result.exit_code == 2, (args, result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert receiver.requests == []
    assert not (config_path.parent / "log.jsonl").exists()
    assert config_path.read_bytes() == before
    return lines[0]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("fire", "ClientCreate", "--count", "0"), "--count"),
        (("fire", "ClientCreate", "--count", "-3"), "--count"),
        (("fire", "ClientCreate", "--concurrency", "0"), "--concurrency"),
        (("fire", "ClientCreate", "--concurrency", "-1"), "--concurrency"),
        (("fire", "ClientCreate", "--count", "many"), "--count"),
        (("fire", "ClientCreate", "--set", "novalue"), "KEY=VALUE"),
        (("fire", "ClientCreate", "--set", "=x"), "--set"),
        (("fire", "ClientCreate", "--set", "name.first=x"), "name"),
        (("fire", "ClientCreate", "--data", "missing.json"), "missing.json"),
        (("fire", "ClientCreate", "--endpoint", "nope"), "nope"),
        (("fire", "MyEvent"), "--data"),  # not in the catalog: no sample to send
        (("logs", "--since", "garbage"), "--since"),
        (("logs", "--since", "-5m"), "--since"),
        (("logs", "--since", "2026-13-45"), "--since"),
        (("logs", "--tail", "-1"), "--tail"),
        (("logs", "--status", "abc"), "--status"),
        (("logs", "--outcome", "maybe"), "--outcome"),
        (("replay", "--since", "garbage"), "--since"),
        (("replay",), "replay"),
        (("replay", "--failed", "--limit", "-1"), "--limit"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else None,
)
def test_a_bad_option_value_is_refused(cli, hooked: Path, receiver, args: tuple[str, ...], fragment: str) -> None:
    assert fragment in refused(cli, hooked, receiver, *args)


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe{\"a\": 1}", b"{\"name\": \"caf\xe9\"}", b"{\"a\":", b"", b"   ", b"{\"a\": 1} trailing"],
    ids=["utf16-bom", "latin1", "truncated", "empty", "blank", "trailing-garbage"],
)
@pytest.mark.parametrize("source", ["file", "stdin"])
def test_unreadable_data_is_refused(cli, hooked: Path, receiver, tmp_path: Path, content: bytes, source: str) -> None:
    if source == "file":
        (tmp_path / "payload.json").write_bytes(content)
        message = refused(cli, hooked, receiver, "fire", "ClientCreate", "--data", "payload.json")
    else:
        message = refused(cli, hooked, receiver, "fire", "ClientCreate", "--data", "-",
                          input=content)  # type: ignore[arg-type]  # bytes reach stdin unchanged
    assert "--data" in message


@pytest.mark.parametrize("event", ["Client\rCreate", "Client\nCreate", "ClientCreate\n", "Client\0Create"],
                         ids=["cr", "lf", "trailing-lf", "nul"])
def test_an_event_name_with_cr_lf_or_nul_is_refused(cli, hooked: Path, receiver, tmp_path: Path, event: str) -> None:
    """Regression: with --data it exited 3 'no mapping', echoing the raw CR/LF into the error line."""
    (tmp_path / "payload.json").write_text('{"id": "x"}')
    refused(cli, hooked, receiver, "fire", event)
    refused(cli, hooked, receiver, "fire", event, "--data", "payload.json")


def test_deeply_nested_data_is_refused(cli, hooked: Path, receiver, tmp_path: Path) -> None:
    """Regression: json.loads raised RecursionError, a traceback."""
    (tmp_path / "deep.json").write_text('{"a":' + "[" * 100_000 + "]" * 100_000 + "}")
    refused(cli, hooked, receiver, "fire", "ClientCreate", "--data", "deep.json")


def test_nan_and_infinity_are_not_json(cli, hooked: Path, receiver, tmp_path: Path) -> None:
    """Regression: Python's json accepts NaN/Infinity and sent the bare token NaN on the wire."""
    (tmp_path / "nan.json").write_text('{"a": NaN, "b": Infinity}')
    refused(cli, hooked, receiver, "fire", "ClientCreate", "--data", "nan.json")
    # --set NaN is refused too (strict JSON), with how to send the text instead; quoted, it is that text.
    assert "--set 'hourlyAmount=\"NaN\"'" in refused(cli, hooked, receiver, "fire", "ClientCreate",
                                                      "--set", "hourlyAmount=NaN")
    result = cli("fire", "ClientCreate", "--set", 'hourlyAmount="NaN"', "--dry-run", "--json")
    assert json.loads(result.stdout)[0]["body"]["hourlyAmount"] == "NaN"


@pytest.mark.parametrize("since", ["99999999999d", "999999999d", "9" * 30 + "s"])
@pytest.mark.parametrize("command", ["logs", "replay"])
def test_an_absurd_since_duration_is_refused(cli, hooked: Path, receiver, command: str, since: str) -> None:
    """Regression: timedelta / datetime overflow was an OverflowError traceback."""
    args = ("--since", since) if command == "logs" else ("--failed", "--since", since)
    assert "--since" in refused(cli, hooked, receiver, command, *args)


# ---------------------------------------------------------------------------
# --set: JSON when it parses, else the text itself


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        ("name={bad", "{bad"),
        ("name=[1,", "[1,"),
        ("name='single'", "'single'"),
        ("name=Acme Design", "Acme Design"),
        ("name=", ""),
        ("name=null", None),
        ("name=true", True),
        ('name="quoted"', "quoted"),
        ("name=12", 12),
        ('name={"a": [1, 2]}', {"a": [1, 2]}),
        ("name=caf\u00e9 \u2603", "caf\u00e9 \u2603"),
    ],
)
def test_set_parses_json_and_falls_back_to_the_text(cli, hooked: Path, receiver, assignment: str,
                                                    expected: object) -> None:
    result = cli("fire", "ClientCreate", "--set", assignment, "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    [request] = json.loads(result.stdout)
    assert request["body"]["name"] == expected
    assert receiver.requests == []  # a dry run sends nothing


@BAD_INPUT
@given(value=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=40))
def test_any_set_value_is_sent_as_json_or_as_its_text(cli, hooked: Path, receiver, value: str) -> None:
    result = cli("fire", "ClientCreate", "--set", f"name={value}", "--dry-run", "--json")
    try:
        lenient = json.loads(value)  # Python's json: NaN, Infinity and 1e999 (inf) pass
    except (ValueError, RecursionError):
        lenient, parsed = value, value  # not JSON: the text itself
    else:
        try:  # strict JSON: a value holding a number JSON cannot carry is refused, not taken as text
            parsed = json.loads(json.dumps(lenient, allow_nan=False), parse_constant=_refuse)
        except ValueError:
            assert result.exit_code == 2 and "not JSON" in result.stderr, (value, result.stderr)
            return
    assert result.exit_code == 0, (value, result.stderr)
    [request] = json.loads(result.stdout)
    assert request["body"]["name"] == parsed


def _refuse(token: str) -> None:
    raise ValueError(token)


@BAD_INPUT
@given(since=st.text(max_size=20))
def test_any_since_text_is_accepted_or_one_error_line(cli, hooked: Path, receiver, since: str) -> None:
    result = cli("logs", "--since", since, "--json") if not since.startswith("-") else None
    if result is None or result.exit_code == 0:
        return
    assert result.exit_code == 2, (since, result.stderr)
    assert result.stderr.startswith("error: ")
