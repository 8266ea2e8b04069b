"""The inspector's page in a real headless Firefox (Debian's ``firefox-esr``, over WebDriver BiDi).

The page must work in current Chromium and Firefox; tests/test_inspector_browser.py covers it in
Chromium, this file in Firefox: a real ``listen --ui`` process, requests sent to its receiver over
HTTP, the page following them live, a request opened with its schema error at its field; then, in
forward mode, the list scrolled, filtered, a request edited and replayed to the app, copied and
downloaded; and another site's page, then a DNS-rebinding name, changing and reading nothing.
The page tests also assert that the page reported no error (script, console or CSP).
tests/firefox.py explains why Firefox is driven over its own BiDi port rather than by Playwright.

Skipped, saying why, only when no Firefox is installed (``.ci/run`` installs it:
``apt-get install -y firefox-esr``); under CI (``CI`` set) a missing Firefox fails instead.
Set ``MOXIEHOOK_SCREENSHOTS=DIR`` to save the screenshot.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from moxiehook import catalog
from tests import test_inspector
from tests.conftest import Receiver
from tests.firefox import Firefox, Tab, find_firefox
from tests.test_inspector import TOKEN_VALUE, api_at, page_token, start_process, wait_ready

logged = test_inspector.logged  # the fixture: a config whose log holds two fires, one failing its schema

# Resolved at import: the tests run in their own temporary folders.
SCREENSHOTS = Path(os.environ["MOXIEHOOK_SCREENSHOTS"]).resolve() if os.environ.get("MOXIEHOOK_SCREENSHOTS") else None
TOKEN = "tok-firefox-123456789"


@pytest.fixture(scope="module")
def firefox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firefox]:
    executable = find_firefox()
    if executable is None:
        if os.environ.get("CI"):  # set by every hosted CI, where .ci/run has installed it: missing is a failure
            pytest.fail("no Firefox installed in CI: .ci/run installs it with apt-get install -y firefox-esr")
        pytest.skip("no Firefox installed (apt-get install -y firefox-esr)")
    browser = Firefox(executable, tmp_path_factory.mktemp("firefox-profile"))
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def tab(firefox: Firefox) -> Iterator[Tab]:
    tab = firefox.new_tab(1280, 800)
    try:
        yield tab
    finally:
        tab.close()


def row_ids(tab: Tab) -> list[str]:
    ids = tab.evaluate("[...document.querySelectorAll('#list-rows .row[data-id]')].map(r => r.dataset.id)")
    assert isinstance(ids, list)
    return ids


def test_firefox_follows_listen_live_and_shows_a_schema_error_at_its_field(
        tab: Tab, tmp_path: Path, config_path: Path) -> None:
    ready = tmp_path / "ready"
    process, url, _ = start_process(
        ["--config", str(config_path), "listen", "--port", "0", "--quiet", "--auth", "bearer", "--token", TOKEN,
         "--ui", "--ui-port", "0", "--ready-file", str(ready)], tmp_path)
    try:
        hooks = wait_ready(ready) + "/hooks"
        api = api_at(url)

        def send(body: dict[str, object], count: int) -> str:
            answer = httpx.post(hooks, content=json.dumps(body).encode(), timeout=10, headers={
                "Authorization": f"Bearer {TOKEN}", "X-Event-Type": "ClientCreate",
                "Content-Type": "application/json"})
            assert answer.status_code < 300
            return str(api.wait_for(lambda found: len(found) == count, f"request {count}")[0]["id"])

        good = send(catalog.sample("ClientCreate"), 1)
        tab.goto(url)
        tab.wait_for_selector("body[data-live]")
        tab.wait_for("document.querySelectorAll('#list-rows .row[data-id]').length === 1", "the first row")
        assert row_ids(tab) == [good]
        tab.evaluate("window.__notReloaded = true")

        bad = send({**catalog.sample("ClientCreate"), "name": 5, "extraField": 1}, 2)
        tab.wait_for("document.querySelectorAll('#list-rows .row[data-id]').length === 2", "the second row, live")
        assert row_ids(tab) == [bad, good]  # newest on top
        assert tab.evaluate("window.__notReloaded") is True
        assert "✗" in tab.text(f'#list-rows .row[data-id="{bad}"]')  # its schema mark

        tab.click(f'#list-rows .row[data-id="{bad}"]')
        tab.wait_for_selector(f'#detail[data-id="{bad}"]')
        assert "1 error(s)" in tab.text("#schema")
        # The error note comes right after the line of the field it concerns, and is drawn there.
        note = '#body .schema-error[data-pointer="/name"]'
        tab.wait_for_selector(note)
        line = tab.evaluate(f"(n => [n.previousElementSibling.dataset.pointer, n.previousElementSibling.textContent])"
                            f"(document.querySelector({json.dumps(note)}))")
        assert line[0] == "/name" and '"name": 5' in line[1]
        assert tab.evaluate(f"(n => n.getBoundingClientRect().height > 0)(document.querySelector({json.dumps(note)}))")
        assert tab.evaluate("!!document.querySelector('#body .drift-note[data-pointer=\"/extraField\"]')")
        headers = tab.text("#headers")
        assert "Authorization\t***" in headers
        assert TOKEN not in tab.evaluate("document.documentElement.outerHTML")
        assert tab.errors() == []  # no uncaught error, console error or CSP refusal on the way
        if SCREENSHOTS:
            tab.screenshot(SCREENSHOTS / "inspector-firefox.png")

        # A phone's width: the panes stack, nothing is wider than the window, the path keeps a column.
        tab.resize(390, 800)
        tab.wait_for("getComputedStyle(document.querySelector('main')).flexDirection === 'column'", "the panes stacked")
        assert tab.evaluate("document.scrollingElement.scrollWidth") == 390
        assert tab.evaluate(f"document.querySelector('#list-rows .row[data-id=\"{bad}\"] > :nth-child(3)')"
                            ".getBoundingClientRect().width") >= 60
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_firefox_scrolls_filters_and_edits_and_replays_to_a_real_app(
        firefox: Firefox, logged: Path, receiver: Receiver, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    process, url, _ = start_process(["--config", str(logged), "listen", "--port", "0", "--forward-to",
                                     receiver.url(""), "--ui", "--ui-port", "0", "--ready-file", str(ready)], tmp_path)
    tab = firefox.new_tab(1100, 420)  # a short window: the list must scroll inside itself
    try:
        listen_url = wait_ready(ready)
        api = api_at(url)
        tab.goto(url)
        tab.wait_for_selector("body[data-live]")
        tab.wait_for("document.getElementById('count').textContent === '2 shown'", "the log's history")

        with httpx.Client(timeout=10) as client:
            for number in range(40):
                client.post(f"{listen_url}/hooks/app?n={number}", json=catalog.sample("ClientCreate"),
                            headers={"X-Event-Type": "ClientCreate"})
        tab.wait_for("document.getElementById('count').textContent === '42 shown'", "40 requests, live")
        # The list scrolls inside its pane; the page itself does not grow.
        assert tab.evaluate("(l => l.scrollHeight > l.clientHeight)(document.getElementById('list'))")
        assert tab.evaluate("document.scrollingElement.scrollHeight <= window.innerHeight")
        oldest = api.get("/api/requests")["requests"][-1]["id"]
        assert f'"{oldest}"' not in tab.evaluate("document.getElementById('list-rows').innerHTML")
        tab.wheel("#list", 2000)
        tab.wait_for_selector(f'#list-rows .row[data-id="{oldest}"]')  # drawn once scrolled into view
        tab.wheel("#list", -2000)

        tab.click("#filter-failed")
        tab.wait_for("document.getElementById('count').textContent === '1 shown'", "failures only")
        failed = row_ids(tab)[0]
        tab.click(f'#list-rows .row[data-id="{failed}"]')
        tab.wait_for_selector(f'#detail[data-id="{failed}"]')
        tab.click("#diff-sample")
        tab.wait_for("!document.getElementById('diff').hidden", "the diff with the sample")
        assert "change(s)" in tab.text("#diff-title")

        tab.click("#edit")
        tab.wait_for("!document.getElementById('editor').hidden", "the editor")
        tab.type("#edit-path", "/hooks/edited")
        tab.type("#edit-body", '{"name": "Edited in Firefox"}')
        before = len(receiver.requests_to("/hooks/edited"))
        tab.click("#edit-send")
        tab.wait_for("document.getElementById('notice').textContent.startsWith('replayed as')", "the replay")
        edited = receiver.requests_to("/hooks/edited")
        assert len(edited) == before + 1 and edited[-1].json() == {"name": "Edited in Firefox"}
        assert edited[-1].headers["authorization"] == f"Bearer {TOKEN_VALUE}"  # the credential kept, not shown
        newest = api.get("/api/requests?limit=1")["requests"][0]
        assert (newest["mode"], newest["replay_of"]) == ("replay", failed)

        tab.click("#copy-curl")
        tab.wait_for("document.getElementById('notice').textContent === 'copied as curl'", "the clipboard")
        assert "\ncurl -X POST http://127.0.0.1:" in tab.text("#export-text")

        # Download body: a file for fire --data, the body as the page shows it (the edited one, pretty).
        tab.click("#download")
        saved = firefox.downloads / f"ClientCreate-{newest['id']}.json"
        deadline = time.monotonic() + 20
        while not (saved.exists() and saved.stat().st_size) and time.monotonic() < deadline:  # bounded
            time.sleep(0.05)
        assert json.loads(saved.read_text()) == {"name": "Edited in Firefox"}
        assert tab.errors() == []
    finally:
        tab.close()
        process.terminate()
        process.wait(timeout=30)


class _OtherSite(BaseHTTPRequestHandler):
    """Another origin on this machine whose page tries to clear, replay and read through the inspector."""

    script = ""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        body = f"<!doctype html><title>other site</title><script>{self.script}</script>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_firefox_lets_no_other_site_or_rebound_name_change_or_read_anything(
        tab: Tab, tmp_path: Path, config_path: Path, receiver: Receiver) -> None:
    ready = tmp_path / "ready"
    process, url, _ = start_process(["--config", str(config_path), "listen", "--port", "0", "--quiet", "--forward-to",
                                     receiver.url(""), "--ui", "--ui-port", "0", "--ready-file", str(ready)], tmp_path)
    other = ThreadingHTTPServer(("127.0.0.1", 0), _OtherSite)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        httpx.post(wait_ready(ready) + "/hooks", json={"a": 1}, timeout=10)
        api = api_at(url)
        entry = api.wait_for(lambda found: len(found) == 1, "the forwarded request")[0]["id"]
        sent_to_app = len(receiver.requests)
        base = url.rstrip("/")
        # Firefox decides what reaches the inspector: simple requests go out (a POST without a body would
        # resend the original), a DELETE or a guessed token needs a preflight, reading needs CORS.
        _OtherSite.script = f"""
        const tries = [
          fetch("{base}/api/requests", {{method: "DELETE", mode: "no-cors"}}),
          fetch("{base}/api/requests/{entry}/replay", {{method: "POST", mode: "no-cors"}}),
          fetch("{base}/api/requests/{entry}/replay", {{method: "POST", mode: "no-cors", body: "{{}}",
                headers: {{"Content-Type": "text/plain"}}}}),
          fetch("{base}/api/requests", {{method: "DELETE", headers: {{"X-Moxiehook-Token": "guessed"}}}}),
          fetch("{base}/api/requests").then(r => r.text()),
        ];
        Promise.allSettled(tries).then(all => {{ window.results = all.map(r => r.status); }});
        """
        tab.goto(f"http://127.0.0.1:{other.server_address[1]}/")
        results = tab.wait_for("window.results", "the other site's tries")
        assert results[4] == "rejected"  # it could not read the list
        assert [summary["id"] for summary in api.get("/api/requests")["requests"]] == [entry]  # nor clear it
        assert len(receiver.requests) == sent_to_app  # nor resend it to the app

        # A DNS-rebinding name (Firefox resolves rebind.test to this machine): Host is that name, so the
        # inspector answers 403, without its page or its token (Firefox shows the error in its JSON viewer).
        tab.goto(f"http://rebind.test:{api.port}/")
        assert "answers only to its own address" in tab.evaluate("document.body.innerText")
        assert page_token(api) not in tab.evaluate("document.documentElement.outerHTML")
        assert [summary["id"] for summary in api.get("/api/requests")["requests"]] == [entry]
    finally:
        other.shutdown()
        process.terminate()
        process.wait(timeout=30)
