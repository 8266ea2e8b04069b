"""Starting and stopping the inspector: over the log (``moxiehook ui``) or beside ``listen``.

On start it shows the last ``HISTORY`` delivery records of the log (``moxiehook ui``, and
``listen --forward-to``, whose forwards are logged), so what came before a restart is still
there. ``moxiehook ui`` then follows the log (records appended by ``fire``, ``replay``, another
``listen`` …, read with the same functions as ``logs --follow``); ``listen --ui`` hands each
received request to ``received`` instead, which only queues it (the sender's answer never
waits for the page).
"""

from __future__ import annotations

import ipaddress
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from moxiehook import log as logquery
from moxiehook.errors import UsageError
from moxiehook.inspect.app import AppState, InspectorServer, new_token
from moxiehook.inspect.replay import ReplayTarget
from moxiehook.inspect.store import CREDENTIAL_HEADERS, Store, from_received, from_record
from moxiehook.log import DeliveryRecord

if TYPE_CHECKING:
    from moxiehook.receive import ReceivedRequest

HISTORY = 1_000
HANDOVER = 10_000  # requests listen handed over, not yet in the list
ARRIVAL_PAUSE_S = 0.05  # between batches: a person sees no delay, a flood costs 20 wake-ups a second
FOLLOW_INTERVAL = 0.2


@dataclass(frozen=True)
class InspectorConfig:
    """Where the inspector listens and what it shows."""

    target: ReplayTarget
    log_path: Path | None = None  # history (and following) come from here
    host: str = "127.0.0.1"
    port: int = 8788
    history: bool = True
    follow: bool = False
    receiver_url: str = ""  # listen's own URL: where a plain listen's requests were sent
    hidden_headers: frozenset[str] = CREDENTIAL_HEADERS
    follow_interval: float = FOLLOW_INTERVAL
    keepalive_s: float = 15.0


def is_loopback(host: str) -> bool:
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if bare == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


class _Stopped(Exception):
    pass


class RunningInspector:
    """The inspector serving in background threads: ``url``, ``port``, ``received()``, ``stop()``."""

    def __init__(self, config: InspectorConfig) -> None:
        self.config = config
        self.receiver_url = config.receiver_url
        self.store = Store()
        self._arrived: deque[ReceivedRequest] = deque(maxlen=HANDOVER)
        self._waking = threading.Event()
        self._stop = threading.Event()
        bare = config.host[1:-1] if config.host.startswith("[") else config.host
        if not bare.strip():
            raise UsageError("give the inspector an address (127.0.0.1, ::1, or 0.0.0.0 with care)")
        self.state = AppState(store=self.store, token=new_token(), target=config.target,
                              keepalive_s=config.keepalive_s)
        try:
            self._server = InspectorServer((bare, config.port), self.state)
        except (OSError, OverflowError) as exc:
            detail = getattr(exc, "strerror", None) or str(exc)
            raise UsageError(f"cannot serve the inspector on {config.host}:{config.port}: {detail}") from None
        self.port: int = self._server.server_address[1]
        self.state.allow(bare, self.port)
        end = 0
        if config.log_path is not None and (config.history or config.follow):
            end = logquery.whole_lines_end(config.log_path)
            if config.history:
                self._load_history(config.log_path, end)
        self._threads = [threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                          name="moxiehook-inspector", daemon=True)]
        if config.follow and config.log_path is not None:
            self._threads.append(threading.Thread(target=self._follow, args=(config.log_path, end),
                                                  name="moxiehook-inspector-follow", daemon=True))
        self._threads.append(threading.Thread(target=self._take_arrivals, name="moxiehook-inspector-arrivals",
                                              daemon=True))
        if len(self.store):
            # The history's schema verdicts (a third of a millisecond each) are worked out now, in the
            # background, so the page's first list does not wait for a thousand of them.
            self._threads.append(threading.Thread(target=self._warm, name="moxiehook-inspector-warm", daemon=True))
        for thread in self._threads:
            thread.start()

    @property
    def url(self) -> str:
        """The URL to open: a wildcard address is reached through loopback."""
        host = self.config.host.strip("[]")
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/"

    @property
    def token(self) -> str:
        return self.state.token

    def _load_history(self, path: Path, end: int) -> None:
        for entry in logquery.tail(path, HISTORY, logquery.LogFilter(outcome=None), end=end):
            if isinstance(entry.record, DeliveryRecord):
                self.store.add(from_record(entry.record))

    def _warm(self) -> None:
        for entry in self.store.newest(len(self.store)):
            if self._stop.is_set():
                return
            entry.summary()

    def _follow(self, path: Path, start: int) -> None:
        def sleep(seconds: float) -> None:
            if self._stop.wait(seconds):
                raise _Stopped

        try:
            # The follower reads the history's records again from the file it then keeps open (a prune
            # in between cannot make it miss one); the store keeps each id once, so those are dropped.
            for entry in logquery.follow(path, backlog=HISTORY, interval=self.config.follow_interval,
                                         sleep=sleep):
                if isinstance(entry.record, DeliveryRecord):
                    self.store.add(from_record(entry.record))  # a replay made from the page is there already
        except _Stopped:
            return

    def set_receiver_url(self, url: str) -> None:
        """Where listen receives (known once it is bound): a plain listen's requests are exported to it."""
        self.receiver_url = url

    def received(self, request: ReceivedRequest) -> None:
        """``listen``'s ``on_request``: hand the request over; the sender's answer never waits for the page.

        A bounded hand-over (``HANDOVER``): past it the oldest waiting request is dropped, as the
        list would drop it anyway. The inspector's own thread makes the entries, in batches.
        """
        self._arrived.append(request)
        if not self._waking.is_set():
            self._waking.set()

    def _take_arrivals(self) -> None:
        """Turn what ``listen`` handed over into entries, a batch at a time (a few wake-ups a second)."""
        while not self._stop.is_set():
            self._waking.wait(timeout=1.0)
            self._waking.clear()
            batch = []
            while self._arrived:
                try:
                    batch.append(self._arrived.popleft())
                except IndexError:
                    break
            if batch:
                url, hidden = self.receiver_url, self.config.hidden_headers
                self.store.add_many([from_received(request, url, hidden) for request in batch])
            self._stop.wait(ARRIVAL_PAUSE_S)

    def chain(self, other: Callable[[ReceivedRequest], None]) -> Callable[[ReceivedRequest], None]:
        """An ``on_request`` calling ``other`` (listen's printer) and then ``received``."""

        def both(request: ReceivedRequest) -> None:
            other(request)
            self.received(request)

        return both

    def stop(self) -> None:
        """Stop serving, end the streams and the log follower; idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        self.state.stopping = True
        self.store.close_streams()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads[1:]:
            thread.join(timeout=5)  # the follower wakes from its sleep at once; warming stops at the next entry


def start_inspector(config: InspectorConfig) -> RunningInspector:
    """Bind and serve; ``UsageError`` when the address cannot be bound."""
    return RunningInspector(config)
