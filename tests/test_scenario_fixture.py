"""``moxie.scenario`` as users get it (pytester, a pytest of its own), and the docs' worked example
run as written: the files titled in docs/scenarios.md, a real Flask receiver, out-of-order events."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

DOCS = Path(__file__).resolve().parent.parent / "docs" / "scenarios.md"
TITLED = re.compile(r'```\w+ title="([^"]+)"\n(.*?)```', re.S)


def docs_files() -> dict[str, str]:
    return dict(TITLED.findall(DOCS.read_text(encoding="utf-8")))


def test_the_docs_worked_example_runs_as_written(pytester: pytest.Pytester) -> None:
    files = docs_files()
    assert set(files) == {"scenarios/project-before-client.toml", "receiver.py", "test_receiver.py"}
    for name, text in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist")
    result.assert_outcomes(passed=2)


def test_the_docs_example_catches_a_receiver_that_loses_the_project(pytester: pytest.Pytester) -> None:
    """The same test against a receiver that drops a project of an unknown client: it fails."""
    files = docs_files()
    careless = files["receiver.py"].replace(
        'parked.setdefault(body["clientId"], []).append(body)\n            return "", 202',
        'return "unknown client", 500')
    assert careless != files["receiver.py"]
    files["receiver.py"] = careless
    for name, text in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist")
    result.assert_outcomes(failed=2)


USER_TESTS = '''
import pytest
from flask import Flask, request

from moxiehook.errors import MoxiehookError

app = Flask(__name__)
seen = []


@app.post("/hooks")
def hooks():
    if request.headers.get("Authorization") != "Bearer t":
        return "no", 401
    body = request.get_json()
    seen.append((request.headers["X-Event-Type"], body["id"], body.get("name"),
                 request.headers.get("webhook-signature", "")[:3]))
    return "", 204


def test_one_response_per_step_in_order_ids_holding(moxie):
    responses = moxie.scenario("client-lifecycle", app=app, path="/hooks", auth={"type": "bearer", "token": "t"},
                               set={"create:name": "Acme", "update:hourlyAmount": 1}, seed=3,
                               signing_secret="whsec_" + "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5")
    assert [r.status_code for r in responses] == [204, 204, 204]
    assert [s[0] for s in seen] == ["ClientCreate", "ClientUpdate", "ClientDelete"]
    assert len({s[1] for s in seen}) == 1
    assert seen[0][2] == "Acme" and seen[1][2] == "Acme (renamed)"
    assert {s[3] for s in seen} == {"v1,"}


def test_every_step_is_sent_whatever_the_answers(moxie):
    assert [r.status_code for r in moxie.scenario("client-lifecycle", app=app, path="/hooks")] == [401] * 3


def test_errors_come_before_anything_is_sent(moxie):
    before = len(seen)
    with pytest.raises(MoxiehookError, match="did you mean 'create'"):
        moxie.scenario("client-lifecycle", app=app, path="/hooks", set={"craete:name": "x"})
    with pytest.raises(MoxiehookError, match="--skip leaves out"):
        moxie.scenario("client-lifecycle", app=app, path="/hooks", skip=["create"])
    with pytest.raises(MoxiehookError, match="step:path"):
        moxie.scenario("client-lifecycle", app=app, path="/hooks", set={"name": "x"})
    with pytest.raises(MoxiehookError, match="no scenario 'client-lifecycel'"):
        moxie.scenario("client-lifecycel", app=app)
    assert len(seen) == before


def test_an_app_exception_reaches_the_test(moxie):
    def broken(environ, start_response):
        raise ZeroDivisionError("boom")

    with pytest.raises(ZeroDivisionError):
        moxie.scenario("task-workflow", app=broken)
'''


def test_users_get_moxie_scenario(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_stories=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist")
    result.assert_outcomes(passed=4)
