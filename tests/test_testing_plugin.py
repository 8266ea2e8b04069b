"""The pytest plugin as users get it: their own test files, run by pytest in a process of its own.

``pytester.runpytest_subprocess`` starts a fresh ``python -m pytest`` in a
scratch folder, so the plugin is found through its ``pytest11`` entry point
exactly as in a user's project where moxiehook is installed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = '''
import sys

from flask import Flask, request

app = Flask(__name__)


@app.post("/hooks/clients")
def clients():
    if request.headers.get("Authorization") != "Bearer t":
        return {"error": "unauthorized"}, 401
    return {"name": request.get_json()["name"]}


def test_fires_into_the_app(moxie):
    response = moxie.fire("ClientCreate", app=app, path="/hooks/clients",
                          auth={"type": "bearer", "token": "t"}, set={"name": "Acme"})
    assert response.status_code == 200
    assert response.json() == {"name": "Acme"}


def test_refused(moxie):
    assert moxie.fire("ClientCreate", app=app, path="/hooks/clients").status_code == 401


def test_sample(moxie):
    assert moxie.sample("ClientCreate")["name"]
'''


def test_a_users_test_file_gets_the_moxie_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_receiver=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_a_session_that_does_not_use_it_loads_nothing_heavy(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain='''
import sys

def test_nothing_heavy_was_imported():
    heavy = [m for m in sys.modules if m.split(".")[0] in ("httpx", "httpcore", "rich", "typer")]
    assert heavy == []
    assert "moxiehook.testing.plugin" in sys.modules  # the plugin is loaded, just idle
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_plugin_can_be_disabled_by_name(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_receiver=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:moxiehook")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*fixture 'moxie' not found*"])


def test_a_failing_delivery_reads_well_in_the_report(pytester: pytest.Pytester) -> None:
    """A missing variable is a MoxiehookError naming it, not a KeyError deep in moxiehook."""
    pytester.makepyfile(test_receiver='''
def app(environ, start_response):
    start_response("204 No Content", [])
    return []

def test_missing_variable(moxie, monkeypatch):
    monkeypatch.delenv("RECEIVER_TOKEN", raising=False)
    moxie.fire("ClientCreate", app=app, auth={"type": "bearer", "token": "${RECEIVER_TOKEN}"})
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*MissingVariableError: environment variable RECEIVER_TOKEN is not set*"])


def docs_test_files() -> dict[str, str]:
    """The complete test files of docs/testing.md (the pytest plugin's page), by name."""
    section = (Path(__file__).resolve().parent.parent / "docs" / "testing.md").read_text(encoding="utf-8")
    files = {}
    for block in re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL):
        first = block.splitlines()[0]
        if first.startswith("# test_") and first.endswith(".py"):
            files[first[2:-3]] = block
    return files


def test_the_documented_examples_pass_as_a_user_runs_them(pytester: pytest.Pytester) -> None:
    files = docs_test_files()
    assert sorted(files) == ["test_fastapi_receiver", "test_flask_receiver"]
    pytester.makepyfile(**files)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=29)
