"""Red team (second pass) of the inspector, aimed at bodies logged as text (``"body_format": "text"``).

Real parts only: ``moxiehook listen --forward-to`` (with and without ``--ui``) and ``moxiehook ui``
as real processes on 127.0.0.1, a real receiving app, the inspector's API over real HTTP, and the
page in a real headless Chromium where the page itself is what fails.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moxiehook.config import load_config
from moxiehook.inspect import InspectorConfig, ReplayTarget, start_inspector
from tests.conftest import Receiver, run_moxiehook
from tests.test_inspector import Api, start_process, wait_ready, write_config
from tests.test_inspector_browser import browser, page  # noqa: F401 - the browser fixtures
from tests.test_listen_hardening import post, raw_request
from tests.test_redteam_trust import _start_relay

LOG = "moxiehook-log.jsonl"


def _relay(tmp_path: Path, app: Receiver, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """Send ``body`` through a real ``listen --forward-to`` to ``app``; the record it logged."""
    relay, port = _start_relay(tmp_path, app.url(""))
    try:
        raw_request(port, post("/hook", body, {"X-Event-Type": "ClientCreate", **headers}))
    finally:
        relay.terminate()
        relay.communicate(timeout=10)
    return dict(json.loads((tmp_path / LOG).read_text().splitlines()[-1]))


@pytest.fixture
def app() -> Iterator[Receiver]:
    receiver = Receiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


# ---------------------------------------------------------------------------
# what replay sends


def test_replay_of_a_relayed_empty_body_sends_an_empty_body(tmp_path: Path, app: Receiver) -> None:
    """A sender posts a ping with no body (``Content-Length: 0``) through ``listen --forward-to``;
    the app gets zero bytes. ``moxiehook replay ID`` then sent the app the four bytes ``null`` as
    ``application/json`` (the log held the body as the JSON value null), and ``moxiehook ui``
    showed the body as ``null``. The replay should send what came: no body at all."""
    record = _relay(tmp_path, app, b"", {"Content-Type": "text/plain"})
    result = run_moxiehook("replay", record["id"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    first, replayed = app.requests_to("/hook")
    assert first.body == b""
    assert (replayed.body, replayed.headers["content-type"]) == (b"", "text/plain")


def test_replay_dry_run_never_writes_a_senders_control_characters_to_the_terminal(
        tmp_path: Path, app: Receiver) -> None:
    """A hostile sender posts a text body holding ``ESC[2J`` (clear screen), ``ESC]0;…`` (window
    title), CR and a right-to-left override through ``listen --forward-to``. ``replay ID --dry-run``
    printed that text as it is, so the terminal acted on it (cleared, retitled, a line overwritten)
    — since text bodies are no longer shown as JSON strings. ``logs show`` escapes them; the dry run
    should too: every control character shown as text, never acted on."""
    hostile = b"ok\x1b[2J\x1b]0;pwned\x07\rfake line\xe2\x80\xaeevil\x00"
    record = _relay(tmp_path, app, hostile, {"Content-Type": "text/plain"})
    result = run_moxiehook("replay", record["id"], "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    shown = result.stdout
    assert "ok" in shown and "fake line" in shown
    assert not any(ch in shown for ch in "\x1b\x07\r\x00\u202e"), repr(shown)


def test_replay_refuses_a_body_format_it_does_not_know(tmp_path: Path, app: Receiver) -> None:
    """A log line says ``"body_format": "gzip"`` (written by a newer moxiehook, or edited by hand).
    ``replay ID`` sent the app ``"aGVsbG8="`` — the text as a JSON string, quotes added — and said
    delivered: bytes the log never said were sent. It should refuse (exit 2, naming the format),
    send nothing, and leave the other records readable (``logs show`` still shows it)."""
    record = _relay(tmp_path, app, b"hello", {"Content-Type": "text/plain"})
    log = tmp_path / LOG
    record["request"]["body_format"] = "gzip"
    record["request"]["body"] = "aGVsbG8="
    log.write_text(json.dumps(record) + "\n")
    before = len(app.requests)
    result = run_moxiehook("replay", record["id"], cwd=tmp_path)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "gzip" in result.stderr and "Traceback" not in result.stderr
    failed = run_moxiehook("replay", "--failed", "--dry-run", "--json", cwd=tmp_path)
    assert "Traceback" not in failed.stderr
    assert len(app.requests) == before
    shown = run_moxiehook("logs", "show", record["id"], cwd=tmp_path)
    assert shown.returncode == 0 and "aGVsbG8=" in shown.stdout


def test_replay_of_a_relayed_body_that_is_not_utf8_sends_its_bytes(tmp_path: Path, app: Receiver) -> None:
    """A sender posts ``caf\\xe9`` as ``text/plain; charset=iso-8859-1`` (Latin-1, as older systems
    send) through ``listen --forward-to``; the app gets those four bytes. ``replay ID`` sent it
    ``caf\\xef\\xbf\\xbd`` (U+FFFD in place of the byte) with the same charset, so the app reads
    ``cafï¿½``: another event, said to be delivered, and signed afresh over the wrong bytes where the
    endpoint signs. The replay should send the bytes received."""
    sent = "caf\u00e9".encode("latin-1")
    record = _relay(tmp_path, app, sent, {"Content-Type": "text/plain; charset=iso-8859-1"})
    result = run_moxiehook("replay", record["id"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert record["request"]["body_format"] == "base64"
    replayed = json.loads((tmp_path / LOG).read_text().splitlines()[-1])
    result = run_moxiehook("replay", replayed["id"], cwd=tmp_path)  # the replay of the replay
    assert result.returncode == 0, result.stderr
    assert [r.body for r in app.requests_to("/hook")] == [sent, sent, sent]
    for line in (tmp_path / LOG).read_text().splitlines():
        json.loads(line)  # the log stays strict JSON
    shown = run_moxiehook("logs", "show", record["id"], cwd=tmp_path).stdout
    assert "caf\ufffd" in shown and "not UTF-8" in shown


# ---------------------------------------------------------------------------
# edit and replay through the API


@pytest.fixture
def inspector(cli, config_path: Path, receiver: Receiver) -> Iterator[Api]:
    write_config(config_path, receiver.url("/hook"))
    assert cli("fire", "ClientCreate").exit_code == 0
    running = start_inspector(InspectorConfig(
        target=ReplayTarget(config_path, lambda: load_config(config_path)),
        log_path=load_config(config_path).log_path(config_path), port=0, follow=True, follow_interval=0.05))
    try:
        yield Api(running)
    finally:
        running.stop()


def test_an_edited_json_body_with_a_lone_surrogate_is_refused_not_dropped(
        inspector: Api, receiver: Receiver) -> None:
    """Edit and replay with the body ``{"name": "\\ud800"}`` (what the page sends when the user
    resends a relayed body holding that escape: the browser reads it as JSON). The inspector closed
    the connection without an answer (an encoding error escaped the handler), so the page could only
    say "Failed to fetch". It should answer 400 naming the lone surrogate, send nothing, and serve
    the next request."""
    original = inspector.get("/api/requests")["requests"][0]["id"]
    before = len(receiver.requests)
    status, data, _ = inspector.call("POST", f"/api/requests/{original}/replay", raw=b'{"body": {"name": "\\ud800"}}',
                                     headers={"Content-Type": "application/json"})
    assert status == 400 and "surrogate" in data["error"], (status, data)
    assert len(receiver.requests) == before
    assert len(inspector.get("/api/requests")["requests"]) == 1


def test_an_edit_that_is_not_json_is_refused_with_a_readable_place(inspector: Api) -> None:
    """An edit whose body holds ``1e999`` as a value is refused (strict JSON). The page said
    ``replay refused: the edit is not JSON: {'message': 'the number 1e999 is too large…', 'line': 1,
    'column': 21}``: a Python dict. It should say what is wrong and where, in words."""
    original = inspector.get("/api/requests")["requests"][0]["id"]
    status, data, _ = inspector.call("POST", f"/api/requests/{original}/replay", raw=b'{"body": {"amount": 1e999}}',
                                     headers={"Content-Type": "application/json"})
    assert status == 400
    assert "1e999" in data["error"] and "line 1, column 21" in data["error"] and "{" not in data["error"], data


def test_the_pytest_export_of_a_text_body_sends_that_text(tmp_path: Path, app: Receiver) -> None:
    """A sender's malformed body ``{"name": "Acme",}`` was relayed; the user copies it as pytest to
    reproduce the app's failure in a test. The exported test said ``# not JSON: sent as text`` but
    fired ``BODY`` through ``moxie.fire(data=BODY)``, which sends the JSON string
    ``"{\\"name\\": \\"Acme\\",}"``: valid JSON, so the test passes where the app failed. The export
    should send the text that came, with its Content-Type (as Copy as curl does)."""
    sent = b'{"name": "Acme",}'
    record = _relay(tmp_path, app, sent, {"Content-Type": "application/json"})
    config_path = tmp_path / "moxiehook.toml"
    config_path.write_text(f'version = 1\n\n[settings]\nlog_file = "{LOG}"\n')
    running = start_inspector(InspectorConfig(
        target=ReplayTarget(config_path, lambda: load_config(config_path), forward_mode=True),
        log_path=tmp_path / LOG, port=0))
    try:
        exported = Api(running).get(f"/api/requests/{record['id']}/pytest")
    finally:
        running.stop()
    (tmp_path / "exported").mkdir()
    (tmp_path / "exported" / "test_exported.py").write_text(exported)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                             "-n0", "test_exported.py"], cwd=tmp_path / "exported", capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
    first, exported_request = app.requests_to("/hook")
    assert exported_request.body == sent
    assert exported_request.headers["content-type"] == "application/json"


def test_an_edited_text_body_goes_with_the_content_type_a_replay_would_send(tmp_path: Path, app: Receiver) -> None:
    """A sender posted ``ping`` with no Content-Type through ``listen --forward-to``. Replay sends it
    back as ``text/plain; charset=utf-8`` (the documented fallback); Edit and replay with the body
    changed to ``pong`` sent ``pong`` as ``application/json``, so the app parsed (and refused) a
    body it takes as text when replayed unedited. An edited text body should go with the
    Content-Type the replay of the original would."""
    record = _relay(tmp_path, app, b"ping", {})
    config_path = tmp_path / "moxiehook.toml"
    config_path.write_text(f'version = 1\n\n[settings]\nlog_file = "{LOG}"\n')
    running = start_inspector(InspectorConfig(
        target=ReplayTarget(config_path, lambda: load_config(config_path), forward_mode=True),
        log_path=tmp_path / LOG, port=0))
    try:
        api = Api(running)
        for edit in (None, {"body": "pong"}):
            status, data, _ = api.call("POST", f"/api/requests/{record['id']}/replay", body=edit)
            assert status == 200, data
    finally:
        running.stop()
    _, replayed, edited = app.requests_to("/hook")
    assert (replayed.body, edited.body) == (b"ping", b"pong")
    assert edited.headers["content-type"] == replayed.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("sent", [
    pytest.param("caf\u00e9".encode("latin-1"), id="not-utf8"),
    pytest.param(b"x" * (200 << 10), id="200KiB"),
])
def test_the_curl_export_sends_the_bytes_that_came(tmp_path: Path, app: Receiver, sent: bytes) -> None:
    """Copy as curl of a relayed body that is not UTF-8 (Latin-1 ``caf\\xe9``), or of 200 KiB. The
    first command sent ``caf\\xef\\xbf\\xbd`` (the U+FFFD the page shows), where Replay sends the
    bytes that came; the second could not run at all (``Argument list too long``: the body was one
    argument of curl, and Linux takes at most 128 KiB in one). The export should resend the bytes."""
    assert _run_curl_export(tmp_path, app, sent) == sent


def test_the_curl_export_of_a_body_over_1_mib_sends_all_of_it(tmp_path: Path, app: Receiver) -> None:
    """Copy as curl of a relayed body of 1 MiB and 8 bytes sends its first MiB (what the inspector
    keeps), where Replay sends all of it (read from the log). The export should send all of it."""
    sent = b"x" * (1 << 20) + b"-the-end"
    assert _run_curl_export(tmp_path, app, sent) == sent


def _run_curl_export(tmp_path: Path, app: Receiver, sent: bytes) -> bytes:
    """Relay ``sent``, copy the request as curl from the inspector, run it in ``sh``: what the app got."""
    import shutil

    if shutil.which("curl") is None:
        pytest.skip("no curl")
    record = _relay(tmp_path, app, sent, {"Content-Type": "text/plain"})
    config_path = tmp_path / "moxiehook.toml"
    config_path.write_text(f'version = 1\n\n[settings]\nlog_file = "{LOG}"\n')
    running = start_inspector(InspectorConfig(
        target=ReplayTarget(config_path, lambda: load_config(config_path), forward_mode=True),
        log_path=tmp_path / LOG, port=0))
    try:
        command = str(Api(running).get(f"/api/requests/{record['id']}/curl"))
    finally:
        running.stop()
    result = subprocess.run(["sh"], input=command.encode(), capture_output=True, timeout=60)  # as pasted
    assert result.returncode == 0, result.stderr[-500:]
    first, exported = app.requests_to("/hook")
    assert first.body == sent
    return exported.body


# ---------------------------------------------------------------------------
# memory


def test_the_inspector_holds_no_more_than_it_shows_of_huge_bodies(tmp_path: Path, app: Receiver) -> None:
    """Twelve 12 MiB text bodies were relayed (listen takes up to 16 MiB each). The inspector says
    it keeps a body up to 1 MiB, but over that log it held about 200 MB (``moxiehook ui`` grew to
    600 MB): each listed entry also held its whole log record, body included. It should hold what it
    shows (the first MiB of each), and read a record again from the log when it is replayed."""
    import gc
    import tracemalloc

    record = _relay(tmp_path, app, b"ok", {"Content-Type": "text/plain"})
    log = tmp_path / LOG
    with log.open("w") as out:
        for index in range(12):
            big = {**record, "id": f"{record['id'][:-3]}{index:03d}",
                   "request": {**record["request"], "body": f"{index:02d}" * (6 << 20)}}
            out.write(json.dumps(big) + "\n")
    config_path = tmp_path / "moxiehook.toml"
    config_path.write_text(f'version = 1\n\n[settings]\nlog_file = "{LOG}"\n')
    tracemalloc.start()
    try:
        running = start_inspector(InspectorConfig(
            target=ReplayTarget(config_path, lambda: load_config(config_path), forward_mode=True), log_path=log,
            port=0))
        try:
            gc.collect()
            held_mib = tracemalloc.get_traced_memory()[0] >> 20
            api = Api(running)
            listed = api.get("/api/requests")["requests"]
            assert len(listed) == 12
            assert held_mib < 64, f"{held_mib} MiB held for 12 MiB of shown bodies"
            # Replaying a listed huge body still sends all of it (read again from the log).
            status, data, _ = api.call("POST", f"/api/requests/{listed[0]['id']}/replay")
            assert status == 200, data
            assert app.requests[-1].body == b"11" * (6 << 20)
        finally:
            running.stop()
    finally:
        tracemalloc.stop()


# ---------------------------------------------------------------------------
# the page


@contextlib.contextmanager
def _relay_sent_through_the_page(browser_page: Any, tmp_path: Path, app: Receiver, sent: bytes,
                                 content_type: str) -> Iterator[None]:
    """A real ``listen --forward-to --ui`` relays ``sent`` to ``app``; the page opens its editor on it."""
    ready = tmp_path / "ready"
    process, url, _ = start_process(["listen", "--port", "0", "--quiet", "--forward-to", app.url(""), "--ui",
                                     "--ui-port", "0", "--ready-file", str(ready)], tmp_path)
    try:
        port = int(wait_ready(ready).rsplit(":", 1)[1])
        raw_request(port, post("/hook", sent, {"X-Event-Type": "ClientCreate", "Content-Type": content_type}))
        browser_page.goto(url)
        browser_page.wait_for_selector("body[data-live]")
        browser_page.click("#list-rows .row[data-id]")
        browser_page.wait_for_selector("#detail:not([hidden])")
        browser_page.click("#edit")
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_edit_and_replay_of_a_relayed_text_body_the_browser_reads_as_json(
        page: Any, tmp_path: Path, app: Receiver) -> None:  # noqa: F811 - the browser fixture
    """A sender posts ``{"amount": 1e999}`` through ``listen --forward-to --ui``: not JSON moxiehook
    can carry, so it is relayed, logged and replayed as text. In the page, Edit and replay, then Send
    without changing anything, was refused ("the edit is not JSON"): the browser reads 1e999 as
    Infinity, so the page sent it as a JSON value, which the API refuses. The plain Replay button
    works. An unchanged edit of a text body should resend that text, with its Content-Type."""
    sent = b'{"amount": 1e999}'
    with _relay_sent_through_the_page(page, tmp_path, app, sent, "application/json"):
        assert page.input_value("#edit-body") == sent.decode()
        page.click("#edit-send")
        page.wait_for_selector("#notice:has-text('replay')")
        assert "replayed as" in page.inner_text("#notice"), page.inner_text("#notice")
        first, replayed = app.requests_to("/hook")
        assert (replayed.body, replayed.headers["content-type"]) == (sent, "application/json")


@pytest.mark.parametrize("sent", [
    pytest.param(b"name=Acme\r\nplan=pro\r\n", id="crlf"),
    pytest.param(b"x" * (1 << 20) + b"-the-end", id="cut-at-1MiB"),
])
def test_an_edit_of_the_path_alone_resends_the_body_that_came(
        page: Any, tmp_path: Path, app: Receiver, sent: bytes) -> None:  # noqa: F811 - the browser fixture
    """Edit and replay, changing only the path, of a relayed text body. The page sent the body from
    its textarea: a browser's textarea turns CRLF into LF (``name=Acme\\nplan=pro\\n`` reached the
    app), and holds only the first MiB of a bigger body (the app got a body cut short, and the log
    says that is what was sent). A body left as it was should be resent as it came."""
    with _relay_sent_through_the_page(page, tmp_path, app, sent, "text/plain"):
        page.fill("#edit-path", "/edited")
        page.click("#edit-send")
        page.wait_for_selector("#notice:has-text('replayed as')")
        (edited,) = app.requests_to("/edited")
        assert edited.body == sent
