"""The ``moxie`` fixture's object: fire one delivery into an app (or a live server) from a test.

``MoxieFixture.fire`` builds the request with ``moxiehook.send``'s one request
builder (``prepare_endpoint`` → ``request_headers``), from a transient endpoint
made of its ``auth``/``headers``/``signing_secret`` arguments or from an
endpoint of a config file, so a test gets byte for byte what ``fire`` sends.
Unlike ``fire`` it makes one attempt and returns the ``httpx.Response``: no
retries, no log, no disabling; a test wants the first answer, and an exception
raised by the app reaches the test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping as MappingType
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from moxiehook import catalog, ids
from moxiehook.config import (
    Endpoint,
    Settings,
    check_event_name,
    check_url,
    endpoint_to_dict,
    load_config,
    parse_endpoint,
    resolve_config_path,
)
from moxiehook.errors import DataError, NotFoundError, UsageError
from moxiehook.log import encode_body
from moxiehook.send import Delivery, prepare_endpoint, request_headers, tls_context
from moxiehook.suggest import did_you_mean
from moxiehook.testing.inprocess import EventLoopThread, app_transport

APP_ORIGIN = "http://testserver"  # the host an in-process app sees, as in Starlette's and Django's test clients
TRANSIENT_ENDPOINT = "moxie"  # the name of the endpoint made from fire()'s auth/headers/signing_secret


def sample(event: str) -> dict[str, Any]:
    """A fresh copy of ``event``'s built-in sample payload (yours to change)."""
    return catalog.sample(event)


def schema(event: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``event``'s payload."""
    return catalog.schema(event)


class MoxieFixture:
    """What the ``moxie`` fixture gives a test; also usable on its own (``with MoxieFixture() as moxie:``).

    Keeps one transport per app (and a keep-alive one for live servers) and, for
    ASGI apps, one event loop in a thread of its own, until ``close``.
    """

    def __init__(self) -> None:
        self._loop = EventLoopThread()
        self._apps: dict[int, tuple[Any, httpx.BaseTransport]] = {}  # id(app) -> (app, its transport), app kept alive
        self._network: dict[bool | str, httpx.BaseTransport] = {}  # verify setting -> keep-alive transport

    sample = staticmethod(sample)
    schema = staticmethod(schema)

    def fire(
        self,
        event: str,
        *,
        app: Any = None,
        url: str | None = None,
        path: str | None = None,
        data: Any = None,
        set: MappingType[str, Any] | None = None,  # noqa: A002 - the name `fire --set` users know
        vary: bool | int | None = None,
        auth: MappingType[str, Any] | None = None,
        headers: MappingType[str, str] | None = None,
        signing_secret: str | None = None,
        endpoint: str | None = None,
        config: str | Path | None = None,
    ) -> httpx.Response:
        """Send one delivery of ``event`` as ``moxiehook fire`` would, and return the answer.

        - ``app``: a WSGI or ASGI app, called in-process; or ``url``: a live server.
        - ``path``: where in the app (default ``/``, or the path and query of the
          endpoint's mapping of ``event``); with ``url``, it replaces the URL's path.
        - ``data``: the payload (default: the event's sample); ``set``: ``{"a.b": value}``
          overrides, paths as ``fire --set``; ``vary``: a varied payload (``True``, or
          an int seed for the same payload every time).
        - ``auth``: an auth table as in the config, e.g. ``{"type": "bearer", "token": "t"}``;
          ``headers``: custom headers; ``signing_secret``: ``whsec_…`` to sign it.
        - ``endpoint``: take auth, headers, signing secret and the mapped path from this
          endpoint of ``config`` (default: ``$MOXIEHOOK_CONFIG`` or ``./moxiehook.toml``);
          ``auth``/``headers``/``signing_secret`` given too replace the endpoint's.

        ``${VAR}`` in any of them is expanded from the environment. Raises a
        ``MoxiehookError`` subclass for what moxiehook refuses (a missing
        variable, an unknown event without ``data``, a bad auth table); an
        exception raised by the app propagates.
        """
        check_event_name(event)
        target, settings, config_path = self._endpoint(auth, headers, signing_secret, endpoint, config)
        body = self._payload(event, data, set, vary)
        where = self._url(event, app, url, path, target if endpoint is not None else None)
        prepared = prepare_endpoint(target, settings, config_path)
        body_bytes = encode_body(body)
        wire_headers, _ = request_headers(prepared, Delivery(event, where, body, body_bytes, ids.event_id()))
        transport = self._app_transport(app) if app is not None else self._network_transport(prepared.verify)
        request = httpx.Request("POST", where, content=body_bytes, headers=wire_headers,
                                extensions={"timeout": httpx.Timeout(prepared.timeout).as_dict()})
        return _send(transport, request)

    def scenario(self, scenario: str | Path, **options: Any) -> list[httpx.Response]:
        """Fire every step of a scenario (a built-in's name, ``./scenarios/NAME.toml`` or a path) in order,
        and return the responses, one per step; ``options`` as ``fire``'s, plus ``set={"step:path": v}``,
        ``seed``, ``vary``, ``skip`` and ``delays`` (see ``moxiehook.testing.scenarios``)."""
        from moxiehook.testing.scenarios import fire_scenario

        return fire_scenario(self, scenario, **options)

    # -- what to send ------------------------------------------------------------------

    @staticmethod
    def _endpoint(auth: MappingType[str, Any] | None, headers: MappingType[str, str] | None,
                  signing_secret: str | None, endpoint: str | None,
                  config: str | Path | None) -> tuple[Endpoint, Settings, Path | None]:
        """The endpoint to send as, validated like the config's, its settings, and the config's path."""
        table: dict[str, Any] = {}
        settings, config_path, name = Settings(), None, TRANSIENT_ENDPOINT
        if endpoint is not None or config is not None:
            config_path = resolve_config_path(config)
            loaded = load_config(config_path)
            settings = loaded.settings
            if endpoint is not None:
                name, table = endpoint, endpoint_to_dict(loaded.endpoint(endpoint))
        given = {"auth": auth, "headers": headers, "signing_secret": signing_secret}
        table.update({key: _plain(value) for key, value in given.items() if value is not None})
        return parse_endpoint(name, table, "" if endpoint is None else None), settings, config_path

    @staticmethod
    def _payload(event: str, data: Any, overrides: MappingType[str, Any] | None, vary: bool | int | None) -> Any:
        """The body: ``data`` or the sample, varied when asked, with the ``set`` values (on a copy)."""
        if data is None and not catalog.is_known(event):
            raise UsageError(f"event {event!r} is not in the catalog, so it has no sample: pass data=…"
                             f"{did_you_mean(event, catalog.names())}")
        if overrides is not None and not isinstance(overrides, MappingType):
            raise UsageError(f"set= takes a dict of {{path: value}}, not {type(overrides).__name__}")
        # Each value goes through JSON, so the payload holds exactly what it would hold sent and read back;
        # strict JSON: no NaN or infinity, no lone surrogate (see catalog.check_json).
        assignments = [catalog.parse_assignment(f"{key}={_json(value, f'set[{key!r}]')}")
                       for key, value in (overrides or {}).items()]
        if data is not None:
            _json(data, "data")
        base = catalog.sample(event) if data is None else data
        if vary is None or vary is False:
            return catalog.apply_overrides(base, assignments)  # leaves `data` as it was
        if not isinstance(vary, int):
            raise UsageError(f"vary= takes True or an int seed, not {type(vary).__name__}")
        seed = catalog.new_seed() if vary is True else vary
        # `data` is varied by its own shape, as `fire --vary --data` varies it.
        schema = catalog.schema(event) if data is None else None
        return next(catalog.varied(base, seed, assignments, schema=schema))

    def _url(self, event: str, app: Any, url: str | None, path: str | None, endpoint: Endpoint | None) -> str:
        """The URL to POST to: the app's or ``url``'s origin, with ``path`` or ``endpoint``'s mapped path."""
        if (app is None) == (url is None):
            raise UsageError("moxie.fire needs app= (a WSGI or ASGI app, called in-process) or url= "
                             "(a live server), and not both")
        base = APP_ORIGIN if url is None else check_url(url, "url")
        parts = urlsplit(base)
        if path is None and endpoint is not None and parts.path in ("", "/"):
            path = _mapped_path(event, endpoint)
        if path is None:
            return base if parts.path else base + "/"
        if not path.startswith("/"):
            raise UsageError(f"path {path!r} must start with '/'")
        route = urlsplit(path)
        return urlunsplit((parts.scheme, parts.netloc, route.path, route.query, ""))

    # -- how to send it ----------------------------------------------------------------

    def _app_transport(self, app: Any) -> httpx.BaseTransport:
        known = self._apps.get(id(app))
        if known is None or known[0] is not app:
            known = self._apps[id(app)] = (app, app_transport(app, self._loop))
        return known[1]

    def _network_transport(self, verify: bool | str) -> httpx.BaseTransport:
        transport = self._network.get(verify)
        if transport is None:
            transport = self._network[verify] = httpx.HTTPTransport(verify=tls_context(verify), trust_env=False)
        return transport

    def close(self) -> None:
        """Close every transport and stop the ASGI event loop."""
        for _, transport in self._apps.values():
            transport.close()
        for transport in self._network.values():
            transport.close()
        self._apps.clear()
        self._network.clear()
        self._loop.close()

    def __enter__(self) -> MoxieFixture:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def fire(event: str, **options: Any) -> httpx.Response:
    """One delivery, as ``MoxieFixture().fire(event, **options)``, without keeping anything open."""
    with MoxieFixture() as moxie:
        return moxie.fire(event, **options)


def _send(transport: httpx.BaseTransport, request: httpx.Request) -> httpx.Response:
    """``request`` through ``transport``, its answer read whole: the request as built, nothing added.

    No ``httpx.Client`` in between: it would add its default headers, keep
    cookies and follow redirects, none of which a webhook sender does (and it
    would cost more than the app itself takes to answer).
    """
    started = time.perf_counter()
    response = transport.handle_request(request)
    response.request = request
    try:
        response.read()
    finally:
        response.close()
    response.elapsed = timedelta(seconds=time.perf_counter() - started)
    return response


def _mapped_path(event: str, endpoint: Endpoint) -> str:
    """The path and query of ``endpoint``'s one mapping of ``event``."""
    urls = [m.url for m in endpoint.mappings if m.event == event]
    if not urls:
        raise NotFoundError(f"endpoint {endpoint.name!r} has no mapping for {event}: pass path=…")
    if len(urls) > 1:
        raise UsageError(f"endpoint {endpoint.name!r} maps {event} to {len(urls)} URLs "
                         f"({', '.join(urls)}): pass path=… to choose one")
    parts = urlsplit(urls[0])
    return urlunsplit(("", "", parts.path or "/", parts.query, ""))


def _plain(value: Any) -> Any:
    """A mapping as a plain dict (the config parser checks dicts); anything else as is."""
    return dict(value) if isinstance(value, MappingType) else value


def _json(value: Any, what: str) -> str:
    """``value`` as strict JSON text, or ``DataError`` naming ``what`` and the place in it."""
    catalog.check_json(value, what, "the value")
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise DataError(f"{what} is not JSON: {exc}") from None
