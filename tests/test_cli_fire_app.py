"""``fire EVENT --app MODULE:ATTR``: deliveries into a WSGI/ASGI app in-process, logged as a network run's.

The apps are real modules written into the test's folder (the current folder,
from which ``--app`` imports, as uvicorn and flask do), with real Flask and
FastAPI apps among them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_moxiehook
from tests.test_load import ran_as_asked

FLASK_APP = """
from flask import Flask, request

app = Flask(__name__)
received = []

@app.post("/hooks/clients")
def clients():
    received.append({"path": request.path, "query": request.query_string.decode(), "host": request.host,
                     "auth": request.headers.get("Authorization"), "type": request.headers["X-Event-Type"],
                     "name": request.get_json()["name"]})
    if request.headers.get("Authorization") != "Bearer t0ken":
        return {"error": "bad token"}, 401
    return {"ok": True}

@app.post("/boom")
def boom():
    return 1 / 0

def raw_wsgi(environ, start_response):
    return 1 / 0

not_an_app = {"routes": []}
"""

FASTAPI_APP = """
from fastapi import FastAPI

app = FastAPI()

@app.post("/hooks/clients")
async def clients():
    return {"ok": True}

@app.post("/boom")
async def boom():
    raise KeyError("no such client")
"""


def config_with(config_path: Path, *mappings: tuple[str, str], token: str = "t0ken") -> None:
    text = config_path.read_text() + f'\n[endpoints.crm]\nauth = {{ type = "bearer", token = "{token}" }}\n'
    for event, url in mappings:
        text += f'[[endpoints.crm.mappings]]\nevent = "{event}"\nurl = "{url}"\n'
    config_path.write_text(text)


@pytest.fixture
def app_module(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Write an app module into the current folder under a fresh name; forget it afterwards.

    ``fire --app`` runs in this process (typer's runner), so each test's module
    gets a name of its own, and leaves neither ``sys.modules`` nor ``sys.path`` changed.
    """
    names: list[str] = []
    path_before = list(sys.path)

    def write(source: str) -> str:
        name = f"hookapp_{uuid.uuid4().hex[:12]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)
    sys.path[:] = path_before


def records(config_path: Path) -> list[dict[str, Any]]:
    log = config_path.parent / "log.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_each_mapping_is_delivered_into_the_app_with_its_path_and_query_and_logged(
        cli, config_path: Path, app_module) -> None:
    module = app_module(FLASK_APP)
    config_with(config_path, ("ClientCreate", "https://crm.example.com/hooks/clients?tenant=7"),
                ("ClientCreate", "http://other.example.com/hooks/clients"))
    result = cli("fire", "ClientCreate", "--app", f"{module}:app", "--set", "name=Acme")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.strip().startswith("2 delivered, 0 failed, 0 skipped · ")
    assert len(result.stderr.strip().splitlines()) == 1
    received = sys.modules[module].received
    assert sorted((r["host"], r["path"], r["query"]) for r in received) == [
        ("crm.example.com", "/hooks/clients", "tenant=7"), ("other.example.com", "/hooks/clients", "")]
    assert {(r["auth"], r["type"], r["name"]) for r in received} == {("Bearer t0ken", "ClientCreate", "Acme")}
    logged = records(config_path)
    assert [(r["outcome"], r["status"], r["mode"]) for r in logged] == [("delivered", 200, "app")] * 2
    assert {r["url"] for r in logged} == {"https://crm.example.com/hooks/clients?tenant=7",
                                          "http://other.example.com/hooks/clients"}
    assert logged[0]["request"]["headers"]["Authorization"] == "***"
    assert json.loads(logged[0]["response"]["body"]) == {"ok": True}


def test_an_answer_in_disable_on_disables_the_endpoint_as_over_the_network(cli, config_path: Path, app_module) -> None:
    module = app_module(FLASK_APP)
    config_with(config_path, ("ClientCreate", "https://crm.example.com/hooks/clients"), token="old")
    result = cli("fire", "ClientCreate", "--app", f"{module}:app")
    assert result.exit_code == 1
    assert "endpoint 'crm' was disabled: HTTP 401 Unauthorized" in result.stderr
    assert cli("endpoint", "status", "crm").exit_code == 1
    assert [r.get("action") or r["outcome"] for r in records(config_path)] == ["failed", "disabled"]


@pytest.mark.parametrize(("source", "attribute", "raised"), [
    (FLASK_APP, "app", "ZeroDivisionError: division by zero"),  # Flask answers 500 and logs the exception
    (FLASK_APP, "raw_wsgi", "ZeroDivisionError: division by zero"),  # raised out of the WSGI callable
    (FASTAPI_APP, "app", "KeyError: 'no such client'"),  # Starlette answers 500 and re-raises
], ids=["flask", "plain-wsgi", "fastapi"])
def test_an_app_that_raises_is_a_failed_500_with_the_exception_not_a_traceback(
        cli, config_path: Path, app_module, source: str, attribute: str, raised: str) -> None:
    module = app_module(source)
    config_with(config_path, ("ClientCreate", "https://crm.example.com/boom"))
    result = cli("fire", "ClientCreate", "--app", f"{module}:{attribute}")
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr + result.stdout
    [record] = records(config_path)
    assert result.stderr.splitlines() == [
        f"✗ crm · ClientCreate · https://crm.example.com/boom · {record['error']}",
        f"  details: moxiehook --config {config_path} logs show {record['id']}",
        result.stderr.splitlines()[-1],
    ]
    assert result.stderr.splitlines()[-1].startswith("0 delivered, 1 failed, 0 skipped · ")
    assert (record["outcome"], record["status"]) == ("failed", 500)
    assert record["error"] == f"HTTP 500 Internal Server Error ({raised}) (after 3 attempts)"
    assert len(record["attempts"]) == 3  # retried like a 500 from a server
    assert cli("endpoint", "status", "crm").exit_code == 0  # a 5xx does not disable


def test_an_asgi_app_with_several_senders(cli, config_path: Path, app_module) -> None:
    module = app_module(FASTAPI_APP)
    config_with(config_path, ("ClientCreate", "https://crm.example.com/hooks/clients"))
    result = cli("fire", "ClientCreate", "--app", f"{module}:app", "--count", "40", "--concurrency", "4", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["delivered"] == 40
    assert len({r["event_id"] for r in records(config_path)}) == 40


@pytest.mark.parametrize(("spec", "message"), [
    ("{m}", "--app '{m}': expected MODULE:ATTR, e.g. --app myapp:app"),
    (":app", "--app ':app': expected MODULE:ATTR"),
    ("no_such_module_here:app", "--app 'no_such_module_here:app': no module named 'no_such_module_here'"),
    ("{m}:ap", "--app '{m}:ap': '{m}' has no attribute 'ap' (did you mean 'app'?)"),
    ("{m}:app.routes_x", "'{m}:app' has no attribute 'routes_x'"),
    ("{m}:not_an_app", "--app '{m}:not_an_app': 'not_an_app' is a dict, not a WSGI or ASGI app"),
    ("{broken}:app", "--app '{broken}:app': cannot import module '{broken}': ZeroDivisionError: division by zero"),
    ("{syntax}:app", "cannot import module '{syntax}': SyntaxError"),
    ("{needs}:app", "cannot import module '{needs}': ModuleNotFoundError: No module named 'not_installed_x'"),
])
def test_a_bad_app_is_exit_2_with_one_error_line_naming_it(rejected, config_path: Path, app_module, spec: str,
                                                            message: str) -> None:
    names = {"m": app_module(FLASK_APP), "broken": app_module("x = 1 / 0\n"),
             "syntax": app_module("def app(:\n"), "needs": app_module("import not_installed_x\n")}
    config_with(config_path, ("ClientCreate", "https://crm.example.com/hooks/clients"))
    rejected("fire", "ClientCreate", "--app", spec.format(**names), match=message.format(**names))
    assert not (config_path.parent / "log.jsonl").exists()  # nothing sent, nothing logged


def test_the_app_is_imported_from_the_current_folder_by_a_real_process(tmp_path: Path, config_path: Path) -> None:
    (tmp_path / "receiver_app.py").write_text(textwrap.dedent(FLASK_APP))
    config_with(config_path, ("ClientCreate", "https://crm.example.com/hooks/clients"))
    result = run_moxiehook("--config", str(config_path), "fire", "ClientCreate", "--app", "receiver_app:app",
                           cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [(r["outcome"], r["status"]) for r in records(config_path)] == [("delivered", 200)]


def test_an_asgi_app_that_does_not_answer_in_time_is_a_timeout(cli, config_path: Path, app_module) -> None:
    module = app_module("""
        import asyncio

        async def app(scope, receive, send):
            await asyncio.sleep(30)
    """)
    config_with(config_path, ("ClientCreate", "https://crm.example.com/hooks/clients"))
    config_path.write_text(config_path.read_text().replace("[endpoints.crm]\n", "[endpoints.crm]\ntimeout = 0.2\n"))
    result = cli("fire", "ClientCreate", "--app", f"{module}:app")
    assert result.exit_code == 1
    [record] = records(config_path)
    assert (record["outcome"], record["status"]) == ("failed", None)
    assert record["error"] == "timeout: no answer within 0.2 s (after 3 attempts)"


def test_a_wsgi_app_called_from_several_sending_threads(cli, config_path: Path, app_module) -> None:
    module = app_module(FLASK_APP)
    config_with(config_path, ("ClientCreate", "https://crm.example.com/hooks/clients"))
    result = cli("fire", "ClientCreate", "--app", f"{module}:app", "--count", "200", "--concurrency", "8")
    assert result.exit_code == 0, result.stderr
    assert len(sys.modules[module].received) == 200
    assert [r["outcome"] for r in records(config_path)] == ["delivered"] * 200


def test_a_load_run_into_an_app(cli, config_path: Path, app_module) -> None:
    """--rate/--duration with --app: the schedule's deliveries go into the app, logged as mode=app
    (a load record would be replayed over the network, to the mapping's real URL)."""
    module = app_module(FLASK_APP)
    config_with(config_path, ("ClientCreate", "https://crm.example.com/hooks/clients"))
    result = cli("fire", "ClientCreate", "--app", f"{module}:app", "--rate", "40", "--duration", "0.5s", "--json")
    assert ran_as_asked(result.exit_code, result.stderr), result.stderr  # a busy machine may miss the rate
    report = json.loads(result.stdout)["load"]
    logged = records(config_path)
    assert report["sent"] == len(logged) == len(sys.modules[module].received) == 20
    assert {(r["mode"], r["outcome"], r["status"]) for r in logged} == {("app", "delivered", 200)}


def test_fire_app_json_shows_the_records_as_app_with_the_mapped_url(cli, config_path: Path, app_module) -> None:
    module = app_module(FLASK_APP)
    config_with(config_path, ("ClientCreate", "https://crm.example.com/hooks/clients?tenant=7"))
    result = cli("fire", "ClientCreate", "--app", f"{module}:app", "--json")
    assert result.exit_code == 0, result.stderr
    [shown] = json.loads(result.stdout)["deliveries"]
    [logged] = records(config_path)
    assert (shown["mode"], shown["url"]) == (logged["mode"], logged["url"]) == (
        "app", "https://crm.example.com/hooks/clients?tenant=7")


# ---------------------------------------------------------------------------
# apps that exit, print, or answer too much


EXITING_APPS = """
import os
import sys

def wsgi_exit(environ, start_response):
    sys.exit(3)

async def asgi_exit(scope, receive, send):
    sys.exit(3)

def wsgi_print(environ, start_response):
    print("hello from the app")
    os.write(1, b"straight to descriptor 1\\n")  # as a subprocess or a C library would
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]

async def asgi_print(scope, receive, send):
    print("hello from the app")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})

async def asgi_huge(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    chunk = b"x" * 65536
    for _ in range(16384):  # 1 GiB, streamed
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
"""


@pytest.mark.parametrize("attribute", ["wsgi_exit", "asgi_exit"])
def test_an_app_calling_sys_exit_is_a_logged_500_and_exit_1(tmp_path: Path, config_path: Path,
                                                             attribute: str) -> None:
    (tmp_path / "exiting_app.py").write_text(EXITING_APPS)
    config_with(config_path, ("ClientCreate", "https://crm.example.com/hooks/clients"))
    config_path.write_text(config_path.read_text().replace("[settings]\n", "[settings]\n").replace(
        "max_attempts = 3", "max_attempts = 1"))
    result = run_moxiehook("--config", str(config_path), "fire", "ClientCreate", "--app", f"exiting_app:{attribute}",
                           cwd=tmp_path, timeout=30)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "RuntimeWarning" not in result.stderr, result.stderr
    [record] = records(config_path)
    assert (record["outcome"], record["status"], record["mode"]) == ("failed", 500, "app")
    assert "SystemExit: 3" in record["error"]


def test_the_fixture_raises_the_apps_system_exit(tmp_path: Path) -> None:
    from moxiehook.testing import MoxieFixture

    (tmp_path / "exiting_app2.py").write_text(EXITING_APPS)
    sys.path.insert(0, str(tmp_path))
    try:
        import exiting_app2  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    with MoxieFixture() as moxie:
        for app in (exiting_app2.wsgi_exit, exiting_app2.asgi_exit):
            with pytest.raises(SystemExit) as raised:
                moxie.fire("ClientCreate", app=app)
            assert raised.value.code == 3
        # the fixture's loop survived: the next ASGI call is answered
        assert moxie.fire("ClientCreate", app=exiting_app2.asgi_print).status_code == 200
    sys.modules.pop("exiting_app2", None)


@pytest.mark.parametrize("attribute", ["wsgi_print", "asgi_print"])
def test_what_the_app_prints_goes_to_stderr_and_json_stays_json(tmp_path: Path, config_path: Path,
                                                                attribute: str) -> None:
    (tmp_path / "printing_app.py").write_text(EXITING_APPS)
    config_with(config_path, ("ClientCreate", "https://crm.example.com/hooks/clients"))
    result = run_moxiehook("--config", str(config_path), "fire", "ClientCreate", "--app", f"printing_app:{attribute}",
                           "--count", "3", "--json", cwd=tmp_path, timeout=30)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["delivered"] == 3
    assert result.stderr.count("hello from the app") == 3
    if attribute == "wsgi_print":
        assert result.stderr.count("straight to descriptor 1") == 3


def test_a_1_gib_asgi_answer_is_read_up_to_the_cap_not_held(tmp_path: Path, config_path: Path) -> None:
    (tmp_path / "huge_app.py").write_text(EXITING_APPS)
    config_with(config_path, ("ClientCreate", "https://crm.example.com/hooks/clients"))
    script = ("import resource, sys\nfrom moxiehook.cli import main\n"
              "try:\n    main()\nfinally:\n"
              "    sys.stderr.write('maxrss_kib=%d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    result = subprocess.run([sys.executable, "-c", script, "--config", str(config_path), "fire", "ClientCreate",
                             "--app", "huge_app:asgi_huge"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rss_kib = int(result.stderr.split("maxrss_kib=")[1].split()[0])
    assert rss_kib < 300 * 1024  # far below the 1 GiB answer
    [record] = records(config_path)
    assert record["response"]["body"] == "x" * 4096  # 4 KiB kept in the log


def test_fire_app_json_into_a_full_disk_finishes_the_run_then_says_so(tmp_path: Path, config_path: Path) -> None:
    """stdout failing mid-stream (its descriptor lent to stderr while the app runs) ends as stdout's failures do."""
    (tmp_path / "printing_app3.py").write_text(EXITING_APPS)
    config_with(config_path, ("ClientCreate", "https://crm.example.com/hooks/clients"))
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "moxiehook", "--config", str(config_path), "fire",
                                 "ClientCreate", "--app", "printing_app3:wsgi_print", "--count", "20", "--json"],
                                cwd=tmp_path, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    lines = result.stderr.splitlines()
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[-2].startswith("20 delivered, 0 failed, 0 skipped · ")
    assert lines[-1] == "error: cannot write the output: No space left on device"
    assert len(records(config_path)) == 20


def test_an_asgi_app_whose_background_task_calls_sys_exit_does_not_stop_the_loop() -> None:
    import asyncio

    from moxiehook.testing import MoxieFixture

    async def app(scope: Any, receive: Any, send: Any) -> None:
        async def quit_later() -> None:
            raise SystemExit(4)

        asyncio.get_running_loop().create_task(quit_later())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with MoxieFixture() as moxie:
        assert [moxie.fire("ClientCreate", app=app).status_code for _ in range(3)] == [204] * 3


FRAMEWORK_EXITS = """
import sys

from fastapi import FastAPI
from flask import Flask

api = FastAPI()


@api.post("/hooks/clients")
async def exit_async():
    print("the app printed this")
    sys.exit(5)


@api.post("/sync")
def exit_sync():  # run in Starlette's thread pool
    sys.exit(6)


flask_app = Flask(__name__)


@flask_app.post("/hooks/clients")
def flask_exit():
    print("the app printed this")
    sys.exit(7)
"""


@pytest.mark.parametrize(("attribute", "path", "code"), [
    ("api", "/hooks/clients", 5), ("api", "/sync", 6), ("flask_app", "/hooks/clients", 7),
], ids=["fastapi-async", "fastapi-sync", "flask"])
def test_a_framework_app_calling_sys_exit_is_a_logged_500_and_json_stays_json(
        tmp_path: Path, config_path: Path, attribute: str, path: str, code: int) -> None:
    (tmp_path / "framework_exits.py").write_text(FRAMEWORK_EXITS)
    config_with(config_path, ("ClientCreate", f"https://crm.example.com{path}"))
    config_path.write_text(config_path.read_text().replace("max_attempts = 3", "max_attempts = 1"))
    result = run_moxiehook("--config", str(config_path), "fire", "ClientCreate", "--app",
                           f"framework_exits:{attribute}", "--json", cwd=tmp_path, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    [shown] = json.loads(result.stdout)["deliveries"]
    [record] = records(config_path)
    assert shown["id"] == record["id"]
    assert (record["status"], record["mode"]) == (500, "app")
    assert record["error"] == f"HTTP 500 Internal Server Error (SystemExit: {code})"


def test_ctrl_c_cuts_an_asgi_app_that_does_not_answer(tmp_path: Path, config_path: Path) -> None:
    """A real process: Ctrl-C ends the call within its grace, not at the endpoint's 30 s timeout; it is logged."""
    import signal
    import time

    (tmp_path / "slow_app.py").write_text(
        "import asyncio, pathlib\n\nasync def app(scope, receive, send):\n"
        "    pathlib.Path('called').write_text('yes')\n    await asyncio.sleep(60)\n")
    config_with(config_path, ("ClientCreate", "https://crm.example.com/hooks/clients"))
    config_path.write_text(config_path.read_text().replace("timeout = 2.0", "timeout = 30.0"))
    process = subprocess.Popen([sys.executable, "-m", "moxiehook", "--config", str(config_path), "fire",
                                "ClientCreate", "--app", "slow_app:app"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(400):  # bounded: until the app is called
            if (tmp_path / "called").exists():
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)  # the endpoint's 30 s timeout would run past this
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 130, stderr
    [record] = records(config_path)
    assert (record["outcome"], record["mode"]) == ("failed", "app")
    assert "interrupted" in record["error"]
