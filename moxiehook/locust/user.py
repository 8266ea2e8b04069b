"""``MoxieUser``: Moxie's deliveries as a Locust user.

A locustfile subclasses it and names what to send::

    from moxiehook.locust import MoxieUser

    class Webhooks(MoxieUser):
        events = {"ClientCreate": 3, "InvoicePaid": 1}   # or a list: equal weights
        endpoint = "crm"      # optional: only this endpoint (default: every enabled one)
        vary = True           # optional: varied bodies, as `fire --vary`
        seed = 1234           # optional: reproducible bodies, different for every user and worker
        config = "moxiehook.toml"   # optional: else --config's rules ($MOXIEHOOK_CONFIG, ./moxiehook.toml)

Each task builds one delivery with moxiehook's request builder (the same headers, auth, custom
headers and Standard Webhooks signature as ``fire``) and POSTs it to the URL the config maps the
event to, with the client ``fire`` uses (``moxiehook.http``), made cooperative by the gevent
monkey-patching Locust does on start: a user waiting for an answer lets every other user of the
process send. Each request is reported to Locust through its ``request`` event, as its own
clients report theirs, so its stats, failures, reports and a master's totals count them like any
other request. No ``--host`` is needed (one given is ignored): every URL comes from the config.

Why not Locust's fast client (geventhttpclient): it offers no hook that bounds what an answer
costs or how it is framed. It keeps every header line of an answer in memory, without a cap (a
receiver streaming headers grows a worker by gigabytes), counts a ``204`` followed by stray bytes
as a failure where ``fire`` counts it delivered, and bounds each read rather than the attempt (a
receiver dripping a byte just inside each timeout holds a user as long as it likes). With one
client, a MoxieUser request is the request ``fire`` sends, judged as ``fire`` judges it:

- Locust's stats name each request by its event type (``POST ClientCreate``).
- An answer outside 2xx is a failure, described as ``fire`` describes it (``HTTP 404 Not
  Found``, ``HTTP 302 Found (redirects are not followed)``, ``timeout: no answer within 10 s``).
  A status in the config's ``disable_on`` (401, 403, 404, 405, 410 by default) adds that Moxie
  would disable the endpoint: reported, not acted on. The config is never changed and nothing
  is retried: Locust measures, ``fire`` disables.
- Redirects are not followed; each endpoint's ``timeout`` bounds the whole attempt (connecting,
  TLS, sending, the answer's head), its ``verify_tls`` (certifi's CA bundle, a bundle of your
  own, or no check) applies, and proxies come from the environment as for ``fire``. At most
  64 KiB of an answer's head and 64 KiB of its body are read; a connection is reused only after
  an answer read to its end.

The settings are checked when Locust starts (its init event, where users run) and again by the
first user of a class; a mistake (an unknown event, an
event mapped nowhere, a missing ``${VAR}``) stops the test with one line saying what is wrong,
and Locust exits with moxiehook's exit code for it (2 for a config or usage error).
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import gevent
from locust import User, events, task
from locust.exception import CatchResponseError, StopTest, StopUser
from locust.runners import STATE_INIT

from moxiehook.errors import MoxiehookError
from moxiehook.http import PLAIN_HTTP, Connections, Proxies, TransportError, uses_tls
from moxiehook.locust.plan import Answer, Plan, Stream, Target, failure, make_plan, no_answer, user_seed
from moxiehook.send import READ_LIMIT, Delivery, request_headers

__all__ = ["MoxieUser"]

logger = logging.getLogger(__name__)


class MoxieUser(User):
    """An abstract Locust user sending Moxie's webhooks as ``fire`` builds them."""

    abstract = True

    events: ClassVar[Sequence[str] | Mapping[str, float]] = ()
    """The event types to send: a list (equal weights) or a dict of weights."""
    endpoint: ClassVar[str | None] = None
    """Send only to this endpoint's mappings; by default to every enabled endpoint's."""
    vary: ClassVar[bool] = False
    """Varied bodies, schema-valid, as ``fire --vary`` makes them; else the catalog's sample
    with a fresh top-level id per delivery, as ``fire --count`` makes them."""
    seed: ClassVar[int | None] = None
    """Reproducible bodies: each user's stream comes from the seed, its worker and its number."""
    config: ClassVar[str | os.PathLike[str] | None] = None
    """The config file; by default ``$MOXIEHOOK_CONFIG``, else ``./moxiehook.toml``."""

    _numbers: ClassVar[itertools.count[int]] = itertools.count()  # users made in this process

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass with tasks of its own runs those (which call ``send_event``), not ``deliver``.

        Locust adds a base class's tasks to every subclass's; without this, a locustfile's own
        tasks would share the time with the default one instead of replacing it.
        """
        super().__init_subclass__(**kwargs)
        own = [task for task in cls.tasks if task is not MoxieUser.deliver]
        if own:
            cls.tasks = own

    def __init__(self, environment: Any) -> None:
        try:
            plan = type(self).moxie_plan()
        except StopTest:
            if environment.process_exit_code is None:
                environment.process_exit_code = _exit_codes.get(type(self), 1)
            raise
        self.host = plan.host  # what Locust shows; each request goes to the URL its event is mapped to
        super().__init__(environment)
        worker = getattr(environment.runner, "worker_index", 0)
        self.moxie_number = next(MoxieUser._numbers)
        self.moxie_stream = Stream(plan, user_seed(self.seed, max(worker, 0), self.moxie_number))
        self._wires: dict[bool | str | None, Connections] = {}

    @classmethod
    def moxie_plan(cls) -> Plan:
        """The class's settings checked and worked out once per process (``StopTest`` if wrong)."""
        cached = cls.__dict__.get("_moxie_plan")
        if isinstance(cached, Plan):
            return cached
        if isinstance(cached, str):
            raise StopTest(cached)
        try:
            plan = make_plan(cls.events, cls.endpoint, cls.vary, cls.seed, cls.config)
        except MoxiehookError as exc:
            message = f"{cls.__name__}: {exc}"
            _exit_codes[cls] = exc.exit_code
            cls._moxie_plan = message  # type: ignore[attr-defined]
            raise StopTest(message) from None
        for skipped in plan.skipped:
            logger.warning("%s: endpoint %s is disabled; its mappings are skipped", cls.__name__, skipped)
        for prepared in plan.endpoints.values():
            if prepared.verify is False:  # as fire warns: a config meant for a test server, used further
                logger.warning("%s: endpoint '%s' has verify_tls = false: TLS certificates are not checked",
                               cls.__name__, prepared.name)
        cls._moxie_plan = plan  # type: ignore[attr-defined]
        return plan

    @task
    def deliver(self) -> None:
        """The default task: one delivery of an event drawn by weight."""
        self.send_event()

    def send_event(self, event: str | None = None) -> None:
        """Build one delivery (of ``event``, or one drawn by weight) and POST it: for custom tasks.

        An event the class does not name is a mistake in the locustfile, not a failed delivery:
        the run stops with one line and exit 2, as for a mistake in the class's settings.
        """
        try:
            target, delivery = self.moxie_stream.next_delivery(event)
        except MoxiehookError as exc:
            _stop_run(self.environment, f"{type(self).__name__}: {exc}", exc.exit_code)
            raise StopUser() from None
        self.post_delivery(target, delivery)

    def post_delivery(self, target: Target, delivery: Delivery) -> None:
        """POST one delivery with moxiehook's client and report it to Locust as one request.

        The same request ``fire`` sends (the request builder's headers, signed now: a fresh
        ``webhook-timestamp``), over the same client: one deadline per attempt (the endpoint's
        ``timeout``), at most 64 KiB of status line and headers and ``READ_LIMIT`` bytes of body
        read, no redirect followed, a connection reused only after an answer read to its end.
        Locust's ``request`` event gets what its own clients give it, so stats, failures,
        reports and a master's totals count these requests like any other; its ``response`` is
        an ``Answer``, read by listeners as Locust's clients' responses are (``status_code``,
        ``text``, ``content``, ``ok``); with status 0 and no body when no answer came, as theirs.
        """
        endpoint = target.endpoint
        headers, _ = request_headers(endpoint, delivery)
        connections = self._connections(target)
        start_time = time.time()
        started = time.perf_counter()
        response: Answer
        error: str | None
        try:
            response = Answer.of(connections.post(target.url, headers, delivery.body_bytes, endpoint.timeout,
                                                  READ_LIMIT), target.url)
        except TransportError as exc:
            error = no_answer(exc, endpoint.timeout)
            response = Answer.none(target.url)  # as Locust's clients give: status 0, no body
        else:
            error = failure(response.status, target, self.moxie_stream.plan.settings.disable_on)
        elapsed = (time.perf_counter() - started) * 1000
        self.environment.events.request.fire(
            request_type="POST", name=delivery.event, response_time=elapsed,
            response_length=len(response.body),
            exception=None if error is None else CatchResponseError(error),
            context=self.context(), response=response, url=target.url, start_time=start_time)

    def _connections(self, target: Target) -> Connections:
        """This user's keep-alive connections for the target's TLS setting (one set per setting).

        Each user has its own, as each ``fire`` sending thread has: a user waits for no other.
        The TLS context and the proxies are read once per process and shared.
        """
        verify = target.endpoint.verify if uses_tls(target.url) else PLAIN_HTTP
        connections = self._wires.get(verify)
        if connections is None:
            tls = None if verify is PLAIN_HTTP else self.moxie_stream.plan.tls[verify]  # loaded with the plan
            connections = self._wires[verify] = Connections(tls, _proxies())
        return connections


def _check_users(environment: Any, **_: Any) -> None:
    """Check every MoxieUser class before any user starts: a mistake is one line and an exit code.

    Runs where users run (a single process or a worker), not on a master, which sends nothing
    and may not have the config or its variables. Raising in a user's constructor instead would
    let gevent print a traceback for the failed spawn. A worker has already reported ready when
    this runs: it tells the master, which would otherwise give it users and run on without them
    (half the load, exit 0); the master then stops the whole run with the worker's error.
    """
    runner = environment.runner
    if type(runner).__name__ == "MasterRunner":
        main = gevent.getcurrent()  # Locust's main greenlet: it may still be waiting for workers

        def worker_failed(environment: Any, msg: Any, **_: Any) -> None:
            _worker_failed(environment, msg, main)

        runner.register_message(WORKER_FAILED, worker_failed, concurrent=True)
        return
    for user_class in environment.user_classes or ():
        if isinstance(user_class, type) and issubclass(user_class, MoxieUser):
            try:
                user_class.moxie_plan()
            except StopTest as exc:
                code = _exit_codes.get(user_class, 1)
                logger.error("%s", exc)
                if type(runner).__name__ == "WorkerRunner":
                    runner.send_message(WORKER_FAILED, {"error": str(exc), "exit_code": code})
                sys.exit(code)


def _stop_run(environment: Any, message: str, code: int) -> None:
    """A mistake found while the test runs: say it once, and stop the run with ``code``.

    A worker tells the master, which stops every worker with the message (as for a failed
    check at start); a single process quits (from a greenlet of its own: this runs in a user's).
    """
    if _reported:  # every user hits the same mistake: one line, one stop
        return
    _reported.append(message)
    logger.error("%s", message)
    if environment.process_exit_code is None:
        environment.process_exit_code = code
    runner = environment.runner
    if type(runner).__name__ == "WorkerRunner":
        runner.send_message(WORKER_FAILED, {"error": message, "exit_code": code})
    elif runner is not None:
        gevent.spawn(runner.quit)


_reported: list[str] = []  # the mistake that stopped this process's run, once said


WORKER_FAILED = "moxiehook_worker_failed"  # a worker's message to the master: its users cannot run


def _worker_failed(environment: Any, msg: Any, main: Any) -> None:
    """On the master: a worker's MoxieUser check failed. Stop the run with its error and exit code.

    A run under way ends as Locust ends one (``quit``: the workers stop, the summary is
    printed, the exit code is the worker's). A headless master still waiting for its workers
    is in a loop of its own that ``quit`` does not end: it is told to exit.
    """
    data = msg.data if isinstance(msg.data, dict) else {}
    code = data.get("exit_code")
    if not isinstance(code, int) or isinstance(code, bool):
        code = 1
    logger.error("worker %s: %s", msg.node_id, data.get("error", "its users cannot run"))
    if environment.process_exit_code is None:
        environment.process_exit_code = code
    runner = environment.runner
    started = runner.state != STATE_INIT
    runner.quit()
    if not started:
        gevent.kill(main, SystemExit(environment.process_exit_code))


events.init.add_listener(_check_users)  # type: ignore[no-untyped-call]  # locust leaves it untyped


_exit_codes: dict[type, int] = {}  # a user class whose settings are wrong -> the error's exit code
_proxy_settings: list[Proxies] = []


def _proxies() -> Proxies:
    """The proxies the environment asks for, read once per process, as ``fire`` reads them once per run."""
    if not _proxy_settings:
        _proxy_settings.append(Proxies.from_environ())
    return _proxy_settings[0]
