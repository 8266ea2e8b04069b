"""The inspector's page in a real headless Chromium (Playwright driving Debian's ``chromium``).

Skipped, saying why, when Playwright or ``/usr/bin/chromium`` is missing (``.ci/run`` installs
them: ``apt-get install -y chromium`` and ``pip install playwright``). The browser is started with
``--host-resolver-rules`` mapping ``rebind.test`` to 127.0.0.1: a real DNS-rebinding page, whose
name resolves to the inspector's address, so the Host check is tested as a browser meets it.

Set ``MOXIEHOOK_SCREENSHOTS=DIR`` to save the screenshots that docs/inspector.md shows.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from moxiehook.config import load_config
from moxiehook.inspect import InspectorConfig, ReplayTarget, RunningInspector, start_inspector
from tests.conftest import Receiver
from tests.test_inspector import write_config

CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 20_000
SCREENSHOTS = os.environ.get("MOXIEHOOK_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--host-resolver-rules=MAP rebind.test 127.0.0.1"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def inspector(cli, config_path: Path, receiver: Receiver) -> Iterator[RunningInspector]:
    write_config(config_path, receiver.url("/hook"))
    from moxiehook import catalog

    bad = {**catalog.sample("ClientCreate"), "name": 5, "extraField": 1}
    (config_path.parent / "bad.json").write_text(json.dumps(bad))
    assert cli("fire", "ClientCreate").exit_code == 0
    assert cli("fire", "ClientCreate", "--data", str(config_path.parent / "bad.json")).exit_code == 0
    running = start_inspector(InspectorConfig(
        target=ReplayTarget(config_path, lambda: load_config(config_path)),
        log_path=load_config(config_path).log_path(config_path), port=0, follow=True, follow_interval=0.05))
    try:
        yield running
    finally:
        running.stop()


def shot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / f"inspector-{name}.png"))


def wait_rows(page: Any, count: int) -> None:
    """Wait until the list shows ``count`` rows (a selector: the page's CSP forbids evaluated predicates)."""
    page.wait_for_selector(f"#list-rows .row[data-id]:nth-child({count})")
    page.wait_for_selector(f"#list-rows .row[data-id]:nth-child({count + 1})", state="detached")


def rows(page: Any) -> list[str]:
    return page.eval_on_selector_all("#list-rows .row[data-id]", "rows => rows.map(r => r.dataset.id)")


def test_the_list_updates_live_without_a_reload(page: Any, inspector: RunningInspector, cli) -> None:
    page.goto(inspector.url)
    page.wait_for_selector("body[data-live]")
    wait_rows(page, 2)
    page.evaluate("window.__notReloaded = true")
    assert cli("fire", "ClientCreate").exit_code == 0
    wait_rows(page, 3)
    assert page.evaluate("window.__notReloaded") is True
    newest = inspector.store.newest(1)[0].id
    assert rows(page)[0] == newest  # newest on top
    shot(page, "list")


def test_opening_a_request_shows_headers_masked_and_schema_errors_at_their_field(
        page: Any, inspector: RunningInspector) -> None:
    page.goto(inspector.url)
    page.wait_for_selector("body[data-live]")
    bad = inspector.store.newest(1)[0].id
    page.click(f'#list-rows .row[data-id="{bad}"]')
    page.wait_for_selector(f'#detail[data-id="{bad}"]')
    headers = page.inner_text("#headers")
    assert "Authorization\t***" in headers and "s3cret" not in page.content()
    # The error note comes right after the line of the field it concerns.
    note = page.wait_for_selector('#body .schema-error[data-pointer="/name"]')
    assert note.evaluate("n => n.previousElementSibling.dataset.pointer") == "/name"
    assert '"name": 5' in note.evaluate("n => n.previousElementSibling.textContent")
    assert page.is_visible('#body .drift-note[data-pointer="/extraField"]')
    assert "1 error(s)" in page.inner_text("#schema")
    shot(page, "detail")


def test_a_body_from_the_network_is_never_html(page: Any, inspector: RunningInspector, cli,
                                                config_path: Path) -> None:
    hostile = {"name": "<img src=x onerror=window.__pwned=1>", "x": "</pre><script>window.__pwned=2</script>"}
    (config_path.parent / "hostile.json").write_text(json.dumps(hostile))
    assert cli("fire", "ClientCreate", "--data", str(config_path.parent / "hostile.json")).exit_code == 0
    page.goto(inspector.url)
    page.wait_for_selector("body[data-live]")
    wait_rows(page, 3)
    page.click("#list-rows .row[data-id]")
    page.wait_for_selector("#body .ln")
    assert "<img src=x" in page.inner_text("#body")
    assert page.evaluate("window.__pwned") is None
    assert page.query_selector("#body img") is None


def test_a_json_syntax_error_is_shown_at_its_position(page: Any, inspector: RunningInspector) -> None:
    from moxiehook.inspect.store import Entry

    inspector.store.add(Entry(id="dlv_BROKENJSON", at="2026-01-01T00:00:00.000Z", method="POST", path="/x",
                              event="ClientCreate", mode="listen", replay_of=None, status=204, app_status=None,
                              duration_ms=None, auth_ok=None, signature_ok=None, header_pairs={},
                              body='{\n  "a": 1,\n  "b": \n}', body_size=20, answer=None, url=None))
    page.goto(inspector.url)
    page.wait_for_selector("body[data-live]")
    page.click('#list-rows .row[data-id="dlv_BROKENJSON"]')
    assert "line 4, column 1" in page.wait_for_selector("#json-error").inner_text()
    assert page.inner_text("#body .ln.err") == "}"


def test_edit_and_replay_reaches_a_real_flask_app(page: Any, cli, config_path: Path) -> None:
    from flask import Flask, request
    from werkzeug.serving import make_server

    app = Flask("receiver")
    received: list[dict[str, Any]] = []
    raw: list[bytes] = []

    @app.post("/hooks/<name>")
    def hook(name: str) -> Any:
        received.append({"path": request.path, "json": request.get_json(silent=True),
                         "auth": request.headers.get("Authorization")})
        raw.append(request.get_data())
        return {"ok": True}, 200

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    write_config(config_path, f"http://127.0.0.1:{server.server_port}/hooks/clients")
    assert cli("fire", "ClientCreate").exit_code == 0
    running = start_inspector(InspectorConfig(
        target=ReplayTarget(config_path, lambda: load_config(config_path)),
        log_path=load_config(config_path).log_path(config_path), port=0, follow=True, follow_interval=0.05))
    try:
        page.goto(running.url)
        page.wait_for_selector("body[data-live]")
        page.click("#list-rows .row[data-id]")
        page.wait_for_selector("#detail:not([hidden])")
        page.click("#edit")
        page.fill("#edit-path", "/hooks/edited")
        page.fill("#edit-body", '{"name": "Edited in the browser"}')
        shot(page, "edit")
        page.click("#edit-send")
        wait_rows(page, 2)
        page.wait_for_selector("#notice:has-text('replayed as')")
        assert received[-1] == {"path": "/hooks/edited", "json": {"name": "Edited in the browser"},
                                "auth": "Bearer s3cret-bearer-token-xyz"}
        newest = running.store.newest(1)[0]
        assert (newest.mode, newest.replay_of) == ("replay", running.store.newest(2)[1].id)
        # Typed text that is not JSON, and a JSON string: each sent as the very text typed.
        for typed in ('{"name": ', '"just a string"'):
            page.click("#edit")
            page.fill("#edit-body", typed)
            expected = len(raw) + 1
            page.click("#edit-send")
            wait_rows(page, expected)
            # The page opens the replay once it is answered, closing the editor: wait for that before the
            # next click on Edit (the row can come through the stream first).
            page.wait_for_selector(f"#notice:has-text('replayed as {rows(page)[0]}')")
            assert raw[-1] == typed.encode()
    finally:
        running.stop()
        server.shutdown()


class _EvilPage(BaseHTTPRequestHandler):
    """Another origin on this machine: its page tries to clear and replay through the inspector."""

    script = ""

    def do_GET(self) -> None:  # noqa: N802
        body = f"<!doctype html><title>evil</title><script>{self.script}</script>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_cross_origin_page_cannot_change_anything(page: Any, inspector: RunningInspector,
                                                    receiver: Receiver) -> None:
    entry = inspector.store.newest(1)[0].id
    base = inspector.url.rstrip("/")
    _EvilPage.script = f"""
    window.results = [];
    const tries = [
      fetch("{base}/api/requests", {{method: "DELETE", mode: "no-cors"}}),
      fetch("{base}/api/requests/{entry}/replay", {{method: "POST", mode: "no-cors", body: "{{}}",
            headers: {{"Content-Type": "text/plain"}}}}),
      fetch("{base}/api/requests/{entry}/replay", {{method: "POST",
            headers: {{"X-Moxiehook-Token": "guessed", "Content-Type": "application/json"}}, body: "{{}}"}}),
      fetch("{base}/api/requests").then(r => r.text()),
      // A simple request the browser does send: no body (a body-less replay resends the original).
      fetch("{base}/api/requests/{entry}/replay", {{method: "POST", mode: "no-cors"}}),
    ];
    Promise.allSettled(tries).then(all => {{ window.results = all.map(r => r.status); window.done = true; }});
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EvilPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        before = len(receiver.requests)
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
        page.wait_for_function("window.done === true")
        # The guarded calls either failed in the browser (CORS) or were refused with 403; reading was blocked.
        assert page.evaluate("window.results")[3] == "rejected"
        assert len(receiver.requests) == before
        assert len(inspector.store.newest(100)) == 2
    finally:
        server.shutdown()


def test_a_rebound_dns_name_gets_nothing(page: Any, inspector: RunningInspector) -> None:
    response = page.goto(f"http://rebind.test:{inspector.port}/")
    assert response.status == 403
    assert inspector.token not in page.content()
    answer = page.evaluate("fetch('/api/requests', {method: 'DELETE', headers: {'X-Moxiehook-Token': 'x'}})"
                           ".then(r => r.status)")
    assert answer == 403
    assert len(inspector.store.newest(100)) == 2
