"""Red team: the inspector (``listen --ui``, ``moxiehook ui``) attacked as a hostile sender or page would.

Each test runs real parts: ``moxiehook listen --ui`` as a real process fed over real HTTP, or the
inspector over a log that real ``fire`` runs wrote to a real loopback receiver.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moxiehook.config import load_config
from moxiehook.inspect import InspectorConfig, ReplayTarget, start_inspector
from tests.conftest import Answer, Receiver
from tests.test_inspector import Api, api_at, start_process, wait_ready, write_config


class PlainListen:
    """``moxiehook listen --ui`` (no forwarding) as a real process: send to it, read its inspector."""

    def __init__(self, tmp_path: Path) -> None:
        ready = tmp_path / "ready"
        self.process, url, self.lines = start_process(
            ["listen", "--port", "0", "--quiet", "--ui", "--ui-port", "0", "--ready-file", str(ready)], tmp_path)
        self.listen_url = wait_ready(ready)
        self.api = api_at(url)

    def send(self, body: bytes, path: str = "/hook", event: str = "ClientCreate") -> dict[str, Any]:
        """POST ``body`` to listen; the inspector's detail of it once listed."""
        import httpx

        before = {entry["id"] for entry in self.api.get("/api/requests")["requests"]}
        httpx.post(self.listen_url + path, content=body, headers={"X-Event-Type": event}, timeout=10)
        found = self.api.wait_for(lambda found: any(entry["id"] not in before for entry in found), "the request")
        new = next(entry for entry in found if entry["id"] not in before)
        return dict(self.api.get(f"/api/requests/{new['id']}"))

    def token(self) -> str:
        _, html, _ = self.api.call("GET", "/")
        return str(html).split('name="moxiehook-token" content="')[1].split('"')[0]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture
def plain_listen(tmp_path: Path) -> Iterator[PlainListen]:
    running = PlainListen(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def test_a_body_with_a_huge_integer_does_not_take_the_list_down(plain_listen: PlainListen) -> None:
    """A sender posts ``{"a": 111…1}`` with 5,000 digits (valid RFC 8259 JSON; Python's int() refuses
    to read more than 4,300 digits). The user saw the whole page die: every ``GET /api/requests``
    was cut off without an answer ("cannot load the list"), for every request, until a restart.
    They should see the list, and the request marked not-JSON-readable at the number's place."""
    digits = "1" * 5000
    detail = plain_listen.send(b'{"ok": 1}')
    assert detail["json"] == {"ok": 1}
    detail = plain_listen.send(('{\n  "a": ' + digits + "\n}").encode())
    assert detail["json"] is None
    assert (detail["json_error"]["line"], detail["json_error"]["column"]) == (2, 8)
    assert len(plain_listen.api.get("/api/requests")["requests"]) == 2
    assert len(plain_listen.api.get("/api/requests?q=11111")["requests"]) == 1


@pytest.mark.parametrize(("body", "line", "column"), [
    ('{"note": "NaN", "value": NaN}', 1, 26),
    ('{"label": "1e999",\n "amount": 1e999}', 2, 12),
    ('{"a": "-Infinity", "b": -Infinity}', 1, 25),
    ('{"a": 21e999}', 1, 7),
])
def test_a_non_finite_number_is_located_where_it_is_not_where_its_text_first_appears(
        plain_listen: PlainListen, body: str, line: int, column: int) -> None:
    """A body holds the word ``NaN`` (or ``1e999``) inside a string and then as a bare value. The
    user saw the error caret under the string ``"NaN"``, a field that is fine; they should see it
    under the bare value, as a JSON parser reports it."""
    detail = plain_listen.send(body.encode())
    assert detail["json"] is None
    assert (detail["json_error"]["line"], detail["json_error"]["column"]) == (line, column), detail["json_error"]


@pytest.fixture
def cookie_log(cli, config_path: Path, receiver: Receiver) -> Path:
    """A log whose one delivery was answered with a session cookie."""
    receiver.default = Answer(status=200, headers={"Set-Cookie": "session=SESSION-SECRET-42; HttpOnly"})
    write_config(config_path, receiver.url("/hook"))
    assert cli("fire", "ClientCreate").exit_code == 0
    return config_path


def test_moxiehook_ui_masks_the_cookie_an_app_answered_with(cookie_log: Path) -> None:
    """The app answered a delivery with ``Set-Cookie: session=…``. ``listen --forward-to --ui`` shows
    that header as ``***``, but ``moxiehook ui`` over the log (and the same forward after a restart)
    showed the session cookie in clear in the answer's headers. It should be ``***`` there too."""
    config = load_config(cookie_log)
    running = start_inspector(InspectorConfig(
        target=ReplayTarget(cookie_log, lambda: load_config(cookie_log)), log_path=config.log_path(cookie_log),
        port=0))
    try:
        api = Api(running)
        (entry,) = api.get("/api/requests")["requests"]
        detail = api.get(f"/api/requests/{entry['id']}")
        assert "SESSION-SECRET-42" not in json.dumps(detail)
        assert {name.lower(): value for name, value in detail["answer"]["headers"].items()}["set-cookie"] == "***"
    finally:
        running.stop()


# ---------------------------------------------------------------------------
# the page, in a real headless Chromium

from tests.test_inspector_browser import browser, page  # noqa: E402,F401 - the browser fixtures

BIG_ID = "12345678901234567890"  # more digits than a JavaScript number holds exactly


@pytest.fixture
def big_numbers(cli, config_path: Path, receiver: Receiver) -> Iterator[Any]:
    """The inspector over a log holding one delivery whose body has an id of 20 digits."""
    from moxiehook import catalog

    write_config(config_path, receiver.url("/hook"))
    body = json.dumps({**catalog.sample("ClientCreate"), "legacyId": 1})
    body = body.replace('"legacyId": 1', f'"legacyId": {BIG_ID}')
    (config_path.parent / "big.json").write_text(body)
    assert cli("fire", "ClientCreate", "--data", str(config_path.parent / "big.json")).exit_code == 0
    running = start_inspector(InspectorConfig(
        target=ReplayTarget(config_path, lambda: load_config(config_path)),
        log_path=load_config(config_path).log_path(config_path), port=0, follow=True,
        follow_interval=0.05, keepalive_s=0.5))
    try:
        yield running
    finally:
        running.stop()


def test_the_page_shows_downloads_and_replays_a_big_integer_exactly(
        page: Any, big_numbers: Any, receiver: Receiver) -> None:  # noqa: F811 - the browser fixture
    """A body carries ``"legacyId": 12345678901234567890``. The page showed 12345678901234567000 (its
    JavaScript number), the downloaded ``--data`` file said 12345678901234567000, and an edit-and-replay
    that changed only the path sent the app 12345678901234567000: another id. The user should see,
    download and resend the digits that arrived."""
    entry = big_numbers.store.newest(1)[0].id
    page.goto(big_numbers.url)
    page.wait_for_selector("body[data-live]")
    page.click(f'#list-rows .row[data-id="{entry}"]')
    page.wait_for_selector(f'#detail[data-id="{entry}"] #body .ln')
    assert f'"legacyId": {BIG_ID}' in page.inner_text("#body")
    with page.expect_download() as download:
        page.click("#download")
    assert f'"legacyId": {BIG_ID}' in Path(download.value.path()).read_text()
    page.click("#edit")
    assert f'"legacyId": {BIG_ID}' in page.input_value("#edit-body")
    page.fill("#edit-path", "/hook2")
    page.click("#edit-send")
    page.wait_for_selector("#notice:has-text('replayed as')")
    (sent,) = receiver.requests_to("/hook2")
    assert f'"legacyId":{BIG_ID}'.encode() in sent.body.replace(b" ", b"")


def test_a_double_click_on_replay_resends_once(
        page: Any, big_numbers: Any, receiver: Receiver) -> None:  # noqa: F811 - the browser fixture
    """A user double-clicks Replay (or clicks again because the app is slow). Each click sent the
    webhook again: two deliveries of one event to the app. A replay in flight should take no second
    click: one click, one replay."""
    entry = big_numbers.store.newest(1)[0].id
    page.goto(big_numbers.url)
    page.wait_for_selector("body[data-live]")
    page.click(f'#list-rows .row[data-id="{entry}"]')
    page.wait_for_selector(f'#detail[data-id="{entry}"]')
    # Count the page's replay calls as it makes them (fetch is called synchronously by the click handler).
    page.evaluate("""() => { window.__replays = 0; const original = window.fetch;
        window.fetch = (url, init) => { if (String(url).endsWith('/replay')) window.__replays++;
                                        return original(url, init); }; }""")
    page.dblclick("#replay")
    page.wait_for_selector("#notice:has-text('replayed as')")
    assert page.evaluate("window.__replays") == 1


def test_an_absolute_form_request_for_another_host_is_refused(plain_listen: PlainListen) -> None:
    """``GET http://rebound.example/api/requests`` with ``Host: 127.0.0.1:PORT``: HTTP/1.1 says the
    host a request is for is then the one in its target (the Host header is ignored), so this is a
    request for another name, as a rebinding page's would be. The inspector answered it with the list;
    it should refuse it (403) like any request that does not name the inspector's own address."""
    plain_listen.send(b'{"a": 1}')
    status, _, _ = plain_listen.api.call("GET", "http://rebound.example/api/requests")
    assert status == 403
    status, _, _ = plain_listen.api.call("GET", f"http://127.0.0.1:{plain_listen.api.port}/api/requests")
    assert status == 200


def test_a_refused_edit_does_not_spoil_the_next_request_on_the_same_connection(plain_listen: PlainListen) -> None:
    """The user edits and replays a request that is no longer in the list (cleared, or pushed out by
    10,000 newer ones): 404, as it should be. But the edit's body was left unread on the connection
    the browser keeps open, so the page's next request on it (opening another request, reloading the
    list) was read as that JSON followed by the request, and answered 400 with an HTML error page.
    A refused request must not affect the next one."""
    import http.client

    plain_listen.send(b'{"a": 1}')
    api = plain_listen.api
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
    try:
        edit = json.dumps({"path": "/x", "body": {"a": 1}})
        connection.request("POST", "/api/requests/dlv_GONE/replay", body=edit, headers={
            "Host": api.host, "X-Moxiehook-Token": plain_listen.token(), "Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        assert response.status == 404
        if response.getheader("Connection", "").lower() == "close":  # the server may end it instead
            connection.close()
        connection.request("GET", "/api/requests", headers={"Host": api.host})
        response = connection.getresponse()
        assert response.status == 200
        assert len(json.loads(response.read())["requests"]) == 1
    finally:
        connection.close()


def test_the_page_goes_live_once_a_stream_slot_frees(page: Any, big_numbers: Any) -> None:  # noqa: F811
    """Streams are capped (32); closed tabs keep theirs until the next keep-alive notices, so a page
    loaded while all are taken is answered 503. The page said "reconnecting" for ever over an empty
    list (it loads the list when its stream opens): an EventSource refused with a status is never
    retried, so it showed nothing until the user reloaded. It should go live, with the list, by
    itself once a slot is free."""
    import socket

    from moxiehook.inspect.app import MAX_STREAMS

    held = []
    try:
        for _ in range(MAX_STREAMS):
            sock = socket.create_connection(("127.0.0.1", big_numbers.port))
            sock.sendall(f"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1:{big_numbers.port}\r\n\r\n".encode())
            assert b" 200 " in sock.recv(64)  # this slot is taken
            held.append(sock)
        page.goto(big_numbers.url)
        page.wait_for_selector("#live-mark:has-text('reconnecting')")  # the stream was refused
        assert page.get_attribute("body", "data-live") is None
    finally:
        for sock in held:
            sock.close()  # the slots free at the streams' next keep-alive (0.5 s here)
    page.wait_for_selector("body[data-live]")
    page.wait_for_selector("#list-rows .row[data-id]")


def test_a_head_request_is_answered_without_a_body(plain_listen: PlainListen) -> None:
    """``HEAD /`` (a link checker, ``curl -I``) is refused with 405, but the refusal's JSON body was
    sent too, which a HEAD answer never carries (RFC 9110): a client reading the next answer on that
    connection starts in those bytes. A HEAD answer should be headers only."""
    import socket

    api = plain_listen.api
    with socket.create_connection(("127.0.0.1", api.port), timeout=30) as sock:
        sock.sendall(f"HEAD / HTTP/1.1\r\nHost: {api.host}\r\n\r\n"
                     f"GET /api/requests HTTP/1.1\r\nHost: {api.host}\r\nConnection: close\r\n\r\n".encode())
        received = b""
        while chunk := sock.recv(65536):  # bounded: the server closes after the second answer
            received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405 ")
    assert rest.startswith(b"HTTP/1.1 200 "), rest[:80]


def test_a_wildcard_inspector_answers_at_the_machines_address_but_never_to_a_name(
        logged_once: Path, tmp_path: Path) -> None:
    """``moxiehook ui --host 0.0.0.0 --allow-remote-ui``, opened from another machine at
    ``http://192.0.2.2:PORT/``: every request was 403, because only loopback names and the literal
    ``0.0.0.0`` counted as its own Host, so the option served nothing to anyone remote. An address
    (an IP literal) is the inspector's own when it listens on all of them; a name still is not,
    since that is what a rebinding page sends."""
    process, url, _ = start_process(["--config", str(logged_once), "ui", "--port", "0", "--host", "0.0.0.0",
                                     "--allow-remote-ui"], tmp_path)
    try:
        api = api_at(url)
        remote = f"192.0.2.2:{api.port}"
        status, html, _ = api.call("GET", "/", headers={"Host": remote})
        assert status == 200
        token = str(html).split('name="moxiehook-token" content="')[1].split('"')[0]
        status, _, _ = api.call("DELETE", "/api/requests", token=False, headers={
            "Host": remote, "Origin": f"http://{remote}", "X-Moxiehook-Token": token})
        assert status == 200
        for name in (f"rebind.example:{api.port}", f"192.0.2.2.nip.io:{api.port}", "192.0.2.2:1"):
            assert api.call("GET", "/api/requests", headers={"Host": name})[0] == 403
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def logged_once(cli, config_path: Path, receiver: Receiver) -> Path:
    write_config(config_path, receiver.url("/hook"))
    assert cli("fire", "ClientCreate").exit_code == 0
    return config_path
