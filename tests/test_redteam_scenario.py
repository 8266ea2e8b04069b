"""Red team: scenarios attacked as a hostile user would (real receiver on 127.0.0.1, real
processes, real apps). Each test says what a user saw and what they should see."""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Receiver, run_moxiehook
from tests.test_scenario_run import configure, log

QUIET_APP = """\
print("app starting: connecting to the database")  # what many apps print when imported


def app(environ, start_response):
    start_response("204 No Content", [])
    return [b""]
"""


def _app_module(tmp_path: Path, source: str = QUIET_APP) -> str:
    module = f"rt_scenario_app_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(source)
    return module


def test_a_scenario_run_into_an_app_is_never_replayed_to_the_network(config_path: Path, receiver: Receiver,
                                                                     tmp_path: Path) -> None:
    """A user tests a receiver in-process (`scenario run … --app`), then types `replay ID` on one of
    its records. They saw the body POSTed to the mapping's URL (which never saw the request, and may
    be production). They should see exit 2 naming --app, and nothing sent."""
    configure(config_path, receiver)
    module = _app_module(tmp_path)
    done = run_moxiehook("--config", str(config_path), "scenario", "run", "client-lifecycle", "--app",
                         f"{module}:app", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    record = log(config_path)[-1]
    assert record["mode"] == "app"
    again = run_moxiehook("--config", str(config_path), "replay", record["id"], cwd=tmp_path)
    assert receiver.requests == []
    assert again.returncode == 2 and "--app" in again.stderr
    # picked by a filter, it is left out, saying so
    path = config_path.parent / "log.jsonl"
    lines = path.read_text().splitlines()
    failed_app = json.loads(lines[-1])
    failed_app.update(id=failed_app["id"][:-2] + "QF", outcome="failed", status=500)
    path.write_text("\n".join([*lines, json.dumps(failed_app)]) + "\n")
    left = run_moxiehook("--config", str(config_path), "replay", "--failed", cwd=tmp_path)
    assert left.returncode == 0 and "--app" in left.stderr, left.stderr
    assert receiver.requests == []
    # with --app it goes into the app again, and its record stays in-process
    into = run_moxiehook("--config", str(config_path), "replay", "--failed", "--app", f"{module}:app", "--json",
                         cwd=tmp_path)
    assert into.returncode == 0, into.stderr
    assert json.loads(into.stdout)["delivered"] == 1
    assert receiver.requests == []
    replayed = log(config_path)[-1]
    assert replayed["mode"] == "app" and replayed["replay_of"] == failed_app["id"]


def test_json_stays_json_when_the_app_prints_as_it_is_imported(config_path: Path, receiver: Receiver,
                                                               tmp_path: Path) -> None:
    """`scenario run … --app myapp:app --json | jq`: the app prints a line when imported. The user saw
    that line at the top of stdout, and jq failed. They should see one JSON document on stdout and
    the app's line on stderr."""
    configure(config_path, receiver)
    module = _app_module(tmp_path)
    done = run_moxiehook("--config", str(config_path), "scenario", "run", "client-lifecycle", "--app",
                         f"{module}:app", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["scenario"] == "client-lifecycle"
    assert "app starting" in done.stderr


def _forward_record(template: dict[str, Any], n: int, event: str, body: Any) -> dict[str, Any]:
    record = json.loads(json.dumps(template))
    record.update(id=template["id"][:-2] + f"Q{n}", event_id=template["event_id"][:-2] + f"Q{n}", event=event,
                  mode="forward", scenario=None)
    record["request"]["body"] = body
    return record


def _log_with(config_path: Path, receiver: Receiver, tmp_path: Path, *extra: tuple[str, Any]) -> list[str]:
    """A real scenario run's log, then forward records made from its first line (as `listen
    --forward-to` logs them), written the way a hand-edit or another tool would."""
    configure(config_path, receiver)
    done = run_moxiehook("--config", str(config_path), "scenario", "run", "client-lifecycle", "--seed", "1",
                         cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    path = config_path.parent / "log.jsonl"
    first = json.loads(path.read_text().splitlines()[0])
    records = [_forward_record(first, n, event, body) for n, (event, body) in enumerate(extra)]
    with path.open("a") as out:
        for record in records:
            out.write(json.dumps(record) + "\n")  # ensure_ascii: a lone surrogate is written as \ud800
    return [r["id"] for r in records]


def test_from_log_on_a_body_with_a_lone_surrogate_is_one_error_line(config_path: Path, receiver: Receiver,
                                                                    tmp_path: Path) -> None:
    """The log holds a relayed body with `"\\ud800"` in it (a hand-edit, an older tool). `scenario
    from-log ID` printed a Python traceback (UnicodeEncodeError), as did `replay ID`. The line is
    not strict JSON, so every reader should treat it as a bad line (a warning naming its line
    number): one `error:` line naming the id, exit 2, no file written, nothing sent."""
    (bad,) = _log_with(config_path, receiver, tmp_path, ("ClientCreate", {"id": "x", "name": "\ud800"}))
    done = run_moxiehook("--config", str(config_path), "scenario", "from-log", bad, "-o", "story.toml",
                         cwd=tmp_path)
    assert "Traceback" not in done.stderr
    assert done.returncode == 2 and bad[-6:] in done.stderr, done.stderr
    assert not (tmp_path / "story.toml").exists()
    for command in (("replay", bad), ("logs", "show", bad)):  # every reader treats the line alike
        other = run_moxiehook("--config", str(config_path), *command, cwd=tmp_path)
        assert "Traceback" not in other.stderr and other.returncode == 2, other.stderr
    assert len(receiver.requests) == 3  # the scenario's own three; nothing replayed


def test_from_log_refuses_an_event_name_a_scenario_cannot_hold(config_path: Path, receiver: Receiver,
                                                               tmp_path: Path) -> None:
    """A sender relayed through `listen --forward-to` sent `X-Event-Type: Client Create`. `scenario
    from-log --last 5` wrote story.toml and said "run it with: moxiehook scenario run story.toml",
    which then failed (invalid event name). from-log should say so itself, naming the delivery,
    before writing anything."""
    (bad,) = _log_with(config_path, receiver, tmp_path, ("Client Create", {"id": "x"}))
    done = run_moxiehook("--config", str(config_path), "scenario", "from-log", "--last", "5", "-o", "story.toml",
                         cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert bad in done.stderr and "Client Create" in done.stderr
    assert not (tmp_path / "story.toml").exists()


@pytest.mark.parametrize("name", ["a" * 5000, "x/" + "a" * 5000])
def test_a_name_too_long_for_a_file_is_one_error_line(name: str, tmp_path: Path) -> None:
    """`scenario show <5,000 characters>` (a pasted payload instead of a name) printed an OSError
    traceback (File name too long). It should be one `error:` line, exit 2, not echoing 5,000
    characters back."""
    done = run_moxiehook("scenario", "show", name, cwd=tmp_path)
    assert "Traceback" not in done.stderr
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and len(done.stderr) < 600


def test_one_large_reference_is_named_for_what_it_is(tmp_path: Path) -> None:
    """A step copies a 5 MB array from the step before (`${bulk:items}`). The user saw "the
    scenario renders to more than 4 MiB; do references copy each other over and over?" about a
    file with no loop in it. They should see which reference copies how much, and what to do."""
    items = [{"n": n, "text": "x" * 40} for n in range(100_000)]
    (tmp_path / "bulk.json").write_text(json.dumps({"id": "b1", "items": items}))
    (tmp_path / "big.toml").write_text(
        '[[steps]]\nname = "bulk"\nevent = "ClientCreate"\ndata = "bulk.json"\n\n'
        '[[steps]]\nname = "copy"\nevent = "ClientUpdate"\nset = { items = "${bulk:items}" }\n')
    done = run_moxiehook("scenario", "show", "big.toml", cwd=tmp_path)
    assert done.returncode == 2
    assert "step 'copy'" in done.stderr and re.search(r"this reference copies [0-9.]+ MiB", done.stderr), done.stderr
    assert "data file" in done.stderr and "over and over" not in done.stderr


FD_APP = """\
import os


def app(environ, start_response):
    os.write(1, b"written to descriptor 1 by the app (a C library, a subprocess)\\n")
    start_response("204 No Content", [])
    return [b""]
"""


def test_json_stays_json_when_the_app_writes_to_descriptor_1(config_path: Path, receiver: Receiver,
                                                             tmp_path: Path) -> None:
    """`scenario run … --app myapp:app --json > out.json`: the app (or a subprocess it starts) writes to
    file descriptor 1, not through sys.stdout. The user saw those lines inside out.json, which no
    longer parsed. They should see them on stderr, and one JSON document in out.json."""
    configure(config_path, receiver)
    module = _app_module(tmp_path, FD_APP)
    done = run_moxiehook("--config", str(config_path), "scenario", "run", "client-lifecycle", "--app",
                         f"{module}:app", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["scenario"] == "client-lifecycle"
    assert "descriptor 1" in done.stderr


def test_an_error_never_carries_a_files_escape_sequences_to_the_terminal(tmp_path: Path) -> None:
    """A scenario file from a shared repo holds `${\\u001b]0;pwned\\u0007\\u001b[2J}`. `scenario show`
    wrote the raw ESC bytes in its `error:` line: the terminal retitled and cleared itself. The user
    should see the characters spelled out (`\\x1b`), as every other place shows a file's text."""
    (tmp_path / "evil.toml").write_text('[[steps]]\nevent = "ClientCreate"\n'
                                        'set = { x = "${\\u001b]0;pwned\\u0007\\u001b[2J}" }\n')
    done = run_moxiehook("scenario", "show", "evil.toml", cwd=tmp_path)
    assert done.returncode == 2
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr
    assert "\\x1b]0;pwned" in done.stderr


@pytest.mark.parametrize(("path", "kind"), [("name.first", "a string"), ("accountId[0]", "a number"),
                                            ("archive.x", "a boolean")])
def test_a_path_into_a_scalar_names_its_json_type(path: str, kind: str, tmp_path: Path) -> None:
    """`${c:name.first}` where name is a string: the user read "name of step 'c' is str", Python's
    word, in a tool about JSON payloads. They should read "is a string" (a number, a boolean)."""
    (tmp_path / "s.toml").write_text('[[steps]]\nname = "c"\nevent = "ClientCreate"\n\n'
                                     f'[[steps]]\nevent = "ClientUpdate"\nset = {{ x = "${{c:{path}}}" }}\n')
    done = run_moxiehook("scenario", "show", "s.toml", cwd=tmp_path)
    assert done.returncode == 2
    assert f"of step 'c' is {kind}, so it has no {path}" in done.stderr, done.stderr


def test_a_builtins_name_typed_as_a_file_gets_the_name(tmp_path: Path) -> None:
    """`scenario run client-lifecycle.toml` (a file name, as the docs show the built-ins' source): the
    user read "no scenario file at client-lifecycle.toml" and nothing more. They should be told
    the built-in's name, which is what they meant."""
    done = run_moxiehook("scenario", "show", "client-lifecycle.toml", cwd=tmp_path)
    assert done.returncode == 2
    assert "did you mean 'client-lifecycle'" in done.stderr, done.stderr


def test_a_typo_in_a_short_endpoint_name_gets_did_you_mean(config_path: Path, receiver: Receiver,
                                                           tmp_path: Path) -> None:
    """The endpoint is `crm` (as short names often are: crm, erp, api). `scenario run … --endpoint crn`
    said "unknown endpoint 'crn'" and nothing else, while `--endpoint crm2` got "did you mean
    'crm'?". One wrong letter should get the name too."""
    configure(config_path, receiver)
    done = run_moxiehook("--config", str(config_path), "scenario", "run", "client-lifecycle", "--endpoint", "crn",
                         cwd=tmp_path)
    assert done.returncode == 2
    assert "did you mean 'crm'" in done.stderr, done.stderr
    assert receiver.requests == []


_CIRCULAR: list[Any] = []
_CIRCULAR.append(_CIRCULAR)


@pytest.mark.parametrize("value", [__import__("datetime").date(2026, 1, 1), {1, 2}, b"bytes", _CIRCULAR])
def test_the_fixtures_set_with_a_non_json_value_names_the_step_and_key(value: Any) -> None:
    """`moxie.scenario("client-lifecycle", app=app, set={"create:name": date(2026, 1, 1)})`: the test
    author got "TypeError: Object of type date is not JSON serializable" from deep in json, naming
    no step or key. They should get moxiehook's error naming the step and the key, before anything
    is sent."""
    from moxiehook.errors import MoxiehookError
    from moxiehook.testing.scenarios import render_for_test

    with pytest.raises(MoxiehookError, match=r"step 'create'.*name"):
        render_for_test("client-lifecycle", set={"create:name": value}, seed=1)


def test_a_set_on_a_skipped_step_is_not_silently_dropped(tmp_path: Path) -> None:
    """`scenario run client-lifecycle --skip update --set update:name=Renamed`: the user asked for two
    things that cannot both happen, and the run went ahead as if --set had not been typed (exit 0).
    They should get exit 2 saying that the step they --set is left out by --skip."""
    done = run_moxiehook("scenario", "show", "client-lifecycle", "--skip", "update", "--set", "update:name=Renamed",
                         cwd=tmp_path)
    assert done.returncode == 2
    assert "--set" in done.stderr and "--skip" in done.stderr and "'update'" in done.stderr, done.stderr


def test_a_number_json_cannot_carry_is_named_where_it_is(tmp_path: Path) -> None:
    """A data file holds `{"invoice": {"lines": [{"amount": 1E400}]}}` among hundreds of fields. The
    user read "the payload is not strict JSON: Out of range float values are not JSON compliant",
    and had to hunt for it. They should read where it is (invoice.lines[0].amount)."""
    (tmp_path / "big.json").write_text('{"id": "x", "invoice": {"lines": [{"amount": 1E400}]}}')
    (tmp_path / "s.toml").write_text('[[steps]]\nevent = "ClientCreate"\ndata = "big.json"\n')
    done = run_moxiehook("scenario", "show", "s.toml", cwd=tmp_path)
    assert done.returncode == 2
    assert "invoice.lines[0].amount" in done.stderr, done.stderr
    surrogate = run_moxiehook("scenario", "show", "s.toml", "--set", 'ClientCreate:invoice="\\ud800"', cwd=tmp_path)
    assert surrogate.returncode == 2, surrogate.stderr
    assert "--set 'ClientCreate:invoice=" in surrogate.stderr and "lone surrogate" in surrogate.stderr
    assert "quote it" not in surrogate.stderr  # no quoting makes a lone surrogate text


def test_a_huge_scenario_file_without_toml_suffix_is_refused_unread(tmp_path: Path) -> None:
    """`scenario run ./story` where ./story is a 3 GB log someone pointed at by mistake: moxiehook read
    all of it into memory, then said "a scenario file is at most 1024 KiB". It should refuse it from
    its size alone, as it does for a .toml file. (A sparse file: no disk is used; reading it whole
    would take 3 GB of memory, which the test's 1 GB address-space cap turns into a failure.)"""
    story = tmp_path / "story"
    with story.open("wb") as out:
        out.truncate(3 * 1024**3)
    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1024**3, 1024**3))

    done = subprocess.run([sys.executable, "-m", "moxiehook", "scenario", "show", "./story"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, preexec_fn=cap_memory)  # noqa: PLW1509
    assert done.returncode == 2
    assert "at most 1024 KiB" in done.stderr, done.stderr[-500:]


READS_AN_ELEMENT = """\
vary = true

[[steps]]
name = "client"
event = "ClientCreate"

[[steps]]
name = "update"
event = "ClientUpdate"
set = { id = "${client:id}", "contacts[0].id" = "${client:contacts[0].id}" }
"""


def test_a_reference_to_an_array_element_holds_in_every_varied_copy(tmp_path: Path) -> None:
    """A scenario with `vary = true` whose second step reads `${client:contacts[0].id}` (client-lifecycle
    reads it too, and holds only because its create step also sets contacts[0]). `scenario validate`
    passed with one seed; `scenario run` with another said "contacts[0] is past the end of step
    'client''s payload (the array has 0 elements)": the varied copy of the client had no contacts.
    References must hold in every varied copy, as --set paths do: the copy a later step reads keeps
    what it reads."""
    from moxiehook.scenario import find_scenario, render

    (tmp_path / "reads.toml").write_text(READS_AN_ELEMENT)
    broken = [seed for seed in range(40) if not _renders(render, find_scenario(tmp_path / "reads.toml"), seed)]
    assert broken == []
    done = run_moxiehook("scenario", "validate", "reads.toml", "--seed", "0", cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def _renders(render: Any, scenario: Any, seed: int) -> bool:
    from moxiehook.scenario import ScenarioError

    try:
        render(scenario, seed=seed)
    except ScenarioError:
        return False
    return True


def _without_body(config_path: Path, receiver: Receiver, tmp_path: Path) -> str:
    configure(config_path, receiver)
    done = run_moxiehook("--config", str(config_path), "scenario", "run", "client-lifecycle", "--seed", "1",
                         cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    path = config_path.parent / "log.jsonl"
    record = json.loads(path.read_text().splitlines()[0])
    del record["request"]["body"]  # a hand-edited line, or another tool's
    record.update(id=record["id"][:-2] + "NB", event_id=record["event_id"][:-2] + "NB")
    with path.open("a") as out:
        out.write(json.dumps(record) + "\n")
    return str(record["id"])


def test_from_log_refuses_a_record_without_a_body_as_replay_does(config_path: Path, receiver: Receiver,
                                                                 tmp_path: Path) -> None:
    """A log record has no `request.body` (hand-edited, another tool's). `replay ID` refuses it ("has
    no logged body"); `scenario from-log ID` wrote a step whose data file is `null`, and `scenario
    run` then POSTed `null` to the receiver. from-log should refuse it as replay does."""
    bad = _without_body(config_path, receiver, tmp_path)
    done = run_moxiehook("--config", str(config_path), "scenario", "from-log", bad, "-o", "story.toml",
                         cwd=tmp_path)
    assert done.returncode == 2 and bad in done.stderr and "body" in done.stderr, done.stderr
    assert not (tmp_path / "story.toml").exists()


BREAKS_THE_LOG = """\
import os
import shutil

seen = 0


def app(environ, start_response):
    global seen
    seen += 1
    if seen == 3:  # the last step of the first run: the log's folder becomes a file
        shutil.rmtree(os.environ["RT_LOG_DIR"])
        open(os.environ["RT_LOG_DIR"], "w").close()
    start_response("204 No Content", [])
    return [b""]
"""


def test_repeat_json_stays_json_when_a_later_run_fails(config_path: Path, receiver: Receiver, tmp_path: Path) -> None:
    """`scenario run … --repeat 3 --json > runs.json`: the first run went through, then the log
    became unwritable (a full disk, a folder removed). The user got exit 2 and a runs.json that
    stopped in the middle of a JSON array. They should get the runs that ended as a complete JSON
    array, the error on stderr, exit 2."""
    configure(config_path, receiver)
    text = config_path.read_text()
    config_path.write_text(text.replace('log_file = "log.jsonl"', 'log_file = "logs/log.jsonl"'))
    (tmp_path / "logs").mkdir()
    module = _app_module(tmp_path, BREAKS_THE_LOG)
    done = run_moxiehook("--config", str(config_path), "scenario", "run", "client-lifecycle", "--app",
                         f"{module}:app", "--repeat", "3", "--json", cwd=tmp_path,
                         env={"RT_LOG_DIR": str(tmp_path / "logs")})
    assert done.returncode == 2, done.stderr
    assert "error:" in done.stderr
    runs = json.loads(done.stdout)
    assert [r["exit_code"] for r in runs] == [0]
