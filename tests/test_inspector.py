"""The inspector's JSON API over real HTTP: guard, list, detail, schema, diff, replay, exports.

The inspector runs in this process on 127.0.0.1 (``start_inspector``) over a log that real
``fire`` runs wrote to a real loopback receiver; ``moxiehook ui`` and ``listen --ui`` run as
real processes. Requests are made with ``http.client`` so the tests choose every header
(``Host``, ``Origin``, the token) themselves.
"""

from __future__ import annotations

import http.client
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moxiehook.config import load_config
from moxiehook.inspect import InspectorConfig, ReplayTarget, RunningInspector, start_inspector
from tests.conftest import Receiver

pytest_plugins = ["pytester"]

TOKEN_VALUE = "s3cret-bearer-token-xyz"


def write_config(path: Path, url: str) -> None:
    path.write_text(
        'version = 1\n\n[settings]\nlog_file = "log.jsonl"\ntimeout = 3.0\nmax_attempts = 1\n\n'
        f'[endpoints.crm]\nauth = {{ type = "bearer", token = "{TOKEN_VALUE}" }}\n'
        '[[endpoints.crm.mappings]]\nevent = "ClientCreate"\n'
        f'url = "{url}"\n'
    )


class Api:
    """Calls to one inspector with full control of the headers."""

    def __init__(self, inspector: RunningInspector) -> None:
        self.inspector = inspector
        self.port = inspector.port
        self.host = f"127.0.0.1:{self.port}"

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             token: bool = True, raw: bytes | None = None) -> tuple[int, Any, dict[str, str]]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            sent = {"Host": self.host}
            if token and method in ("POST", "DELETE"):
                sent["X-Moxiehook-Token"] = self.inspector.token
            data = raw
            if body is not None:
                data = json.dumps(body).encode()
                sent["Content-Type"] = "application/json"
            sent.update(headers or {})
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in sent.items():
                connection.putheader(name, value)
            if data is not None:
                connection.putheader("Content-Length", str(len(data)))
            connection.endheaders(data)
            response = connection.getresponse()
            payload = response.read()
            answer_headers = {name.lower(): value for name, value in response.getheaders()}
            if answer_headers.get("content-type", "").startswith("application/json"):
                return response.status, json.loads(payload), answer_headers
            return response.status, payload.decode(), answer_headers
        finally:
            connection.close()

    def get(self, path: str, **kwargs: Any) -> Any:
        status, data, _ = self.call("GET", path, **kwargs)
        assert status == 200, (status, data)
        return data

    def wait_for(self, predicate: Any, what: str, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # bounded poll: the follower reads the log every 0.05 s
            found = self.get("/api/requests")["requests"]
            if predicate(found):
                return found
            time.sleep(0.05)
        pytest.fail(f"never saw {what}")


@pytest.fixture
def logged(cli, config_path: Path, receiver: Receiver) -> Path:
    """A config whose endpoint 'crm' (bearer auth) maps ClientCreate to the receiver; two fires logged."""
    write_config(config_path, receiver.url("/hook"))
    assert cli("fire", "ClientCreate").exit_code == 0
    from moxiehook import catalog

    body = {**catalog.sample("ClientCreate"), "name": 5, "color": "not a colour", "extraField": 1}
    (config_path.parent / "bad.json").write_text(json.dumps(body))
    assert cli("fire", "ClientCreate", "--data", str(config_path.parent / "bad.json")).exit_code == 0
    return config_path


@pytest.fixture
def inspector(logged: Path) -> Iterator[Api]:
    config = load_config(logged)
    running = start_inspector(InspectorConfig(
        target=ReplayTarget(logged, lambda: load_config(logged)), log_path=config.log_path(logged),
        port=0, follow=True, follow_interval=0.05, keepalive_s=0.5))
    try:
        yield Api(running)
    finally:
        running.stop()


# ---------------------------------------------------------------------------
# the guard


def test_the_page_carries_the_token_and_is_locked_down(inspector: Api) -> None:
    status, html, headers = inspector.call("GET", "/")
    assert status == 200
    assert f'<meta name="moxiehook-token" content="{inspector.inspector.token}">' in html
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert "http://" not in html.replace("http://www.w3.org", "")  # nothing loaded from the network


@pytest.mark.parametrize("host", ["evil.example:{port}", "127.0.0.1:1", "localhost.evil:{port}", "", "127.0.0.1"])
def test_a_foreign_host_is_refused(inspector: Api, host: str) -> None:
    status, data, _ = inspector.call("GET", "/api/requests", headers={"Host": host.format(port=inspector.port)})
    assert status == 403 and "Host" in data["error"]


@pytest.mark.parametrize("host", ["localhost:{port}", "[::1]:{port}", "LOCALHOST:{port}"])
def test_the_inspectors_own_names_are_served(inspector: Api, host: str) -> None:
    status, _, _ = inspector.call("GET", "/api/requests", headers={"Host": host.format(port=inspector.port)})
    assert status == 200


def test_a_rebound_dns_name_cannot_replay_or_clear(inspector: Api) -> None:
    entry = inspector.get("/api/requests")["requests"][0]
    for method, path in (("POST", f"/api/requests/{entry['id']}/replay"), ("DELETE", "/api/requests")):
        status, _, _ = inspector.call(method, path, headers={"Host": f"attacker.example:{inspector.port}"})
        assert status == 403
    assert len(inspector.get("/api/requests")["requests"]) == 2


@pytest.mark.parametrize("headers", [
    {},
    {"X-Moxiehook-Token": "wrong"},
    {"X-Moxiehook-Token": ""},
])
def test_state_changes_need_the_token_and_nothing_happens_without_it(
        inspector: Api, receiver: Receiver, headers: dict[str, str]) -> None:
    entry = inspector.get("/api/requests")["requests"][0]
    before = len(receiver.requests)
    status, _, _ = inspector.call("POST", f"/api/requests/{entry['id']}/replay", headers=headers, token=False)
    assert status == 403
    status, _, _ = inspector.call("DELETE", "/api/requests", headers=headers, token=False)
    assert status == 403
    assert len(receiver.requests) == before
    assert len(inspector.get("/api/requests")["requests"]) == 2


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "https://127.0.0.1:{port}",
                                    "http://127.0.0.1:{port}.evil.example", "http://127.0.0.1:1"])
def test_another_origin_is_refused_even_with_the_token(inspector: Api, receiver: Receiver, origin: str) -> None:
    entry = inspector.get("/api/requests")["requests"][0]
    before = len(receiver.requests)
    status, _, _ = inspector.call("POST", f"/api/requests/{entry['id']}/replay",
                                  headers={"Origin": origin.format(port=inspector.port)})
    assert status == 403
    assert len(receiver.requests) == before


def test_its_own_origin_with_the_token_may_clear(inspector: Api) -> None:
    status, _, _ = inspector.call("DELETE", "/api/requests", headers={"Origin": f"http://{inspector.host}"})
    assert status == 200
    assert inspector.get("/api/requests")["requests"] == []
    assert (inspector.inspector.config.log_path or Path()).read_text().count("\n") == 2  # the log is untouched


def test_an_oversized_edit_is_refused_unread(inspector: Api, receiver: Receiver) -> None:
    entry = inspector.get("/api/requests")["requests"][0]
    before = len(receiver.requests)
    # Announced, never sent: the inspector answers without waiting for (or reading) the body.
    status, _, _ = inspector.call("POST", f"/api/requests/{entry['id']}/replay",
                                  headers={"Content-Type": "application/json", "Content-Length": str(3 << 20)})
    assert status == 413
    assert len(receiver.requests) == before


# ---------------------------------------------------------------------------
# list and detail


def test_the_list_is_newest_first_with_summaries(inspector: Api) -> None:
    first, second = reversed(inspector.get("/api/requests")["requests"])
    assert second["id"] > first["id"]
    assert set(first) == {"id", "at", "method", "path", "event", "auth_ok", "signature_ok", "schema_ok", "status",
                          "app_status", "duration_ms", "mode", "replay_of"}
    assert (first["event"], first["path"], first["method"], first["mode"]) == ("ClientCreate", "/hook", "POST", "fire")
    assert first["schema_ok"] is True and second["schema_ok"] is False
    assert first["status"] == 200 and first["app_status"] is None


def test_filters_event_failed_text_and_limit(inspector: Api) -> None:
    assert len(inspector.get("/api/requests?limit=1")["requests"]) == 1
    assert inspector.get("/api/requests?event=ClientUpdate")["requests"] == []
    failed = inspector.get("/api/requests?failed=1")["requests"]
    assert [entry["schema_ok"] for entry in failed] == [False]
    assert len(inspector.get("/api/requests?q=NOT+A+COLOUR")["requests"]) == 1
    assert len(inspector.get("/api/requests?q=/hook")["requests"]) == 2
    status, _, _ = inspector.call("GET", "/api/requests?limit=ten")
    assert status == 400


def test_detail_masks_the_credential_and_judges_the_schema(inspector: Api) -> None:
    newest = inspector.get("/api/requests")["requests"][0]
    detail = inspector.get(f"/api/requests/{newest['id']}")
    assert detail["headers"]["Authorization"] == "***"
    assert TOKEN_VALUE not in json.dumps(detail)
    assert detail["json"]["color"] == "not a colour" and detail["json_error"] is None
    schema = detail["schema"]
    assert schema["event"] == "ClientCreate" and schema["valid"] is False
    pointers = {error["pointer"] for error in schema["errors"]}
    assert {"/name", "/color"} <= pointers
    assert schema["unknown"] == ["/extraField"]
    assert detail["answer"]["status"] == 200


def test_schema_errors_match_jsonschema_itself(inspector: Api) -> None:
    """Differential: the pointers are those of jsonschema's own errors, RFC 6901-encoded."""
    import jsonschema

    from moxiehook import catalog

    newest = inspector.get("/api/requests")["requests"][0]
    detail = inspector.get(f"/api/requests/{newest['id']}")
    validator = jsonschema.Draft202012Validator(catalog.schema("ClientCreate"),
                                                format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    expected = sorted("".join(f"/{part}" for part in error.absolute_path)
                      for error in validator.iter_errors(detail["json"]))
    assert sorted(error["pointer"] for error in detail["schema"]["errors"]) == expected


def test_an_unknown_id_is_404(inspector: Api) -> None:
    status, data, _ = inspector.call("GET", "/api/requests/dlv_nope")
    assert status == 404 and "dlv_nope" in data["error"]


# ---------------------------------------------------------------------------
# analysis of hostile bodies (pure functions, many inputs)


@pytest.mark.parametrize(("text", "line", "column"), [
    ('{"a": 1,\n  "b": }', 2, 8),
    ("{'a': 1}", 1, 2),
    ('{"a": NaN}', 1, 7),
    ('{"a": 1}\n\nx', 3, 1),
    ("", 1, 1),
    ('{"a": "\u00b2"', 1, 10),
    ('{"a": 1,\n "b": 1e999}', 2, 7),
    ('[-1E400]', 1, 2),
])
def test_json_errors_are_located_from_one(text: str, line: int, column: int) -> None:
    from moxiehook.inspect.analysis import parse_body

    parsed = parse_body(text)
    assert not parsed.ok
    assert parsed.error is not None and (parsed.error["line"], parsed.error["column"]) == (line, column)


def test_pointers_escape_tilde_and_slash_and_drift_reaches_into_arrays() -> None:
    from moxiehook import catalog
    from moxiehook.inspect.analysis import Parsed, drift, pointer, schema_verdict

    assert pointer(["a/b", "c~d", 0]) == "/a~1b/c~0d/0"
    body = catalog.sample("ClientCreate")
    body["contacts"] = [{**body["contacts"][0], "a/b": 1}] if body.get("contacts") else [{"a/b": 1}]
    found: list[str] = []
    drift(catalog.sample("ClientCreate"), body, [], found)
    assert "/contacts/0/a~1b" in found
    assert schema_verdict("NotAnEvent", Parsed(True, {})) is None
    assert schema_verdict("ClientCreate", Parsed(False)) is None


def test_a_body_of_many_wrong_fields_gives_a_bounded_verdict() -> None:
    from moxiehook.inspect.analysis import MAX_LISTED, Parsed, schema_verdict

    body = {f"field{i}": i for i in range(5000)}
    verdict = schema_verdict("ClientCreate", Parsed(True, body))
    assert verdict is not None and len(verdict["unknown"]) == MAX_LISTED
    assert len(verdict["errors"]) <= MAX_LISTED


# ---------------------------------------------------------------------------
# diff


def test_diff_of_two_requests_and_against_the_sample(inspector: Api) -> None:
    newest, oldest = (entry["id"] for entry in inspector.get("/api/requests")["requests"])
    changes = inspector.get(f"/api/diff?a={oldest}&b={newest}")["changes"]
    by_pointer = {change["pointer"]: change for change in changes}
    assert by_pointer["/color"]["op"] == "changed" and by_pointer["/color"]["b"] == "not a colour"
    assert by_pointer["/extraField"] == {"pointer": "/extraField", "op": "added", "a": None, "b": 1}
    against_sample = inspector.get(f"/api/diff?a={oldest}&sample=1")["changes"]
    assert against_sample == []  # the first fire sent the sample itself
    assert inspector.get(f"/api/diff?a={newest}&sample=1")["changes"]


def test_ignore_volatile_leaves_out_ids_and_times() -> None:
    from moxiehook.inspect.analysis import diff

    a = {"id": "5f0c8a9b1c2d3e4f5a6b7c8d", "createdAt": "2026-01-01T00:00:00.000Z", "name": "A",
         "when": "2026-01-01T00:00:00.000Z", "clientId": 1}
    b = {"id": "6f0c8a9b1c2d3e4f5a6b7c8e", "createdAt": "2026-02-01T00:00:00.000Z", "name": "B",
         "when": "2026-03-01T00:00:00.000Z", "clientId": 2}
    assert {change["pointer"] for change in diff(a, b)} == {"/id", "/createdAt", "/name", "/when", "/clientId"}
    assert [change["pointer"] for change in diff(a, b, ignore_volatile=True)] == ["/name"]
    assert diff({"n": 1}, {"n": 1.0}) == [] and diff({"n": 1}, {"n": True})


# ---------------------------------------------------------------------------
# replay


def test_replay_resends_through_replays_code_and_the_new_record_joins_at_once(
        inspector: Api, receiver: Receiver, logged: Path) -> None:
    oldest = inspector.get("/api/requests")["requests"][-1]
    status, data, _ = inspector.call("POST", f"/api/requests/{oldest['id']}/replay")
    assert status == 200, data
    new = inspector.get(f"/api/requests/{data['id']}")
    assert (new["mode"], new["replay_of"]) == ("replay", oldest["id"])
    last = receiver.requests[-1]
    assert last.headers["authorization"] == f"Bearer {TOKEN_VALUE}"  # the endpoint's current credential
    assert last.json() == inspector.get(f"/api/requests/{oldest['id']}")["json"]
    logged_lines = [json.loads(line) for line in (logged.parent / "log.jsonl").read_text().splitlines()]
    assert logged_lines[-1]["id"] == data["id"] and logged_lines[-1]["replay_of"] == oldest["id"]
    assert inspector.get("/api/requests")["requests"][0]["id"] == data["id"]
    time.sleep(0.3)  # the follower reads the same record from the log: it must not be listed twice
    assert [entry["id"] for entry in inspector.get("/api/requests")["requests"]].count(data["id"]) == 1


def test_edit_and_replay_changes_path_headers_and_body_only(inspector: Api, receiver: Receiver) -> None:
    oldest = inspector.get("/api/requests")["requests"][-1]
    edit = {"path": "/hook/edited?x=1", "headers": {"Authorization": "***", "X-Trace": "abc"},
            "body": {"hello": "wörld"}}
    status, data, _ = inspector.call("POST", f"/api/requests/{oldest['id']}/replay", body=edit)
    assert status == 200, data
    last = receiver.requests[-1]
    assert last.path == "/hook/edited?x=1"
    assert last.headers["x-trace"] == "abc"
    assert last.headers["authorization"] == f"Bearer {TOKEN_VALUE}"
    assert last.json() == {"hello": "wörld"}
    new = inspector.get(f"/api/requests/{data['id']}")
    assert new["json"] == {"hello": "wörld"} and new["replay_of"] == oldest["id"]
    assert new["schema"]["valid"] is False


@pytest.mark.parametrize("edit", [
    {"body": '{"client": '},  # malformed JSON on purpose: the original's Content-Type stays
    {"body": "plain text", "headers": {"Content-Type": "text/plain"}},
])
def test_an_edited_body_that_is_a_string_is_sent_as_the_text_itself(
        inspector: Api, receiver: Receiver, logged: Path, edit: dict[str, Any]) -> None:
    """Edit and replay with the body typed as text, e.g. ``{"client": `` to see how the app takes bad JSON.

    Seen: the app received ``"{\\"client\\": "`` (a JSON string: quotes and escapes added), so
    malformed JSON could not be sent. Should: the text's own bytes, with the original's
    Content-Type unless the edit changed it; logged as text, so the page shows it as sent and
    ``replay`` of the new record sends the same bytes again.
    """
    oldest = inspector.get("/api/requests")["requests"][-1]
    status, data, _ = inspector.call("POST", f"/api/requests/{oldest['id']}/replay", body=edit)
    assert status == 200, data
    last = receiver.requests[-1]
    assert last.body == edit["body"].encode()
    assert last.headers["content-type"] == edit.get("headers", {}).get("Content-Type", "application/json")
    new = inspector.get(f"/api/requests/{data['id']}")
    assert new["body"] == edit["body"] and new["json"] is None
    record = json.loads((logged.parent / "log.jsonl").read_text().splitlines()[-1])
    assert (record["id"], record["request"]["body_format"]) == (data["id"], "text")
    result = subprocess.run([sys.executable, "-m", "moxiehook", "--config", str(logged), "replay", data["id"]],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert receiver.requests[-1].body == edit["body"].encode()


def test_an_edited_text_body_with_a_lone_surrogate_is_refused(inspector: Api, receiver: Receiver) -> None:
    """A text body holding ``\\ud800`` has no UTF-8 form: refused (400), nothing sent, no broken log line."""
    oldest = inspector.get("/api/requests")["requests"][-1]
    before = len(receiver.requests)
    status, data, _ = inspector.call("POST", f"/api/requests/{oldest['id']}/replay", raw=b'{"body": "a\\ud800"}',
                                     headers={"Content-Type": "application/json"})
    assert status == 400, data
    assert "surrogate" in data["error"]
    assert len(receiver.requests) == before


@pytest.mark.parametrize(("edit", "match"), [
    ({"path": "//evil.example/x"}, "path"),
    ({"path": "http://evil.example/x"}, "path"),
    ({"path": "/a b"}, "path"),
    ({"headers": {"Authorization": "Bearer typed-in"}}, "credentials"),
    ({"headers": {"X-Bad": "a\r\nInjected: 1"}}, "CR"),
    ({"headers": {"X-Env": "${HOME}"}}, "expanded"),
    ({"headers": {"Bad Name": "x"}}, "header name"),
    ({"nope": 1}, "JSON object"),
    ({"body": float("inf")}, "JSON"),
])
def test_an_edit_that_could_go_elsewhere_or_leak_is_refused(
        inspector: Api, receiver: Receiver, edit: dict[str, Any], match: str) -> None:
    oldest = inspector.get("/api/requests")["requests"][-1]
    before = len(receiver.requests)
    raw = json.dumps(edit).encode()  # Infinity as Python writes it: not JSON
    status, data, _ = inspector.call("POST", f"/api/requests/{oldest['id']}/replay", raw=raw,
                                     headers={"Content-Type": "application/json"})
    assert status == 400, data
    assert match in data["error"]
    assert len(receiver.requests) == before


def test_replay_of_an_in_process_record_is_refused(inspector: Api, receiver: Receiver, logged: Path) -> None:
    from moxiehook import log as query
    from moxiehook.inspect.store import from_record

    entry = query.tail(logged.parent / "log.jsonl", 1)[0].record
    entry.mode = "app"  # type: ignore[union-attr]
    entry.id = "dlv_APPRECORD"  # type: ignore[union-attr]
    inspector.inspector.store.add(from_record(entry))  # type: ignore[arg-type]
    before = len(receiver.requests)
    status, data, _ = inspector.call("POST", "/api/requests/dlv_APPRECORD/replay")
    assert status == 409 and "--app" in data["error"]
    assert len(receiver.requests) == before


# ---------------------------------------------------------------------------
# exports


def test_curl_export_resends_the_body_with_the_credential_as_a_variable(inspector: Api, receiver: Receiver) -> None:
    newest = inspector.get("/api/requests")["requests"][0]
    text = inspector.get(f"/api/requests/{newest['id']}/curl")
    assert TOKEN_VALUE not in text
    words = shlex.split(text.replace("\\\n", " "), comments=True)
    assert words[:4] == ["curl", "-X", "POST", receiver.url("/hook")]
    assert "Authorization: $AUTHORIZATION" in words
    body = words[words.index("--data-binary") + 1]
    assert json.loads(body) == inspector.get(f"/api/requests/{newest['id']}")["json"]


def test_curl_export_runs_in_a_shell_and_reaches_the_receiver(inspector: Api, receiver: Receiver) -> None:
    import shutil

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    newest = inspector.get("/api/requests")["requests"][0]
    text = inspector.get(f"/api/requests/{newest['id']}/curl")
    result = subprocess.run(["sh", "-c", text], env={**os.environ, "AUTHORIZATION": "Bearer from-env"},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    last = receiver.requests[-1]
    assert last.headers["authorization"] == "Bearer from-env"
    assert last.json() == inspector.get(f"/api/requests/{newest['id']}")["json"]


def test_pytest_export_is_a_passing_test_using_the_moxie_fixture(
        inspector: Api, receiver: Receiver, pytester: pytest.Pytester) -> None:
    newest = inspector.get("/api/requests")["requests"][0]
    text = inspector.get(f"/api/requests/{newest['id']}/pytest")
    assert "def test_clientcreate_" in text and "moxie.fire(" in text
    pytester.makepyfile(test_exported=text)
    before = len(receiver.requests)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n0")
    result.assert_outcomes(passed=1)
    assert receiver.requests[before].json() == inspector.get(f"/api/requests/{newest['id']}")["json"]


def test_a_hostile_body_cannot_break_out_of_the_exports() -> None:
    from moxiehook.inspect.analysis import curl_command, parse_body, pytest_test

    body = "'; touch /tmp/pwned; echo '$(id)`id`\"\"\"\n"
    text = curl_command("http://127.0.0.1:1/x", "POST", {"X-A": "$(id)"}, body)
    words = shlex.split(text.replace("\\\n", " "))
    assert words[-1] == body and "X-A: $(id)" in words
    test = pytest_test("ClientCreate", body, parse_body(body), "http://127.0.0.1:1/x", "dlv_X")
    namespace: dict[str, Any] = {}
    exec(compile(test.split("\n\n\ndef ")[0], "exported", "exec"), namespace)  # only the BODY assignment
    assert namespace["BODY"] == body


# ---------------------------------------------------------------------------
# the stream


def test_the_stream_sends_each_new_record_as_it_is_logged(inspector: Api, cli, logged: Path) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", inspector.port, timeout=30)
    connection.request("GET", "/api/stream", headers={"Host": inspector.host})
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type", "").startswith("text/event-stream")
    events: list[dict[str, Any]] = []

    def read() -> None:
        event = None
        for raw in response:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "request":
                events.append(json.loads(line[6:]))
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.2)
    assert cli("fire", "ClientCreate").exit_code == 0
    reader.join(timeout=20)
    connection.close()
    assert events and events[0]["event"] == "ClientCreate"
    assert events[0]["id"] == inspector.get("/api/requests")["requests"][0]["id"]


def test_a_stream_client_that_goes_away_is_dropped(inspector: Api) -> None:
    for _ in range(3):
        connection = http.client.HTTPConnection("127.0.0.1", inspector.port, timeout=30)
        connection.request("GET", "/api/stream", headers={"Host": inspector.host})
        assert connection.getresponse().status == 200
        connection.close()
    deadline = time.monotonic() + 20
    while inspector.inspector.state.streams and time.monotonic() < deadline:
        time.sleep(0.05)  # the keep-alive (0.5 s here) finds each closed socket
    assert inspector.inspector.state.streams == 0


def test_the_list_is_capped() -> None:
    from moxiehook.inspect.store import Entry, Store

    store = Store(max_entries=5)
    for index in range(12):
        store.add(Entry(id=f"dlv_{index:03}", at="", method="POST", path="/", event=None, mode="fire",
                        replay_of=None, status=200, app_status=None, duration_ms=None, auth_ok=None,
                        signature_ok=None, header_pairs={}, body="{}", body_size=2, answer=None, url=None))
    assert [entry.id for entry in store.newest(100)] == [f"dlv_{i:03}" for i in range(11, 6, -1)]


# ---------------------------------------------------------------------------
# the commands, as real processes


def start_process(args: list[str], cwd: Path) -> tuple[subprocess.Popen[str], str, list[str]]:
    """Start moxiehook; return it, the inspector URL from its stderr, and the stderr lines so far."""
    process = subprocess.Popen([sys.executable, "-m", "moxiehook", *args], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    url = ""
    assert process.stderr is not None
    for line in process.stderr:  # bounded by the process: it prints the URL at start or exits
        lines.append(line)
        if line.startswith("inspector on "):
            url = line.split()[-1]
            break
    if not url:
        process.kill()
        pytest.fail("".join(lines))
    threading.Thread(target=lambda: lines.extend(process.stderr or []), daemon=True).start()
    return process, url, lines


def test_ui_serves_the_log_and_follows_it(logged: Path, cli) -> None:
    process, url, _ = start_process(["--config", str(logged), "ui", "--port", "0"], logged.parent)
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        api = Api.__new__(Api)
        api.port, api.host = port, f"127.0.0.1:{port}"
        assert len(api.get("/api/requests")["requests"]) == 2
        assert cli("fire", "ClientCreate").exit_code == 0
        api.wait_for(lambda found: len(found) == 3, "the third record")
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_ui_refuses_a_remote_host_unless_asked(logged: Path, cli) -> None:
    result = cli("ui", "--host", "0.0.0.0", "--port", "0")
    assert result.exit_code == 2 and "--allow-remote-ui" in result.stderr


def test_listen_ui_shows_what_arrives_with_credentials_masked(tmp_path: Path, cli, config_path: Path) -> None:
    ready = tmp_path / "ready"
    process, url, _ = start_process(["--config", str(config_path), "listen", "--port", "0", "--ui", "--ui-port", "0",
                                     "--auth", "bearer", "--token", "tok-123456789", "--ready-file", str(ready)],
                                    tmp_path)
    try:
        for _ in range(400):  # bounded: 20 s
            if ready.exists():
                break
            time.sleep(0.05)
        listen_url = ready.read_text().strip()
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        api = Api.__new__(Api)
        api.port, api.host = port, f"127.0.0.1:{port}"
        import httpx

        httpx.post(listen_url + "/hooks?x=1", content=b'{"a": 1,}', timeout=10,
                   headers={"Authorization": "Bearer tok-123456789", "X-Event-Type": "ClientCreate"})
        found = api.wait_for(lambda found: len(found) == 1, "the received request")
        summary = found[0]
        assert (summary["mode"], summary["path"], summary["auth_ok"], summary["schema_ok"]) == (
            "listen", "/hooks?x=1", True, None)
        detail = api.get(f"/api/requests/{summary['id']}")
        assert detail["headers"]["Authorization"] == "***" and "tok-123456789" not in json.dumps(detail)
        assert detail["json_error"]["line"] == 1 and detail["json_error"]["column"] == 9
        status, data, _ = api.call("POST", f"/api/requests/{summary['id']}/replay", headers={
            "X-Moxiehook-Token": "x"}, token=False)
        assert status == 403
    finally:
        process.terminate()
        process.wait(timeout=30)


def page_token(api: Api) -> str:
    _, html, _ = api.call("GET", "/")
    return html.split('name="moxiehook-token" content="')[1].split('"')[0]


def api_at(url: str) -> Api:
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    api = Api.__new__(Api)
    api.port, api.host = port, f"127.0.0.1:{port}"
    return api


def wait_ready(ready: Path) -> str:
    for _ in range(400):  # bounded: 20 s
        if ready.exists():
            return ready.read_text().strip()
        time.sleep(0.05)
    pytest.fail("listen never wrote its ready file")


def test_listen_ui_forward_mode_shows_history_and_replays_to_the_app(
        logged: Path, receiver: Receiver, tmp_path: Path) -> None:
    import httpx

    ready = tmp_path / "ready"
    process, url, _ = start_process(["--config", str(logged), "listen", "--port", "0", "--forward-to",
                                     receiver.url(""), "--ui", "--ui-port", "0", "--ready-file", str(ready)], tmp_path)
    try:
        listen_url = wait_ready(ready)
        api = api_at(url)
        assert len(api.get("/api/requests")["requests"]) == 2  # the log's history
        httpx.post(listen_url + "/hooks/app?x=1", content=b'{"id": 1}', timeout=10,
                   headers={"X-Event-Type": "ClientCreate", "Cookie": "session=abcdefgh12345"})
        found = api.wait_for(lambda found: len(found) == 3, "the forwarded request")
        forwarded = found[0]
        assert (forwarded["mode"], forwarded["path"], forwarded["app_status"]) == ("forward", "/hooks/app?x=1", 200)
        assert "abcdefgh12345" not in json.dumps(api.get(f"/api/requests/{forwarded['id']}"))
        before = len(receiver.requests_to("/hooks/app?x=1"))
        status, data, _ = api.call("POST", f"/api/requests/{forwarded['id']}/replay",
                                   headers={"X-Moxiehook-Token": page_token(api)}, token=False)
        assert status == 200, data
        assert len(receiver.requests_to("/hooks/app?x=1")) == before + 1  # back to the app
        new = api.get(f"/api/requests/{data['id']}")
        assert (new["mode"], new["replay_of"]) == ("replay", forwarded["id"])
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_plain_listen_has_nothing_to_replay_to_and_keeps_huge_bodies_bounded(
        tmp_path: Path, config_path: Path) -> None:
    import httpx

    ready = tmp_path / "ready"
    process, url, _ = start_process(["--config", str(config_path), "listen", "--port", "0", "--quiet", "--ui",
                                     "--ui-port", "0", "--ready-file", str(ready)], tmp_path)
    try:
        listen_url = wait_ready(ready)
        api = api_at(url)
        huge = b'{"a": "' + b"x" * (3 << 20) + b'"}'
        httpx.post(listen_url + "/big", content=huge, timeout=30, headers={"X-Event-Type": "ClientCreate"})
        entry = api.wait_for(lambda found: len(found) == 1, "the huge request")[0]
        detail = api.get(f"/api/requests/{entry['id']}")
        assert detail["truncated"] is True and detail["body_size"] == len(huge)
        assert len(detail["body"]) <= 1 << 20 and detail["json"] is None and "bytes" in detail["json_error"]["message"]
        status, data, _ = api.call("POST", f"/api/requests/{entry['id']}/replay",
                                   headers={"X-Moxiehook-Token": page_token(api)}, token=False)
        assert status == 409 and "--forward-to" in data["error"]
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_listen_ui_refuses_a_remote_ui_host_unless_asked(cli) -> None:
    result = cli("listen", "--port", "0", "--ui", "--ui-host", "0.0.0.0")
    assert result.exit_code == 2 and "--allow-remote-ui" in result.stderr


def test_ten_thousand_requests_list_quickly_and_stay_capped() -> None:
    from moxiehook.inspect.store import MAX_ENTRIES, Entry, Store

    store = Store()
    for index in range(MAX_ENTRIES + 500):
        store.add(Entry(id=f"dlv_{index:06}", at="", method="POST", path="/", event="ClientCreate", mode="fire",
                        replay_of=None, status=200, app_status=None, duration_ms=None, auth_ok=None,
                        signature_ok=None, header_pairs={}, body='{"a": 1}', body_size=8, answer=None, url=None))
    assert len(store) == MAX_ENTRIES
    assert store.newest(1)[0].id == f"dlv_{MAX_ENTRIES + 499:06}"
    assert len(store.newest(MAX_ENTRIES, failed=True)) == MAX_ENTRIES  # all fail the ClientCreate schema


def test_the_docs_script_reads_the_token_and_replays(inspector: Api, receiver: Receiver) -> None:
    """The shell lines of docs/inspector.md, run as written (with the inspector's URL and an id)."""
    import shutil

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    docs = (Path(__file__).parent.parent / "docs" / "inspector.md").read_text()
    script = docs.split("```sh\nurl=http://127.0.0.1:8788\n")[1].split("```")[0]
    entry = inspector.get("/api/requests")["requests"][0]["id"]
    script = f"url=http://127.0.0.1:{inspector.port}\n" + script.replace("dlv_01J…", entry)
    before = len(receiver.requests)
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert '"requests"' in result.stdout and '"id"' in result.stdout.splitlines()[-1]
    assert len(receiver.requests) == before + 1


def test_a_hostile_record_id_cannot_break_out_of_the_pytest_export() -> None:
    import ast

    from moxiehook.inspect.analysis import parse_body, pytest_test

    text = pytest_test("Client\"Create", "{}", parse_body("{}"), "http://x/'", 'dlv_"""\nimport os\n#')
    tree = ast.parse(text)
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert imported == ["json"]
    assert [node.name for node in tree.body if isinstance(node, ast.FunctionDef)] == ["test_client_create_importos"]


@pytest.mark.parametrize("body", ['{"a": "\\ud800"}', "[" * 900 + "]" * 900, "[" * 5000 + "]" * 5000,
                                  '{"a": 1e999}', '"\u0000\u2028</script>"'])
def test_hostile_bodies_are_shown_and_compared_without_failing(inspector: Api, body: str) -> None:
    from moxiehook.inspect.store import Entry

    for entry_id in ("dlv_HOSTILE1", "dlv_HOSTILE2"):
        inspector.inspector.store.add(Entry(
            id=entry_id, at="", method="POST", path="/", event="ClientCreate", mode="listen", replay_of=None,
            status=204, app_status=None, duration_ms=None, auth_ok=None, signature_ok=None, header_pairs={},
            body=body, body_size=len(body.encode()), answer=None, url=None))
    detail = inspector.get("/api/requests/dlv_HOSTILE1")
    assert detail["body"] == body
    assert (detail["json"] is None) == (detail["json_error"] is not None)
    status, _, _ = inspector.call("GET", "/api/diff?a=dlv_HOSTILE1&b=dlv_HOSTILE2")
    assert status in (200, 422)
    assert inspector.get("/api/requests?failed=1")["requests"]
