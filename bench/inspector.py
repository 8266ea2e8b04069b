"""Inspector benchmarks: listen's speed with the page streaming, and the page with 10,000 requests.

- ``listen_ui``: ``listen --quiet --ui`` with one client reading ``/api/stream`` the whole time
  (as an open page does) vs a bare stdlib ``ThreadingHTTPServer``, both loaded by ``hey -c 8``
  with the same POST. The stream must have carried every request.
- ``inspector_page``: a real headless Chromium (Playwright, Debian's ``/usr/bin/chromium``)
  opening the inspector with 10,000 requests listed, vs with 100: the time until the list is
  shown and until a detail is open. Ratio: 10,000's time over 100's (flat is 1).
"""

from __future__ import annotations

import http.client
import signal
import subprocess
import threading
import time
from pathlib import Path

from bench import processes
from bench.benchmarks import Figure, Target, _unmeasured
from bench.listen import HEY_CONNECTIONS, _bare_rate, _hey, _requests
from bench.session import QUICK, Session, has_tool

CHROMIUM = Path("/usr/bin/chromium")


class _StreamReader:
    """Reads the inspector's event stream in a thread and counts the requests it announces."""

    def __init__(self, url: str) -> None:
        host_port = url.removeprefix("http://").rstrip("/")
        host, port = host_port.rsplit(":", 1)
        self.connection = http.client.HTTPConnection(host, int(port), timeout=600)
        self.connection.request("GET", "/api/stream", headers={"Host": host_port})
        self.response = self.connection.getresponse()
        if self.response.status != 200:
            raise processes.CommandFailed(f"the stream answered {self.response.status}")
        self.count = 0
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for line in self.response:
                if line.startswith(b"event: request"):
                    self.count += 1
        except (OSError, ValueError):
            return

    def close(self) -> None:
        self.connection.close()


def _listen_ui_rate(session: Session, count: int) -> tuple[float, int]:
    """Requests/s of listen --quiet --ui until every request was answered and printed; events streamed."""
    config = session.config_for("listen-ui", "http://127.0.0.1:9/unused")
    ready = session.folder / "listen-ui.ready"
    ready.unlink(missing_ok=True)
    stdout, stderr = session.folder / "listen-ui.out", session.folder / "listen-ui.err"
    argv = [*session.moxiehook_argv, "--config", str(config), "listen", "--port", "0", "--quiet", "--ui",
            "--ui-port", "0", "--ready-file", str(ready)]
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        process = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=session.env,
                                   cwd=session.folder)
    reader = None
    try:
        for _ in range(400):  # 20 s at most
            if ready.exists() or process.poll() is not None:
                break
            time.sleep(0.05)
        text = stderr.read_text(errors="replace")
        inspector = next((line.split()[-1] for line in text.splitlines() if line.startswith("inspector on ")), None)
        if not ready.exists() or inspector is None:
            raise processes.CommandFailed(f"listen --ui did not start: {text[-2000:]}")
        reader = _StreamReader(inspector)
        seconds, statuses = _hey(session, ready.read_text().strip(), count)
        drained = time.perf_counter()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
        seconds += time.perf_counter() - drained
        reader.thread.join(timeout=30)
    finally:
        if reader is not None:
            reader.close()
        if process.poll() is None:
            process.kill()
        process.wait()
    if statuses != {"204": count}:
        raise processes.CommandFailed(f"listen --ui answered {statuses}")
    printed = stdout.read_text(errors="replace").count("→ 204")
    if printed != count:
        raise processes.CommandFailed(f"listen --ui printed {printed} of {count} requests")
    return count / seconds, reader.count


def listen_ui(session: Session) -> Figure:
    """listen --quiet --ui with the page's stream open vs a bare ThreadingHTTPServer, hey -c 8."""
    name, target = "listen_ui", Target(0.5, at_least=True)
    count = _requests(session)
    if not has_tool("hey"):
        return _unmeasured(name, "hey not installed (apt-get install hey)", "—", target)
    repeats = session.sizes.rate_repeats
    bare_rates, ui_rates, streamed = [], [], []
    for _ in range(repeats):  # taking turns, so a busy moment hits both alike
        bare_rates.append(_bare_rate(session, count))
        rate, events = _listen_ui_rate(session, count)
        ui_rates.append(rate)
        streamed.append(events)
    bare, ui = sorted(bare_rates)[repeats // 2], sorted(ui_rates)[repeats // 2]
    return Figure(name, f"{ui:,.0f} req/s", f"{bare:,.0f} req/s (bare ThreadingHTTPServer)", ui / bare, target,
                  [f"hey -n {count:,} -c {HEY_CONNECTIONS}, median of {repeats}; one client read /api/stream "
                   f"throughout and got {min(streamed):,}–{max(streamed):,} of {count:,} events (a client that "
                   "falls 10,000 behind is dropped and refetches the list, as the page does)"])


def _page_times(count: int, quick: bool) -> dict[str, float]:
    """Milliseconds to first paint, to the list shown, and to a detail open, with ``count`` listed."""
    from playwright.sync_api import sync_playwright

    from moxiehook import catalog, ids
    from moxiehook.inspect import InspectorConfig, ReplayTarget, start_inspector
    from moxiehook.inspect.store import from_record
    from moxiehook.log import DeliveryRecord

    body = catalog.sample("ClientCreate")
    inspector = start_inspector(InspectorConfig(
        target=ReplayTarget(Path("unused.toml"), lambda: None, can_resend=False),  # type: ignore[arg-type, return-value]
        port=0, history=False))
    try:
        for index in range(count):
            record = DeliveryRecord(
                id=ids.delivery_id(), event_id=ids.event_id(), event="ClientCreate", endpoint="crm",
                url=f"http://127.0.0.1:9/hooks/{index}", mode="fire", replay_of=None, at=ids.now_iso(),
                outcome="delivered", status=200, error=None, duration_ms=1.0,
                request={"headers": {"Authorization": "***"}, "body": body}, response=None)
            entry = from_record(record)
            entry.summary()  # as the inspector's warm-up does for the log's history
            inspector.store.add(entry)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"])
            try:
                times: dict[str, list[float]] = {"paint": [], "list": [], "detail": []}
                for _ in range(3 if quick else 7):
                    page = browser.new_page(viewport={"width": 1280, "height": 800})
                    start = time.perf_counter()
                    page.goto(inspector.url)
                    page.wait_for_selector("#list-rows .row[data-id]", timeout=60_000)
                    times["list"].append((time.perf_counter() - start) * 1000)
                    paint = page.evaluate(
                        "performance.getEntriesByName('first-contentful-paint').map(e => e.startTime)")
                    times["paint"].append(float(paint[0]) if paint else float("nan"))
                    page.evaluate("document.getElementById('list').scrollTop = 4000")
                    page.wait_for_timeout(100)  # the redraw of the scrolled window
                    entry_id = page.evaluate(
                        "(() => { const list = document.getElementById('list');"
                        " const rows = [...document.querySelectorAll('#list-rows .row[data-id]')];"
                        " return rows.find(r => parseInt(r.style.top) >= list.scrollTop + 100).dataset.id; })()")
                    start = time.perf_counter()
                    page.click(f'#list-rows .row[data-id="{entry_id}"]')  # re-found if a redraw replaced it
                    page.wait_for_selector(f'#detail[data-id="{entry_id}"] #body .ln', timeout=60_000)
                    times["detail"].append((time.perf_counter() - start) * 1000)
                    page.close()
            finally:
                browser.close()
        return {key: sorted(values)[len(values) // 2] for key, values in times.items()}
    finally:
        inspector.stop()


def inspector_page(session: Session) -> Figure:
    """The page with 10,000 requests listed vs 100: time to the list shown and to a detail open."""
    name, target = "inspector_page", Target(3.0, at_least=False)
    try:
        import playwright  # noqa: F401
    except ImportError:
        return _unmeasured(name, "playwright not installed (pip install playwright)", "—", target)
    if not CHROMIUM.exists():
        return _unmeasured(name, "no /usr/bin/chromium (apt-get install -y chromium)", "—", target)
    quick = session.sizes is QUICK
    small, big = _page_times(100, quick), _page_times(10_000, quick)
    ratio = max(big["list"] / small["list"], big["detail"] / small["detail"])
    return Figure(name, f"10,000 listed: first paint {big['paint']:.0f} ms, list {big['list']:.0f} ms, "
                        f"detail {big['detail']:.0f} ms",
                  f"100 listed: first paint {small['paint']:.0f} ms, list {small['list']:.0f} ms, "
                  f"detail {small['detail']:.0f} ms", ratio, target,
                  ["headless Chromium via Playwright, median of 7 page loads; list = navigation start until the "
                   "first row is drawn (the page fetches all 10,000 summaries); detail = click on a row until its "
                   "body is drawn; ratio = the worse of the two, 10,000 over 100"])
