"""The ``moxie`` fixture: deliveries into real Flask and FastAPI apps, plain WSGI/ASGI callables, live servers.

The fixture comes from moxiehook's pytest plugin (installed with the package),
exactly as a user's test suite gets it. The apps are real: they check the
bearer token and verify Standard Webhooks signatures with the
``standardwebhooks`` package, as a receiver in production would.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks
from fastapi import FastAPI, HTTPException
from fastapi import Request as FastAPIRequest
from flask import Flask, jsonify, request
from jsonschema import Draft202012Validator

from moxiehook.errors import ConfigError, MissingVariableError, MoxiehookError, NotFoundError, UsageError
from moxiehook.testing import MoxieFixture, app_kind, fire, sample

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # Standard Webhooks' own example secret
TOKEN = "s3cret-token"
AUTH = {"type": "bearer", "token": TOKEN}


def make_flask_app() -> Flask:
    app = Flask(__name__)

    @app.post("/hooks/clients")
    def clients() -> Any:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return jsonify(error="bad token"), 401
        if "webhook-signature" in request.headers:
            try:
                standardwebhooks.Webhook(SECRET).verify(request.get_data(), dict(request.headers))
            except standardwebhooks.WebhookVerificationError as exc:
                return jsonify(error=str(exc)), 400
        client = request.get_json()
        return jsonify(received=request.headers["X-Event-Type"], name=client["name"],
                       origin=request.headers["X-Event-Origin"], query=request.args.to_dict(),
                       signed="webhook-signature" in request.headers)

    @app.post("/boom")
    def boom() -> Any:
        raise ZeroDivisionError("division by zero")

    return app


def make_fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.post("/hooks/clients")
    async def clients(req: FastAPIRequest) -> dict[str, Any]:
        if req.headers.get("authorization") != f"Bearer {TOKEN}":
            raise HTTPException(status_code=401, detail="bad token")
        body = await req.body()
        if "webhook-signature" in req.headers:
            try:
                standardwebhooks.Webhook(SECRET).verify(body, dict(req.headers))
            except standardwebhooks.WebhookVerificationError as exc:
                raise HTTPException(status_code=400, detail=str(exc)) from None
        client = json.loads(body)
        return {"received": req.headers["x-event-type"], "name": client["name"],
                "signed": "webhook-signature" in req.headers, "loop": id(asyncio.get_running_loop())}

    @app.post("/boom")
    async def boom() -> None:
        raise KeyError("no such client")

    return app


FRAMEWORKS = {"flask": make_flask_app, "fastapi": make_fastapi_app}


@pytest.fixture(params=list(FRAMEWORKS))
def framework_app(request: pytest.FixtureRequest) -> Any:
    return FRAMEWORKS[request.param]()


# ---------------------------------------------------------------------------
# Flask and FastAPI


def test_auth_accepted_and_the_apps_json_answer_is_readable(moxie, framework_app) -> None:
    response = moxie.fire("ClientCreate", app=framework_app, path="/hooks/clients", auth=AUTH,
                          set={"name": "Acme Ltd"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["received"], answer["name"], answer["signed"]) == ("ClientCreate", "Acme Ltd", False)


def test_a_wrong_token_is_refused_by_the_app(moxie, framework_app) -> None:
    response = moxie.fire("ClientCreate", app=framework_app, path="/hooks/clients",
                          auth={"type": "bearer", "token": "wrong"})
    assert response.status_code == 401
    assert moxie.fire("ClientCreate", app=framework_app, path="/hooks/clients").status_code == 401  # no auth at all


def test_a_signed_delivery_is_verified_by_standardwebhooks_in_the_app(moxie, framework_app) -> None:
    response = moxie.fire("ClientCreate", app=framework_app, path="/hooks/clients", auth=AUTH,
                          signing_secret=SECRET)
    assert response.status_code == 200, response.text
    assert response.json()["signed"] is True


def test_a_signature_made_with_another_secret_is_refused_by_the_app(moxie, framework_app) -> None:
    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"  # 24 other bytes
    response = moxie.fire("ClientCreate", app=framework_app, path="/hooks/clients", auth=AUTH,
                          signing_secret=other)
    assert response.status_code == 400
    assert "signature" in response.text.lower()


def test_the_query_of_path_reaches_the_app(moxie) -> None:
    response = moxie.fire("ClientCreate", app=make_flask_app(), path="/hooks/clients?tenant=7", auth=AUTH)
    assert response.json()["query"] == {"tenant": "7"}
    assert response.request.url == "http://testserver/hooks/clients?tenant=7"


def test_an_exception_raised_by_the_app_reaches_the_test(moxie) -> None:
    with pytest.raises(KeyError, match="no such client"):
        moxie.fire("ClientCreate", app=make_fastapi_app(), path="/boom")

    def raising_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise LookupError("no such route")

    with pytest.raises(LookupError, match="no such route"):
        moxie.fire("ClientCreate", app=raising_wsgi)


def test_an_asgi_app_keeps_one_event_loop_across_deliveries(moxie) -> None:
    app = make_fastapi_app()
    loops = {moxie.fire("ClientCreate", app=app, path="/hooks/clients", auth=AUTH).json()["loop"] for _ in range(3)}
    assert len(loops) == 1


# ---------------------------------------------------------------------------
# plain callables, and a caller inside a running loop


def plain_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.loads(environ["wsgi.input"].read(length))
    start_response("202 Accepted", [("Content-Type", "application/json")])
    return [json.dumps({"type": environ["HTTP_X_EVENT_TYPE"], "id": body["id"],
                        "path": environ["PATH_INFO"]}).encode()]


async def plain_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"  # no lifespan events
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    headers = dict(scope["headers"])
    answer = json.dumps({"type": headers[b"x-event-type"].decode(), "length": len(b"".join(chunks)),
                         "path": scope["path"]}).encode()
    await send({"type": "http.response.start", "status": 202, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": answer})


class Asgi2App:
    """An ASGI 2 app: the class is called with the scope, the instance with receive and send."""

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        await plain_asgi(self.scope, receive, send)


class AsgiInstance:
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await plain_asgi(scope, receive, send)


def test_apps_are_told_apart() -> None:
    assert app_kind(plain_wsgi) == "wsgi"
    assert app_kind(make_flask_app()) == "wsgi"
    assert app_kind(plain_asgi) == "asgi"
    assert app_kind(AsgiInstance()) == "asgi"
    assert app_kind(Asgi2App) == "asgi"
    assert app_kind(make_fastapi_app()) == "asgi"
    assert app_kind({"not": "an app"}) is None
    assert app_kind(str) is None  # a class without an async __call__


def test_a_plain_wsgi_callable(moxie) -> None:
    response = moxie.fire("MeetingScheduled", app=plain_wsgi, path="/meetings")
    assert response.status_code == 202
    assert response.json() == {"type": "MeetingScheduled", "id": sample("MeetingScheduled")["id"], "path": "/meetings"}


@pytest.mark.parametrize("app", [plain_asgi, AsgiInstance(), Asgi2App], ids=["function", "instance", "asgi2-class"])
def test_a_plain_asgi_callable(moxie, app: Any) -> None:
    response = moxie.fire("ClientCreate", app=app)
    assert response.status_code == 202
    answer = response.json()
    assert (answer["type"], answer["path"]) == ("ClientCreate", "/")
    assert answer["length"] == len(response.request.content)


def test_asgi_from_inside_a_running_event_loop(moxie) -> None:
    """A test that is itself a coroutine (pytest-asyncio, anyio) can call moxie.fire synchronously."""

    async def inside() -> tuple[int, int]:
        response = moxie.fire("ClientCreate", app=plain_asgi)
        other = moxie.fire("ClientCreate", app=make_fastapi_app(), path="/hooks/clients", auth=AUTH)
        return response.status_code, other.status_code

    assert asyncio.run(inside()) == (202, 200)

    async def own_fixture() -> int:
        with MoxieFixture() as mine:  # started and closed inside the running loop
            return mine.fire("ClientCreate", app=plain_asgi).status_code

    assert asyncio.run(own_fixture()) == 202


def test_closing_cancels_what_an_asgi_app_left_running() -> None:
    """A task an app started (a background job) is cancelled and ends when the fixture closes."""
    ended: list[str] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            ended.append("cancelled")
            raise

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        app.tasks = [asyncio.get_running_loop().create_task(forever())]  # type: ignore[attr-defined]
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with MoxieFixture() as moxie:
        assert moxie.fire("ClientCreate", app=app).status_code == 202
    assert ended == ["cancelled"]


def test_fire_with_its_own_fixture_object_closes_its_event_loop() -> None:
    before = {t.name for t in threading.enumerate()}
    assert fire("ClientCreate", app=plain_asgi).status_code == 202
    with MoxieFixture() as moxie:
        assert moxie.fire("ClientCreate", app=plain_asgi).status_code == 202
    assert "moxiehook-asgi" not in {t.name for t in threading.enumerate()} - before


# ---------------------------------------------------------------------------
# the same request as the CLI's, live servers, config files


def test_sends_what_fire_sends(moxie, cli, config_path: Path, receiver) -> None:
    """The CLI over the network and the fixture at a live server: same headers, same body."""
    config_path.write_text(config_path.read_text() + f"""
[endpoints.crm]
auth = {{ type = "bearer", token = "{TOKEN}" }}
headers = {{ "X-Team" = "ops" }}
[[endpoints.crm.mappings]]
event = "ClientCreate"
url = "{receiver.url('/cli')}"
""")
    assert cli("fire", "ClientCreate").exit_code == 0
    response = moxie.fire("ClientCreate", url=receiver.url("/fixture"), auth=AUTH, headers={"X-Team": "ops"})
    assert response.status_code == 200 and response.text == "ok"
    by_cli, by_fixture = receiver.requests_to("/cli")[0], receiver.requests_to("/fixture")[0]
    assert by_fixture.headers == by_cli.headers
    assert by_fixture.body == by_cli.body


def test_endpoint_and_config_give_auth_headers_signing_and_the_mapped_path(
        moxie, config_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_path.write_text(config_path.read_text() + """
[endpoints.crm]
auth = { type = "bearer", token = "${CRM_TOKEN}" }
signing_secret = "${CRM_SECRET}"
[[endpoints.crm.mappings]]
event = "ClientCreate"
url = "https://crm.example.com/hooks/clients?tenant=7"
""")
    monkeypatch.setenv("CRM_TOKEN", TOKEN)
    monkeypatch.setenv("CRM_SECRET", SECRET)
    response = moxie.fire("ClientCreate", app=make_flask_app(), endpoint="crm", config=config_path)
    assert response.status_code == 200, response.text
    assert response.json()["signed"] is True and response.json()["query"] == {"tenant": "7"}
    assert response.request.url == "http://testserver/hooks/clients?tenant=7"
    # An explicit path wins over the mapping's; an explicit auth table over the endpoint's.
    assert moxie.fire("ClientCreate", app=plain_wsgi, endpoint="crm", config=config_path,
                      path="/other").json()["path"] == "/other"
    assert moxie.fire("ClientCreate", app=make_flask_app(), endpoint="crm", config=config_path,
                      auth={"type": "bearer", "token": "old"}).status_code == 401


def test_the_config_is_found_as_the_cli_finds_it(moxie, config_path: Path) -> None:
    """./moxiehook.toml, the current folder being the test's own; an endpoint may be called anything."""
    config_path.write_text(config_path.read_text() + """
[endpoints.moxie]
auth = { type = "custom", header = "X-Api-Key", value = "k3y" }
[[endpoints.moxie.mappings]]
event = "ClientCreate"
url = "http://crm.example.com/hooks"
""")
    seen: dict[str, str] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(key=environ.get("HTTP_X_API_KEY", ""), path=environ["PATH_INFO"])
        start_response("204 No Content", [])
        return []

    assert moxie.fire("ClientCreate", app=app, endpoint="moxie").status_code == 204
    assert seen == {"key": "k3y", "path": "/hooks"}


def test_sample_is_a_fresh_copy_every_time(moxie) -> None:
    first = moxie.sample("ClientCreate")
    first["name"] = "changed"
    assert moxie.sample("ClientCreate")["name"] != "changed"
    data = {"name": "mine"}
    moxie.fire("ClientCreate", app=plain_asgi, data=data, set={"name": "set"})
    assert data == {"name": "mine"}  # set= works on a copy


def body_of(response: Any) -> Any:
    return json.loads(response.request.content)


def test_schema_is_the_events_schema_and_the_sample_fits_it(moxie) -> None:
    schema = moxie.schema("InvoiceSent")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    validator.validate(moxie.sample("InvoiceSent"))
    with pytest.raises(NotFoundError, match="InvoicePayed"):
        moxie.schema("InvoicePayed")


def test_vary_sends_a_different_schema_valid_payload_and_a_seed_repeats_it(moxie) -> None:
    validator = Draft202012Validator(moxie.schema("ClientCreate"), format_checker=Draft202012Validator.FORMAT_CHECKER)
    drawn = [body_of(moxie.fire("ClientCreate", app=plain_asgi, vary=True)) for _ in range(5)]
    for body in drawn:
        assert not list(validator.iter_errors(body)), body
    assert len({json.dumps(body, sort_keys=True) for body in drawn}) == 5
    assert body_of(moxie.fire("ClientCreate", app=plain_asgi, vary=7)) == \
        body_of(moxie.fire("ClientCreate", app=plain_asgi, vary=7))
    assert body_of(moxie.fire("ClientCreate", app=plain_asgi, vary=0)) != moxie.sample("ClientCreate")  # 0 is a seed


def test_set_wins_over_a_varied_payload_and_data_can_be_varied(moxie) -> None:
    overrides = {"name": "Fixed", "contacts[0].email": "a@b.c"}
    body = body_of(moxie.fire("ClientCreate", app=plain_asgi, vary=3, set=overrides))
    assert (body["name"], body["contacts"][0]["email"]) == ("Fixed", "a@b.c")
    mine = {"id": "inv_1", "amount": 12.5, "lines": [{"sku": "a"}]}
    varied = body_of(moxie.fire("InvoicePayed", app=plain_asgi, data=mine, vary=3))
    assert set(varied) == set(mine) and varied != mine
    assert mine == {"id": "inv_1", "amount": 12.5, "lines": [{"sku": "a"}]}  # the caller's data is untouched


# ---------------------------------------------------------------------------
# what moxiehook refuses: MoxiehookError subclasses with a clear message, nothing sent


def test_a_missing_variable_is_named(moxie, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(MissingVariableError, match="NOT_SET_ANYWHERE"):
        moxie.fire("ClientCreate", app=plain_wsgi, auth={"type": "bearer", "token": "${NOT_SET_ANYWHERE}"})


def test_an_unknown_event_without_data_needs_data(moxie) -> None:
    with pytest.raises(UsageError, match=r"'InvoicePayed' is not in the catalog.*pass data="):
        moxie.fire("InvoicePayed", app=plain_wsgi)
    with pytest.raises(UsageError, match="did you mean ClientCreate"):
        moxie.fire("ClientCreat", app=plain_wsgi)
    assert moxie.fire("InvoicePayed", app=plain_wsgi, data={"id": "inv_1"}).status_code == 202  # with data, fine


@pytest.mark.parametrize(("auth", "message"), [
    ({"type": "bearer"}, "auth.token: required for auth type 'bearer'"),
    ({"type": "oauth", "token": "t"}, "auth.type: unknown auth type 'oauth'"),
    ({"type": "bearer", "token": "t", "tokn": "t"}, "auth.tokn: unknown key"),
    ({"type": "basic", "username": "a:b", "password": "p"}, "auth.username: a basic-auth username cannot contain ':'"),
    ({"type": "bearer", "token": 42}, "auth.token: expected a string, got an integer"),
    ("Bearer t", "auth: expected a table, got a string"),
])
def test_a_bad_auth_table_is_refused_like_in_the_config(moxie, auth: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        moxie.fire("ClientCreate", app=plain_wsgi, auth=auth)
    assert str(caught.value) == message or str(caught.value).startswith(message)


@pytest.mark.parametrize(("options", "error", "message"), [
    ({}, UsageError, "needs app= .* or url="),
    ({"app": plain_wsgi, "url": "http://127.0.0.1:9/"}, UsageError, "and not both"),
    ({"app": {"not": "an app"}}, UsageError, "is a dict, not a WSGI or ASGI app"),
    ({"url": "ftp://example.com/"}, ConfigError, "must start with http:// or https://"),
    ({"app": plain_wsgi, "path": "hooks"}, UsageError, "must start with '/'"),
    ({"app": plain_wsgi, "headers": {"X-Event-Type": "x"}}, ConfigError, "set by moxiehook"),
    ({"app": plain_wsgi, "signing_secret": "nope"}, ConfigError, "starts with 'whsec_'"),
    ({"app": plain_wsgi, "data": {"amount": float("nan")}}, MoxiehookError, "not JSON"),
    ({"app": plain_wsgi, "set": {"name.first": "A"}}, MoxiehookError, "name is a string, not an object"),
    ({"app": plain_wsgi, "endpoint": "crm", "config": "missing.toml"}, MoxiehookError, "missing.toml"),
    ({"app": plain_wsgi, "vary": "yes"}, UsageError, "vary= takes True or an int seed, not str"),
    ({"app": plain_wsgi, "set": ["name=x"]}, UsageError, r"set= takes a dict of \{path: value\}, not list"),
    ({"app": plain_wsgi, "set": {"contacts[99].email": "x"}}, MoxiehookError, r"contacts\[99\]"),
])
def test_bad_arguments_raise_moxiehook_errors(moxie, options: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        moxie.fire("ClientCreate", **options)


def test_an_unknown_endpoint_or_a_missing_mapping_is_named(moxie, config_path: Path) -> None:
    config_path.write_text(config_path.read_text() + """
[endpoints.crm]
[[endpoints.crm.mappings]]
event = "ClientCreate"
url = "http://crm.example.com/a"
[[endpoints.crm.mappings]]
event = "ClientCreate"
url = "http://crm.example.com/b"
""")
    with pytest.raises(NotFoundError, match="unknown endpoint 'CRM'.*did you mean 'crm'"):
        moxie.fire("ClientCreate", app=plain_wsgi, endpoint="CRM", config=config_path)
    with pytest.raises(NotFoundError, match="no mapping for ClientUpdate: pass path="):
        moxie.fire("ClientUpdate", app=plain_wsgi, endpoint="crm", config=config_path)
    with pytest.raises(UsageError, match="maps ClientCreate to 2 URLs"):
        moxie.fire("ClientCreate", app=plain_wsgi, endpoint="crm", config=config_path)
    assert moxie.fire("ClientCreate", app=plain_wsgi, endpoint="crm", config=config_path,
                      path="/b").status_code == 202
