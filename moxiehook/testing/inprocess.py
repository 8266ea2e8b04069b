"""Calling a WSGI or ASGI app in-process: telling them apart, their httpx transports, ``--app``.

A delivery into an app goes through an ``httpx`` transport that calls the app
object directly (no server, no port): ``httpx.WSGITransport`` for WSGI, and for
ASGI ``httpx.ASGITransport`` driven from synchronous code by ``SyncASGITransport``.
The request itself is built by ``moxiehook.send`` as for the network, so the
app sees exactly the headers and body a real delivery carries.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import importlib
import inspect
import logging
import sys
import threading
from collections.abc import Callable, Coroutine
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any, Literal

import httpx

from moxiehook.errors import UsageError
from moxiehook.send import READ_LIMIT, Answer, HttpxSender, judge_answer
from moxiehook.suggest import did_you_mean

AppKind = Literal["wsgi", "asgi"]
ERROR_TEXT_LIMIT = 200  # characters of an app's exception message kept in a record's error
WIND_DOWN_S = 5.0  # at most this long for an ASGI app's leftover tasks to end when the loop closes


def app_kind(app: Any) -> AppKind | None:
    """``"asgi"``, ``"wsgi"``, or None for an object that is neither.

    ASGI: a coroutine function ``async def app(scope, receive, send)``, an
    object whose ``__call__`` is one (FastAPI, Starlette, Quart, Django's
    ``ASGIHandler``), or an ASGI 2 class (``App(scope)`` gives an object with an
    async ``__call__(receive, send)``). Any other callable is taken for WSGI
    (Flask, Django's ``WSGIHandler``, a plain ``def app(environ, start_response)``).
    """
    call = getattr(app, "__call__", None)  # noqa: B004 - the method itself, to tell a coroutine function
    if inspect.isclass(app):
        return "asgi" if inspect.iscoroutinefunction(call) else None
    if not callable(app):
        return None
    if inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(call):
        return "asgi"
    return "wsgi"


def check_app(app: Any, what: str = "app") -> AppKind:
    """``app_kind(app)``, or a ``UsageError`` saying that ``what`` is not an app."""
    kind = app_kind(app)
    if kind is None:
        raise UsageError(f"{what} is {_a(app)}, not a WSGI or ASGI app")
    return kind


def _a(value: Any) -> str:
    name = type(value).__name__
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


class EventLoopThread:
    """An event loop of our own, in a daemon thread, that runs ASGI apps for synchronous callers.

    One loop for every call, whichever thread makes it: an app may keep
    loop-bound objects (locks, queues, clients) between requests. In a thread
    of its own, the loop also serves a caller that is itself inside a running
    loop (an ``async def`` test calling ``moxie.fire``), and serves several
    sending threads at once as an ASGI server would (``fire --app
    --concurrency``). Started on first use; ``close`` stops it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._task_exited = False  # a task of the app raised SystemExit/KeyboardInterrupt out of the loop
        self._in_flight: set[concurrent.futures.Future[Any]] = set()

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float | None) -> Any:
        """The coroutine's result (or its exception); ``TimeoutError`` after ``timeout`` seconds,
        ``ConnectionAbortedError`` when ``cut`` ended it first."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._started())
        with self._lock:
            self._in_flight.add(future)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError from None
        except concurrent.futures.CancelledError:
            raise ConnectionAbortedError("the delivery was cut") from None
        finally:
            with self._lock:
                self._in_flight.discard(future)

    def cut(self) -> None:
        """End every call in flight now (Ctrl-C's grace is over): their tasks are cancelled, as a
        sender's connections are closed."""
        with self._lock:
            futures = list(self._in_flight)
        for future in futures:
            future.cancel()

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._serve, args=(loop,), name="moxiehook-asgi", daemon=True)
                self._thread.start()
                self._loop = loop
            return self._loop

    def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run ``loop`` until ``stop``. A ``SystemExit`` or ``KeyboardInterrupt`` raised in a task the app
        started (not a request: those are carried by ``AppExit``) stops ``run_forever``; the loop goes on
        serving, so later requests are not left waiting for a loop that is gone."""
        while True:
            try:
                loop.run_forever()
                return
            except (SystemExit, KeyboardInterrupt):
                self._task_exited = True

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        # On the loop's own thread: the caller may be inside a loop of its own, where no other can run.
        with contextlib.suppress(concurrent.futures.TimeoutError):  # a task ignoring cancellation: stop anyway
            asyncio.run_coroutine_threadsafe(_wind_down(), loop).result(WIND_DOWN_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        if self._task_exited:
            # The task that died of it reports "exception was never retrieved" when collected: now,
            # not at a random later allocation (CPython 3.11 then fails a compile() under way).
            self._task_exited = False
            gc.collect()


async def _wind_down() -> None:
    """What ``asyncio.run`` does at its end: cancel what is left (an app's background task, a
    request cut at its timeout), let it finish, and close async generators."""
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


class AppExit(Exception):  # noqa: N818 - it carries an exit, it is not one
    """An app's ``SystemExit`` (or ``KeyboardInterrupt``), carried out of the event loop as an ordinary exception.

    Raised in a task, either would stop the loop's thread (asyncio re-raises
    them out of ``run_forever``) and leave the caller waiting for an answer that
    never comes; ``SyncASGITransport`` raises the original again in the
    caller's thread.
    """

    def __init__(self, exit: SystemExit | KeyboardInterrupt) -> None:  # noqa: A002
        super().__init__(exit)
        self.exit = exit


class SyncASGITransport(httpx.BaseTransport):
    """An ASGI app as a synchronous httpx transport: each request runs on ``loop``.

    The app is driven here (not by ``httpx.ASGITransport``, which holds the
    whole answer before returning it): its answer is kept up to ``read_limit``
    bytes, and once past it the app is cancelled, as a sender closes the
    connection (``None``: the whole answer, as a test client reads it). A
    request's ``read`` timeout bounds the app's answer (an app that never
    answers is a timeout, as over the network). An exception the app raises
    propagates, ``SystemExit`` included. No lifespan events are sent: the app
    is called, not served.
    """

    def __init__(self, app: Any, loop: EventLoopThread, read_limit: int | None = None) -> None:
        if inspect.isclass(app):  # ASGI 2: App(scope) is the ASGI 3 callable's first half
            app = _asgi2_to_3(app)
        self._app = app
        self._loop = loop
        self._read_limit = read_limit

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {}).get("read")
        body = request.read()
        try:
            status, headers, content = self._loop.run(self._answer(request, body), timeout)
        except TimeoutError:
            raise httpx.ReadTimeout(f"the app did not answer within {timeout:g} s", request=request) from None
        except ConnectionAbortedError as exc:
            raise httpx.ReadError(str(exc), request=request) from None
        except AppExit as carried:
            raise carried.exit from None
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(content))

    async def _answer(self, request: httpx.Request, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        url = request.url
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": request.method,
            "headers": [(name.lower(), value) for name, value in request.headers.raw],
            "scheme": url.scheme, "path": url.path, "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query, "server": (url.host, url.port), "client": ("127.0.0.1", 123),
            "root_path": "",
        }
        limit = self._read_limit
        answered = asyncio.Event()  # the whole answer came, or as much as is read
        started: list[tuple[int, list[tuple[bytes, bytes]]]] = []
        chunks: list[bytes] = []
        size = 0
        request_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal request_sent
            if not request_sent:
                request_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await answered.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal size
            if message["type"] == "http.response.start":
                started.append((message["status"], list(message.get("headers", []))))
            elif message["type"] == "http.response.body" and started and not answered.is_set():
                chunk = bytes(message.get("body", b""))
                if limit is not None and size + len(chunk) > limit:
                    chunk = chunk[: limit - size]
                chunks.append(chunk)
                size += len(chunk)
                if not message.get("more_body", False) or (limit is not None and size >= limit):
                    answered.set()

        async def call() -> None:
            try:
                await self._app(scope, receive, send)
            except (SystemExit, KeyboardInterrupt) as exc:
                raise AppExit(exc) from exc

        app_task = asyncio.ensure_future(call())
        waiter = asyncio.ensure_future(answered.wait())
        try:
            await asyncio.wait({app_task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not app_task.done() and limit is not None and size >= limit:
                app_task.cancel()  # read enough: hang up, as over the network
                await asyncio.gather(app_task, return_exceptions=True)
            else:
                await app_task  # the app's own end (and its exception, raised after answering)
        finally:
            waiter.cancel()
            if not app_task.done():
                app_task.cancel()
        if not started:
            raise RuntimeError("the ASGI app returned without starting a response")
        status, headers = started[0]
        return status, headers, b"".join(chunks)


def _asgi2_to_3(app_class: Any) -> Callable[..., Coroutine[Any, Any, None]]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await app_class(scope)(receive, send)

    return app


def app_transport(app: Any, loop: EventLoopThread, wsgi_errors: Any = None,
                  read_limit: int | None = None) -> httpx.BaseTransport:
    """The transport that delivers into ``app`` (a WSGI or ASGI app; ``check_app`` first).

    ``wsgi_errors``: the stream a WSGI app logs its errors to (Flask writes an
    exception's traceback there); default ``sys.stderr``, as a server would.
    ``read_limit``: the bytes of an ASGI answer kept (a WSGI answer is an
    iterator, read lazily by whoever reads the response).
    """
    if check_app(app) == "asgi":
        return SyncASGITransport(app, loop, read_limit)
    return httpx.WSGITransport(app=app, wsgi_errors=wsgi_errors)


def no_cookies() -> CookieJar:
    """A cookie jar that keeps nothing: a webhook sender does not send back cookies it was given."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def app_client(app: Any, loop: EventLoopThread, wsgi_errors: Any = None,
               read_limit: int | None = None) -> httpx.Client:
    """An ``httpx.Client`` whose every request is delivered into ``app``."""
    return wire_client(transport=app_transport(app, loop, wsgi_errors, read_limit))


# Headers httpx adds to every request that moxiehook's wire format (built by
# ``moxiehook.send.request_headers``) does not have, and ``fire`` over the network does not send.
HTTPX_DEFAULT_HEADERS = ("Accept", "Accept-Encoding", "Connection")


def wire_client(**options: Any) -> httpx.Client:
    """An ``httpx.Client`` that sends what ``fire`` sends: no redirects, cookies or proxies from
    the environment, and none of httpx's default headers (an app sees the same request a
    receiver gets from ``fire``)."""
    client = httpx.Client(follow_redirects=False, trust_env=False, cookies=no_cookies(), **options)
    for name in HTTPX_DEFAULT_HEADERS:
        del client.headers[name]
    return client


class AppSender:
    """A ``Sender`` (see ``moxiehook.send``) that delivers into a WSGI/ASGI app in-process (``fire --app``).

    Requests go through ``HttpxSender`` over an ``app_client``, so reading and
    judging the answer is the network's code. An app that fails is taken as a
    server takes it, and the reason goes into the delivery's error instead of
    a traceback on the terminal (that would be the server's log, not the
    sender's): an exception raised out of the app is a ``500`` answer with the
    exception's type and message, and so is the exception a framework caught
    and logged before answering 5xx itself (Flask and Django log it with
    ``logging``, with ``exc_info``). What a WSGI app writes to ``wsgi.errors``
    is dropped. Thread-safe.
    """

    def __init__(self, app: Any) -> None:
        self._loop = EventLoopThread()
        self._logged = _LoggedException()
        # Past READ_LIMIT the answer is not read (as over the network); it is never held whole.
        self._client = app_client(app, self._loop, _Discard(), READ_LIMIT + 1)
        self._http = HttpxSender(self._client)
        logging.getLogger().addHandler(self._logged)

    def post(self, url: str, headers: dict[str, str], body: bytes, timeout: float) -> Answer:
        self._logged.clear()
        try:
            answer = self._http.post(url, headers, body, timeout)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - any exception of the app is its 500
            # SystemExit too: an app's sys.exit() ends its request (a server's worker would die and the
            # sender see a 500 or a cut connection), not the run. KeyboardInterrupt is not caught: it is
            # how the user's third Ctrl-C quits a run at once.
            answer = judge_answer(500, {}, "")
            answer.error = f"{answer.error} ({describe_exception(exc)})"
            return answer
        logged = self._logged.last()
        if logged and answer.status is not None and answer.status >= 500:
            answer.error = f"{answer.error} ({logged})"
        return answer

    def cut(self) -> None:
        """Ctrl-C's grace is over: ASGI calls in flight end now (a WSGI call is a plain call, which
        nothing interrupts; the third Ctrl-C quits at once)."""
        self._loop.cut()

    def close(self) -> None:
        logging.getLogger().removeHandler(self._logged)
        self._client.close()
        self._loop.close()


class _LoggedException(logging.Handler):
    """The last exception logged (``exc_info``) in each thread since its ``clear``.

    A WSGI app runs in the thread that sends (``httpx.WSGITransport`` calls it
    directly), so what a sending thread finds here is its own request's.
    """

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self._local.last = describe_exception(record.exc_info[1])

    def clear(self) -> None:
        self._local.last = None

    def last(self) -> str | None:
        return getattr(self._local, "last", None)


class _Discard:
    """A ``wsgi.errors`` stream that keeps nothing."""

    def write(self, text: str) -> int:
        return len(text)

    def writelines(self, lines: Any) -> None:
        pass

    def flush(self) -> None:
        pass


def describe_exception(exc: BaseException) -> str:
    """``ZeroDivisionError: division by zero`` on one line, the message cut at 200 characters."""
    message = " ".join(str(exc).split())
    if len(message) > ERROR_TEXT_LIMIT:
        message = message[: ERROR_TEXT_LIMIT - 1] + "…"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def load_app(spec: str, folder: Path | None = None) -> Any:
    """The app named by ``MODULE:ATTR`` (``ATTR`` may be dotted), imported as uvicorn and flask do.

    ``folder`` (default: the current folder) goes first on ``sys.path``, so
    ``myapp:app`` finds ``./myapp.py``. Raises ``UsageError`` naming the
    problem: no colon, a module that cannot be imported (with the exception
    its import raised), a missing attribute (with a suggestion), or an object
    that is not a WSGI or ASGI app.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise UsageError(f"--app {spec!r}: expected MODULE:ATTR, e.g. --app myapp:app")
    where = str((folder or Path.cwd()).resolve())
    if where not in sys.path:
        sys.path.insert(0, where)
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name or module_name.startswith(f"{exc.name}."):
            raise UsageError(f"--app {spec!r}: no module named {exc.name!r} (looked in {where} and sys.path)") from None
        raise UsageError(f"--app {spec!r}: cannot import module {module_name!r}: {describe_exception(exc)}") from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - whatever the module raises while importing
        raise UsageError(f"--app {spec!r}: cannot import module {module_name!r}: {describe_exception(exc)}") from None
    path = module_name
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            hint = did_you_mean(part, [n for n in dir(target) if not n.startswith("_")], quote=True)
            raise UsageError(f"--app {spec!r}: {path!r} has no attribute {part!r}{hint}") from None
        path = f"{path}:{part}" if path == module_name else f"{path}.{part}"
    check_app(target, f"--app {spec!r}: {attribute!r}")
    return target
