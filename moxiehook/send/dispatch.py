"""Many deliveries: plan an event's routes, run jobs concurrently, disable endpoints on the fly.

``run_jobs`` is shared by ``fire``, ``test``, ``replay`` and ``demo``. Two parts:

- ``_SenderPool``: the sending threads. They take jobs one at a time from an
  iterable (no queue: at most ``concurrency`` jobs exist beyond it, so ``fire
  --count 100000`` streams in constant memory); there are up to ``concurrency``
  of them (as many as the receivers' latency makes worth it, see ``pacing``),
  each with its own keep-alive connections (a ``WireSender``, see ``transport``).
- ``_Run``: the bookkeeping. Each record is logged as it ends and counted;
  when an answer's status is in ``disable_on`` the endpoint is disabled, its
  later jobs are logged as ``skipped``, and ``settings.on_disable`` is started
  (off the delivery path, waited for at the end).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moxiehook import ids
from moxiehook.config import Config, Endpoint, EventMapping, disable_endpoint
from moxiehook.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_NOTHING_SENT, EXIT_OK, NotFoundError, StorageError
from moxiehook.http import PLAIN_HTTP, Proxies, tls_context, uses_tls
from moxiehook.log import DeliveryRecord, LogWriter, encode_body, encode_record, text_bytes
from moxiehook.send.delivery import (
    METHOD,
    Delivery,
    PreparedEndpoint,
    Sender,
    Verdict,
    WireSender,
    disable_reason,
    prepare_endpoint,
    redacted_headers,
    request_headers,
    send,
    shown_headers,
    skipped_record,
)
from moxiehook.send.hooks import HOOK_TIMEOUT, OnDisableHooks
from moxiehook.send.pacing import STALL_S, Pacer, fit_open_files

if TYPE_CHECKING:
    import ssl


FAILURES_KEPT = 10  # failed records a summary keeps to show (a screenful); the rest are counted


GRACE_S = 0.8  # how long deliveries in flight may go on after Ctrl-C before they are cut


class Interrupt:
    """Ctrl-C for a run: no new attempt starts, those in flight end or are cut (then exit 130).

    ``request()`` (from any thread but a signal handler: it starts a timer
    thread) makes the run take no further job and start no further attempt at
    once (a wait before a retry ends too); attempts in flight may end by
    themselves for ``GRACE_S``, then their connections are cut, so each is
    logged within about a second. A second request cuts at once.
    """

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._cutters: list[Callable[[], None]] = []

    def request(self) -> None:
        delay = 0.0 if self.requested.is_set() else GRACE_S
        self.requested.set()
        timer = threading.Timer(delay, self.cut)
        timer.daemon = True
        timer.start()

    def on_cut(self, cutter: Callable[[], None]) -> None:
        """Call ``cutter`` (it ends the attempts in flight) when the grace is over."""
        self._cutters.append(cutter)

    def cut(self) -> None:
        for cutter in list(self._cutters):
            cutter()


@dataclass(frozen=True)
class Job:
    """One delivery to make: an event's body to one URL of one endpoint."""

    endpoint: str  # endpoint name
    event: str
    url: str
    body: Any  # the JSON payload (dict/list/...), encoded once by the engine
    event_id: str  # evt_...; stable across retries and replays (webhook-id)
    # "fire" | "test" | "replay" | "load" | "scenario" | "app" (in-process: never replayed to the network)
    mode: str = "fire"
    replay_of: str | None = None
    scenario: dict[str, Any] | None = None  # a scenario step's {"name", "run", "step"}
    skip: str | None = None  # log the job as skipped for this reason, unsent (a scenario stopped by a failed step)
    # ``body`` is raw, not a JSON value: text sent as its UTF-8 bytes (check it with ``log.text_bytes``
    # first: an edited body typed as text), or bytes (a replay of a relayed body that was not JSON).
    text: bool = False
    content_type: str | None = None  # sent in place of the endpoint's Content-Type (a text body's own)


@dataclass
class RunOptions:
    """How ``run_jobs`` runs, and the hooks the CLI uses to show progress."""

    concurrency: int
    include_disabled: bool = False  # `test` and `replay --include-disabled` send to disabled endpoints
    keep_records: bool = False  # keep DeliveryRecords in the summary (for --json)
    on_record: Callable[[DeliveryRecord], None] | None = None  # after each record is logged
    on_disabled: Callable[[str, str], None] | None = None  # (endpoint, reason) as soon as one is disabled
    on_warning: Callable[[str], None] | None = None  # e.g. TLS verification turned off
    # The endpoints the jobs use, when known: their ${VAR} are then all expanded
    # before the first request, so a missing variable sends nothing at all.
    endpoints: Collection[str] | None = None
    # Carries every request instead of the network (``fire --app``: a WSGI/ASGI
    # app called in-process); shared by the sending threads, so thread-safe.
    sender: Sender | None = None
    # Ctrl-C: the CLI requests it from its SIGINT handling; the run stops (see ``Interrupt``).
    interrupt: Interrupt | None = None
    # A load run (``load``): every sending thread is started before the first job, since
    # its jobs come on a schedule and none may wait for a thread to be made.
    start_all_senders: bool = False
    # settings.on_disable hooks: seconds in all for a run's hooks, waited for at its end (tests make it short).
    hook_timeout: float = HOOK_TIMEOUT


@dataclass
class RunSummary:
    """What a run did; ``exit_code``: 130 interrupted, 1 a failure or a disable, 3 nothing sent, else 0."""

    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    disabled: list[tuple[str, str]] = field(default_factory=list)  # disabled during this run
    already_disabled: dict[str, str] = field(default_factory=dict)  # skipped: disabled before the run
    warnings: list[str] = field(default_factory=list)  # e.g. an on_disable hook that failed
    records: list[DeliveryRecord] = field(default_factory=list)  # only when keep_records
    failures: list[DeliveryRecord] = field(default_factory=list)  # the first FAILURES_KEPT failed ones
    elapsed_s: float = 0.0  # the run's wall time, from the first job taken to the last record logged
    interrupted: bool = False  # stopped by Ctrl-C: jobs not started were neither sent nor logged

    @property
    def rate(self) -> float | None:
        """Deliveries sent (delivered or failed) per second, or None when none was sent."""
        sent = self.delivered + self.failed
        return sent / self.elapsed_s if sent and self.elapsed_s > 0 else None

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.failed or self.disabled:
            return EXIT_FAILED
        if self.delivered + self.failed == 0:
            return EXIT_NOTHING_SENT
        return EXIT_OK


def plan_fire(config: Config, event: str, endpoints: list[str] | None) -> list[tuple[Endpoint, EventMapping]]:
    """Every (endpoint, mapping) of ``event``, on the named endpoints or all of them.

    Disabled endpoints are included (their deliveries are logged as skipped).
    Raises ``NotFoundError`` for an unknown endpoint name.
    """
    names = list(dict.fromkeys(endpoints)) if endpoints else list(config.endpoints)
    chosen = [config.endpoint(name) for name in names]
    return [(endpoint, mapping) for endpoint in chosen for mapping in endpoint.mappings if mapping.event == event]


def fire_jobs(plan: list[tuple[Endpoint, EventMapping]], event: str, payloads: Iterable[Any],
              mode: str = "fire") -> Iterator[Job]:
    """The jobs of ``plan`` for each payload, lazily; one event id per payload."""
    for body in payloads:
        event_id = ids.event_id()
        for endpoint, mapping in plan:
            yield Job(endpoint.name, event, mapping.url, body, event_id, mode)


def preview_jobs(config: Config, jobs: Iterable[Job], endpoints: Iterable[str] = ()) -> Iterator[dict[str, Any]]:
    """The requests ``jobs`` would make, secrets masked (for ``--dry-run``); sends nothing.

    ``${VAR}`` references are expanded and checked as for a real run, so a dry
    run also catches a missing or unsendable variable; their values are never
    shown. The ``endpoints`` named are prepared now, before the first preview,
    so such an error stops a dry run before it prints anything; the previews
    themselves are made one at a time as they are printed, so ``--dry-run
    --count 200000`` runs in constant memory.
    """
    prepared = {name: prepare_endpoint(config.endpoint(name), config.settings, None)
                for name in dict.fromkeys(endpoints)}
    return _previews(config, jobs, prepared)


def _previews(config: Config, jobs: Iterable[Job], prepared: dict[str, PreparedEndpoint]) -> Iterator[dict[str, Any]]:
    for job in jobs:
        endpoint = prepared.get(job.endpoint)
        if endpoint is None:
            endpoint = prepared[job.endpoint] = prepare_endpoint(
                config.endpoint(job.endpoint), config.settings, None)
        delivery = _Run.delivery(job, _wire_body(job, encode_body))
        _, signature = request_headers(endpoint, delivery)
        shown = delivery.logged_request(shown_headers(endpoint, delivery, signature))
        yield {"method": METHOD, "url": job.url, **shown}


def _wire_body(job: Job, encode: Callable[[Any], bytes]) -> bytes:
    """The bytes ``job`` sends: a raw body's own, else its JSON value through ``encode``."""
    return text_bytes(job.body) if job.text else encode(job.body)


def run_jobs(config_path: Path, config: Config, jobs: Iterable[Job], options: RunOptions) -> RunSummary:
    """Send ``jobs`` (taken lazily) with up to ``options.concurrency`` in flight; log every record."""
    concurrency, open_files = fit_open_files(options.concurrency)
    if concurrency < options.concurrency:
        if options.on_warning:
            options.on_warning(
                f"a concurrency of {options.concurrency} needs more open files than this process may have "
                f"(ulimit -n {open_files}): sending at most {concurrency} at once")
        options = replace(options, concurrency=concurrency)
    started = time.perf_counter()
    run = _Run(config_path, config, options)
    for name in options.endpoints or ():
        if run.skip_reason(name) is None:
            run.prepared(name)
    try:
        run.pool.drain(jobs)
    except BaseException:
        run.hooks.kill()  # a hard stop: no waiting for notifications
        raise
    finally:
        run.summary.elapsed_s = time.perf_counter() - started
        run.summary.interrupted = run.interrupt.requested.is_set()
        run.close()
    run.wait_for_hooks()
    run.summary.interrupted = run.interrupt.requested.is_set()  # Ctrl-C while waiting for a hook
    return run.summary


class _SenderPool:
    """The sending threads of a run and their connections: take a job, hand it to the run, repeat.

    Senders pull from the shared iterator (no queue), so at most ``concurrency``
    jobs exist beyond it at any time. Each thread has its own keep-alive
    connections (``wire``); ``cut`` closes them all from another thread (Ctrl-C's
    grace is over). What a job means (skipping, sending, logging) is the run's:
    ``run.begin(job)`` under the take lock, ``run.deliver(...)`` outside it.
    """

    def __init__(self, run: _Run, concurrency: int, start_all: bool) -> None:
        self.run = run
        self.concurrency = concurrency
        self.start_all = start_all
        self.lock = threading.Lock()
        self._tls: dict[bool | str | None, ssl.SSLContext] = {}  # built once, shared by the threads
        self._local = threading.local()  # .wires: this sending thread's WireSenders
        self._wires: list[WireSender] = []  # every thread's, closed at the end
        self._proxies = Proxies.from_environ()  # read once per run
        self.take_lock = threading.Lock()  # taking the next job from the shared iterator
        self.stop = False
        self.exhausted = False  # the last job has been taken
        self.senders: list[threading.Thread] = []  # appended under self.lock
        self.errors: list[BaseException] = []

    def drain(self, jobs: Iterable[Job]) -> None:
        """Run senders until the jobs are taken and sent (or the run is stopped).

        With a concurrency of 1 the run stays in this thread: no hand-off between
        threads. Otherwise this thread only watches: it starts one sender (or,
        with ``start_all``, all of them), and ``Pacer`` decides when more are
        worth it (up to ``concurrency``).
        """
        source = iter(jobs)
        if self.concurrency == 1:
            self.work(source, None)
            return
        first = self.concurrency if self.start_all else 1
        pacer = Pacer(self.concurrency, senders=first)
        self.add_senders(source, pacer, first)
        try:
            joined = 0
            while joined < len(self.senders):  # senders started later are appended before their starter ends
                sender = self.senders[joined]
                sender.join(STALL_S)
                if sender.is_alive():
                    if not self.exhausted:
                        self.add_senders(source, pacer, pacer.stalled())
                else:
                    joined += 1
        except BaseException:  # a hard stop (a third Ctrl-C): cut what is in flight, wait a moment, go
            with self.lock:
                self.stop = True
            self.cut()
            for sender in self.senders:
                sender.join(GRACE_S)
            raise
        if self.errors:
            raise self.errors[0]

    def add_senders(self, source: Iterator[Job], pacer: Pacer, count: int) -> None:
        with self.lock:
            if self.stop or self.run.interrupt.requested.is_set():
                return
            for _ in range(count):
                sender = threading.Thread(target=self.work, args=(source, pacer), daemon=True,
                                          name=f"moxiehook-send-{len(self.senders)}")
                self.senders.append(sender)
                sender.start()

    def work(self, source: Iterator[Job], pacer: Pacer | None) -> None:
        try:
            stopping = self.run.interrupt.requested
            while not self.stop and not stopping.is_set():
                with self.take_lock:
                    job = next(source, None)
                    if job is None:
                        self.exhausted = True
                        return
                    if stopping.is_set():  # Ctrl-C while the job was taken: not started, so not logged
                        return
                    begun = self.run.begin(job)  # under the lock: consecutive jobs share an encoded body
                if begun is None:
                    continue
                if pacer is None:
                    self.run.deliver(job, *begun)
                    continue
                wall, cpu = time.perf_counter(), time.thread_time()
                self.run.deliver(job, *begun)
                more = pacer.observe(time.perf_counter() - wall, time.thread_time() - cpu)
                if more:
                    self.add_senders(source, pacer, more)
        except BaseException as exc:
            self.stop = True
            self.errors.append(exc)
            if pacer is None:
                raise

    def wire(self, verify: bool | str | None) -> WireSender:
        """This thread's sender for this TLS setting (``PLAIN_HTTP``: http:// URLs, whatever the setting).

        One per sending thread (its own keep-alive connections): threads sharing
        one pool would queue for its lock on every request. The TLS context is shared.
        """
        wires: dict[bool | str | None, WireSender] = self._local.__dict__.setdefault("wires", {})
        wire = wires.get(verify)
        if wire is None:
            with self.lock:
                tls = self._tls.get(verify)
                if tls is None and verify is not PLAIN_HTTP:  # http:// URLs need no context (nor ssl)
                    tls = self._tls[verify] = tls_context(verify)
                wire = wires[verify] = WireSender(tls, self._proxies)
                self._wires.append(wire)
        return wire

    def cut(self) -> None:
        """End every attempt in flight now: close the senders' connections.

        Closing a connection from another thread wakes the read waiting on it
        (``WireSender.close``); the attempt ends as interrupted and is logged.
        """
        with self.lock:
            wires = list(self._wires)
        for wire in wires:
            wire.close()


class _Run:
    """The bookkeeping of one ``run_jobs`` call: what to skip, sending one job, logging, counting, disabling.

    Shared by the sending threads of its ``_SenderPool``; its own state is
    guarded by ``lock``. A new kind of run is a new ``mode`` on its jobs (the
    records carry it), not a change here.
    """

    def __init__(self, config_path: Path, config: Config, options: RunOptions) -> None:
        self.config_path = config_path
        self.config = config
        self.options = options
        self.summary = RunSummary()
        self.lock = threading.Lock()
        self.disabled_now: dict[str, str] = {}  # endpoint -> reason, disabled during this run
        self._prepared: dict[str, PreparedEndpoint] = {}
        self.interrupt = options.interrupt or Interrupt()
        self.pool = _SenderPool(self, options.concurrency, options.start_all_senders)
        self.interrupt.on_cut(self.pool.cut)
        cut_sender = getattr(options.sender, "cut", None)  # an in-process sender's calls in flight (--app)
        if cut_sender is not None:
            self.interrupt.on_cut(cut_sender)
        self.writer = LogWriter(config.log_path(config_path))
        try:
            self.writer.check_writable()  # records are written after sending: a log that takes none sends nothing
        except StorageError as exc:
            self.writer.close()
            raise StorageError(f"{exc}; nothing was sent") from None
        self._last_body: tuple[Any, bytes] | None = None
        self.hooks = OnDisableHooks(options.hook_timeout)  # started off the delivery path, waited for at the end

    def begin(self, job: Job) -> tuple[PreparedEndpoint, bytes] | None:
        """Under the pool's take lock: the job's endpoint and encoded body, or None once it is logged as skipped."""
        body_bytes = _wire_body(job, self.body_bytes)
        endpoint = self.job_endpoint(job, body_bytes)
        return None if endpoint is None else (endpoint, body_bytes)

    def job_endpoint(self, job: Job, body_bytes: bytes) -> PreparedEndpoint | None:
        """The prepared endpoint to send ``job`` to, or None after logging it as skipped."""
        reason = job.skip or self.skip_reason(job.endpoint)
        if reason is not None:
            delivery = self.delivery(job, body_bytes)
            self.finish(skipped_record(delivery, job.endpoint, self.logged_headers(job), reason), body_bytes)
            return None
        return self.prepared(job.endpoint)

    def body_bytes(self, body: Any) -> bytes:
        # Consecutive jobs usually share a body (one payload to several URLs): encode it once.
        if self._last_body is not None and self._last_body[0] is body:
            return self._last_body[1]
        encoded = encode_body(body)
        self._last_body = (body, encoded)
        return encoded

    def skip_reason(self, name: str) -> str | None:
        """Why a job of endpoint ``name`` is not sent, or None to send it."""
        during = self.disabled_during(name)
        if during is not None:
            return during
        endpoint = self.config.endpoint(name)
        if endpoint.enabled or self.options.include_disabled:
            return None
        reason = endpoint.why_disabled
        self.summary.already_disabled[name] = reason
        return f"endpoint '{name}' is disabled: {reason}"

    def disabled_during(self, name: str) -> str | None:
        """The skip reason of a job whose endpoint this run disabled, or None."""
        with self.lock:
            reason = self.disabled_now.get(name)
        return None if reason is None else f"endpoint '{name}' was disabled during this run: {reason}"

    def prepared(self, name: str) -> PreparedEndpoint:
        endpoint = self._prepared.get(name)
        if endpoint is None:
            endpoint = prepare_endpoint(self.config.endpoint(name), self.config.settings, self.config_path)
            self._prepared[name] = endpoint
            if endpoint.verify is False and self.options.on_warning:
                self.options.on_warning(
                    f"endpoint '{name}' has verify_tls = false: TLS certificates are not checked")
        return endpoint

    def logged_headers(self, job: Job) -> dict[str, str]:
        """Redacted headers for a skipped job, without expanding any variable."""
        endpoint = self.config.endpoint(job.endpoint)
        return {**redacted_headers(endpoint, self.config.settings), "X-Event-Type": job.event}

    @staticmethod
    def delivery(job: Job, body_bytes: bytes) -> Delivery:
        return Delivery(job.event, job.url, job.body, body_bytes, job.event_id, job.mode, job.replay_of, job.scenario,
                        job.text, job.content_type)

    # -- sending (worker threads) ------------------------------------------

    def deliver(self, job: Job, endpoint: PreparedEndpoint, body_bytes: bytes) -> None:
        delivery = self.delivery(job, body_bytes)
        during = self.disabled_during(job.endpoint)
        if during is not None:  # disabled while this job waited its turn: not started, so skipped
            self.finish(skipped_record(delivery, job.endpoint, endpoint.log_headers(job.event), during), body_bytes)
            return
        sender = self.options.sender or self.pool.wire(endpoint.verify if uses_tls(job.url) else PLAIN_HTTP)
        record, verdict = send(sender, endpoint, delivery, self.config.settings, stop=self.interrupt.requested)
        first_disable = False
        if verdict is Verdict.DISABLE:
            reason = disable_reason(record)
            with self.lock:
                first_disable = job.endpoint not in self.disabled_now
                self.disabled_now.setdefault(job.endpoint, reason)
        # Unsigned and with the endpoint's Content-Type, the logged headers are exactly
        # log_headers(event): splice in their JSON.
        plain = endpoint.signing_key is None and job.content_type is None
        self.finish(record, body_bytes, endpoint.log_headers_json(job.event) if plain else None)
        if first_disable:
            self.disable(job.endpoint, reason, record)

    def disable(self, name: str, reason: str, record: DeliveryRecord) -> None:
        try:
            result = disable_endpoint(self.config_path, name, reason)
        except NotFoundError:  # known to this run only (a relayed delivery's 'listen'): nothing to disable
            return
        if result.changed:
            with self.lock:
                self.summary.disabled.append((name, reason))
            if self.options.on_disabled:
                self.options.on_disabled(name, reason)
            # The user's notification (settings.on_disable): started now, waited for when the run ends;
            # a problem with it is a warning only.
            problem = self.hooks.start(self.config, self.config_path, name, reason, record.status, record.url)
            if problem is not None:
                self.warn(problem)

    def warn(self, problem: str) -> None:
        with self.lock:
            self.summary.warnings.append(problem)
        if self.options.on_warning:
            self.options.on_warning(problem)

    def wait_for_hooks(self) -> None:
        """Wait for the run's on_disable hooks (a budget for them all); Ctrl-C kills them at once."""
        for problem in self.hooks.wait(self.interrupt.requested):
            self.warn(problem)

    def finish(self, record: DeliveryRecord, body_bytes: bytes, headers_json: bytes | None = None) -> None:
        """Log ``record``, count it, and tell the CLI."""
        self.writer.append_line(encode_record(record, body_bytes, headers_json))
        with self.lock:
            if record.outcome == "delivered":
                self.summary.delivered += 1
            elif record.outcome == "failed":
                self.summary.failed += 1
            else:
                self.summary.skipped += 1
            if record.outcome == "failed" and len(self.summary.failures) < FAILURES_KEPT:
                self.summary.failures.append(record)
            if self.options.keep_records:
                self.summary.records.append(record)
        if self.options.on_record:
            self.options.on_record(record)

    def close(self) -> None:
        self.pool.cut()
        self.writer.close()
