"""Debian's Firefox, headless, driven over WebDriver BiDi: the remote protocol built into Firefox.

Why not Playwright, which drives Chromium for the other browser tests? Playwright's own Firefox is a
patched build downloaded from its CDN, and its ``moz-firefox`` channel (stock Firefox over BiDi) is
experimental and follows the newest Firefox release: with Firefox ESR it fails on the first page
(``emulation.setMediaFeaturesOverride: unknown command``). Selenium needs geckodriver, another
download. Firefox itself needs neither: started with ``--remote-debugging-port`` it serves the W3C
WebDriver BiDi protocol on a loopback WebSocket, and the few commands a page test needs (navigate,
evaluate, real clicks, keys and wheel turns, screenshots, the page's errors) fit in this file.

The browser gets a fresh profile whose proxy is a closed loopback port, so nothing it tries to
reach beyond this machine (updates, remote settings, telemetry) leaves it; loopback addresses
bypass the proxy and reach the servers under test.
"""

from __future__ import annotations

import base64
import json
import queue
import shutil
import subprocess
import threading
import time
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection

#: Where Debian's ``firefox-esr`` package puts the browser (``/usr/bin/firefox-esr`` links to it).
FIREFOX_CANDIDATES = ("/usr/lib/firefox-esr/firefox-esr", "/usr/lib/firefox/firefox")

PREFS = {
    # Everything not on loopback goes to a proxy at a closed loopback port, so it fails at once.
    "network.proxy.type": 1,
    "network.proxy.http": "127.0.0.1",
    "network.proxy.http_port": 9,
    "network.proxy.ssl": "127.0.0.1",
    "network.proxy.ssl_port": 9,
    "network.proxy.socks": "127.0.0.1",
    "network.proxy.socks_port": 9,
    "network.proxy.socks_remote_dns": True,
    "network.proxy.allow_hijacking_localhost": False,
    "network.proxy.no_proxies_on": "127.0.0.1, localhost, [::1], rebind.test",
    # A name the tests use as a DNS-rebinding attacker's: it resolves to this machine.
    "network.dns.localDomains": "rebind.test",
    "network.trr.mode": 5,
    "network.dns.disablePrefetch": True,
    "network.predictor.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.captive-portal-service.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False,
    "app.update.disabledForTesting": True,
    "app.normandy.enabled": False,
    "messaging-system.rsexperimentloader.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "extensions.update.enabled": False,
}


class BidiError(AssertionError):
    """A command the browser refused, or a page that never reached the state a test waited for."""


def find_firefox() -> Path | None:
    """The Firefox binary itself (not Debian's ``/usr/bin/firefox`` shell wrapper), or None."""
    for candidate in FIREFOX_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    found = shutil.which("firefox-esr") or shutil.which("firefox")
    return Path(found).resolve() if found else None


class Firefox:
    """One headless Firefox process and its BiDi session; ``close()`` ends both."""

    def __init__(self, executable: Path, profile: Path, timeout: float = 30) -> None:
        # Imported here: a venv that predates the test extra's websockets fails these tests alone, not the
        # collection of the whole suite.
        from websockets.sync.client import connect

        self.timeout = timeout
        profile.mkdir(parents=True, exist_ok=True)
        self.downloads = profile / "downloads"  # where a page's downloads land, without asking
        self.downloads.mkdir(exist_ok=True)
        prefs = {**PREFS, "browser.download.dir": str(self.downloads), "browser.download.folderList": 2,
                 "browser.download.useDownloadDir": True, "browser.download.alwaysOpenPanel": False,
                 "browser.download.always_ask_before_handling_new_types": False}
        (profile / "user.js").write_text(
            "".join(f"user_pref({json.dumps(name)}, {json.dumps(value)});\n" for name, value in prefs.items()))
        self.process = subprocess.Popen(
            [str(executable), "--headless", "--no-remote", "--profile", str(profile),
             "--remote-debugging-port", "0", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            errors="replace",
            env={"PATH": "/usr/bin:/bin", "HOME": str(profile), "MOZ_HEADLESS": "1", "MOZ_CRASHREPORTER_DISABLE": "1"})
        self.output: list[str] = []
        self._ids = 0
        self.log: list[dict[str, Any]] = []  # the pages' console messages and uncaught errors, in order
        self._closing = ExitStack()
        try:
            address = self._listening_address()
            self._ws: ClientConnection = self._closing.enter_context(connect(
                f"{address}/session", proxy=None, max_size=64 << 20, open_timeout=timeout, compression=None))
            self.command("session.new", {"capabilities": {}})
            self.command("session.subscribe", {"events": ["log.entryAdded"]})
        except BaseException:
            self._closing.close()
            self._end_process()
            raise

    def _listening_address(self) -> str:
        """Read Firefox's stderr until it says where BiDi listens (bounded by ``timeout``)."""
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.output.append(line)
            if line.startswith("WebDriver BiDi listening on "):
                return line.split()[-1]
        raise BidiError("Firefox never opened its WebDriver BiDi port:\n" + "".join(self.output[-20:]))

    def command(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send one command and return its result; console messages that come first are kept in ``log``."""
        self._ids += 1
        sent = self._ids
        self._ws.send(json.dumps({"id": sent, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            message = json.loads(self._ws.recv(timeout=left))
            if message.get("method") == "log.entryAdded":
                self.log.append(message["params"])
            if message.get("id") != sent:
                continue
            if message.get("type") == "error":
                raise BidiError(f"{method}: {message.get('error')}: {message.get('message')}")
            result: dict[str, Any] = message["result"]
            return result
        raise BidiError(f"{method}: no answer within {self.timeout} s")

    def new_tab(self, width: int = 1280, height: int = 800) -> Tab:
        tab = Tab(self, self.command("browsingContext.create", {"type": "tab"})["context"])
        tab.resize(width, height)
        return tab

    def close(self) -> None:
        """Ask the browser to close, then make sure its process has ended."""
        try:
            self.command("browser.close", {})
        except Exception:  # noqa: BLE001 - the process is ended below either way
            pass
        finally:
            self._closing.close()
            self._end_process(grace=self.timeout)

    def _end_process(self, grace: float = 0) -> None:
        """Wait ``grace`` seconds for the process to end by itself, then kill it."""
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=self.timeout)


class Tab:
    """One top-level browsing context: navigate, read the page, click, screenshot."""

    def __init__(self, browser: Firefox, context: str) -> None:
        self.browser = browser
        self.context = context

    def resize(self, width: int, height: int) -> None:
        self.browser.command("browsingContext.setViewport", {"context": self.context,
                                                             "viewport": {"width": width, "height": height}})

    def goto(self, url: str) -> None:
        self.browser.command("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = self.browser.command("script.evaluate", {
            "expression": expression, "target": {"context": self.context}, "awaitPromise": True,
            "resultOwnership": "none"})
        if result["type"] == "exception":
            details = result["exceptionDetails"]
            raise BidiError(f"{expression!r} threw: {details.get('text')}")
        return _value(result["result"])

    def wait_for(self, expression: str, what: str, interval: float = 0.05) -> Any:
        """Poll ``expression`` until it is truthy; fail naming ``what`` after the browser's timeout."""
        deadline = time.monotonic() + self.browser.timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BidiError(f"waited {self.browser.timeout} s for {what} ({expression})")
            time.sleep(interval)

    def wait_for_selector(self, selector: str) -> None:
        self.wait_for(f"document.querySelector({json.dumps(selector)}) !== null", selector)

    def text(self, selector: str) -> str:
        """The rendered text of the first element matching ``selector`` (``innerText``)."""
        value = self.evaluate(f"document.querySelector({json.dumps(selector)}).innerText")
        assert isinstance(value, str), value
        return value

    def _middle_of(self, selector: str) -> dict[str, Any]:
        """An action origin: the middle of the first element matching ``selector``."""
        nodes = self.browser.command("browsingContext.locateNodes", {
            "context": self.context, "locator": {"type": "css", "value": selector}, "maxNodeCount": 1})["nodes"]
        if not nodes:
            raise BidiError(f"no element at {selector}")
        return {"type": "element", "element": {"sharedId": nodes[0]["sharedId"]}}

    def click(self, selector: str) -> None:
        """A real mouse click (move, press, release) at the middle of the element, as a user makes it."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).scrollIntoView({{block: 'nearest'}})")
        self.browser.command("input.performActions", {"context": self.context, "actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": [
                {"type": "pointerMove", "x": 0, "y": 0, "origin": self._middle_of(selector)},
                {"type": "pointerDown", "button": 0}, {"type": "pointerUp", "button": 0}]}]})

    def type(self, selector: str, text: str) -> None:
        """Click into a field, select what it holds and type ``text`` over it, key by key."""
        self.click(selector)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).select()")
        keys: list[dict[str, Any]] = []
        for char in text:
            keys += [{"type": "keyDown", "value": char}, {"type": "keyUp", "value": char}]
        self.browser.command("input.performActions", {"context": self.context, "actions": [
            {"type": "key", "id": "keyboard", "actions": keys}]})

    def wheel(self, selector: str, delta_y: int) -> None:
        """Turn the mouse wheel over the middle of the element, as a user scrolls it."""
        self.browser.command("input.performActions", {"context": self.context, "actions": [{
            "type": "wheel", "id": "wheel", "actions": [
                {"type": "scroll", "x": 0, "y": 0, "deltaX": 0, "deltaY": delta_y,
                 "origin": self._middle_of(selector)}]}]})

    def errors(self) -> list[str]:
        """What this page reported as an error so far: uncaught exceptions, ``console.error``, CSP refusals."""
        self.evaluate("0")  # a round trip: entries the browser sent before its answer are read
        return [f"{entry.get('type')}: {entry.get('text')}" for entry in self.browser.log
                if entry.get("source", {}).get("context") == self.context and entry.get("level") == "error"]

    def screenshot(self, path: Path) -> None:
        data = self.browser.command("browsingContext.captureScreenshot", {"context": self.context})["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        self.browser.command("browsingContext.close", {"context": self.context})


def _value(remote: dict[str, Any]) -> Any:
    """A BiDi remote value as Python: primitives, arrays and plain objects; anything else as sent."""
    kind = remote["type"]
    if kind in ("undefined", "null"):
        return None
    if kind in ("string", "boolean"):
        return remote["value"]
    if kind == "number":
        value = remote["value"]
        return value if isinstance(value, int | float) else float(value)  # "NaN", "Infinity", "-0"
    if kind == "array":
        return [_value(item) for item in remote.get("value", [])]
    if kind == "object":
        return {key if isinstance(key, str) else json.dumps(key): _value(item) for key, item in remote.get("value", [])}
    return remote
