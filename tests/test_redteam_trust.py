"""Red team of the trust fixes (in-process runs, strict JSON, on_disable hooks, the log): what broke.

Real parts only: real listen processes on 127.0.0.1, a real receiving app, real hook processes.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Receiver, run_moxiehook
from tests.test_cli_listen import listen  # noqa: F401 - the fixture
from tests.test_listen_hardening import post, raw_request, status_of


def _strict(name: str) -> None:
    raise AssertionError(f"bare {name} in a line moxiehook wrote")


def _start_relay(tmp_path: Path, forward_to: str) -> tuple[subprocess.Popen[str], int]:
    """``moxiehook listen --port 0 --forward-to URL`` (no config: it logs to ./moxiehook-log.jsonl)."""
    ready = tmp_path / "ready"
    process = subprocess.Popen(
        [sys.executable, "-m", "moxiehook", "listen", "--port", "0", "--forward-to", forward_to,
         "--ready-file", str(ready), "-q"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    for _ in range(400):  # bounded: 20 s
        if ready.exists() and ready.read_text().strip():
            return process, int(ready.read_text().strip().rsplit(":", 1)[1])
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"listen --forward-to did not start: {process.communicate()}")


# Bodies a sender can send that are valid JSON text but that Python reads into values strict JSON cannot
# write back: a number beyond a double (read as inf) and an escaped lone surrogate (no UTF-8 form).
UNWRITABLE_BODIES = [
    pytest.param(b'{"amount": 1e999, "other": -1e999}', id="1e999"),
    pytest.param(b'{"name": "\\ud800"}', id="lone-surrogate"),
]


@pytest.mark.parametrize("body", UNWRITABLE_BODIES)
def test_a_relayed_body_json_cannot_write_back_is_answered_and_logged(tmp_path: Path, body: bytes) -> None:
    """A sender posts ``{"amount": 1e999}`` (or ``"\\ud800"``) to ``listen --forward-to``.

    Seen: the app receives it and answers 204, but the sender is answered ``500 moxiehook listen:
    ValueError`` (so it retries: the app gets the event again and again), listen prints nothing and
    the log has no record, so ``logs``/``replay`` never see it. Should: the sender gets the app's
    204, and the log holds one strict-JSON record of it (the body kept as the text received).
    """
    app = Receiver().start()
    relay, port = _start_relay(tmp_path, app.url(""))
    try:
        answer = raw_request(port, post("/hook", body, {"Content-Type": "application/json",
                                                         "X-Event-Type": "ClientCreate"}))
        assert len(app.requests_to("/hook")) == 1
        assert status_of(answer) == 200, answer
    finally:
        relay.terminate()
        relay.communicate(timeout=10)
        app.stop()
    lines = (tmp_path / "moxiehook-log.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0], parse_constant=_strict)
    assert record["mode"] == "forward" and record["status"] == 200
    assert record["request"]["body"] == body.decode()  # not JSON a strict writer can carry: kept as text
    result = run_moxiehook("logs", cwd=tmp_path)
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr


@pytest.mark.parametrize("body", UNWRITABLE_BODIES)
def test_save_writes_a_body_json_cannot_write_back_as_text(listen, tmp_path: Path, body: bytes) -> None:  # noqa: F811
    """``listen --save`` receiving ``{"amount": 1e999}`` or ``{"name": "\\ud800"}``.

    Seen: the saved line holds bare ``Infinity`` (no strict reader accepts the file), and the lone
    surrogate is answered ``500 moxiehook listen: UnicodeEncodeError`` with nothing printed or saved.
    Should: answered as any request (204), printed, and saved as one strict-JSON line with the body
    kept as the text received.
    """
    listener = listen("--save", "saved.jsonl")
    answer = raw_request(listener.port, post("/odd", body, {"Content-Type": "application/json"}))
    code, stdout, stderr = listener.stop()
    assert status_of(answer) == 204, answer
    assert "POST /odd" in stdout
    saved = json.loads((tmp_path / "saved.jsonl").read_text(encoding="utf-8"), parse_constant=_strict)
    assert saved["body"] == body.decode()


@pytest.mark.parametrize("value", [
    pytest.param("9" * 5000, id="5000-digit-number"),
    pytest.param("[" * 5000 + "]" * 5000, id="nested-5000-deep"),
])
def test_set_a_json_value_python_cannot_read_is_refused_not_sent_as_text(tmp_path: Path, value: str) -> None:
    """``fire --set amount=99999…(5000 digits)`` or ``--set 'x=[[[…]]]'`` nested 5000 deep.

    Seen: the value is valid JSON that Python will not read, so ``--set`` quietly sends it as a
    *string* ``"99999…"`` (``--data`` with the same number is refused, exit 2). Should: exit 2
    naming the ``--set``, nothing sent, as for ``1e999`` (``--set 'x="…"'`` sends it as text).
    """
    (tmp_path / "moxiehook.toml").write_text(
        'version = 1\n[endpoints.a]\n[[endpoints.a.mappings]]\nevent = "ClientCreate"\n'
        'url = "http://127.0.0.1:9/x"\n')
    result = run_moxiehook("fire", "ClientCreate", "--dry-run", "--set", f"name={value}", cwd=tmp_path)
    assert result.returncode == 2, result.stdout[:300]
    assert result.stderr.startswith("error: --set") and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_hook_that_leaves_a_process_behind_does_not_hold_the_run_open(tmp_path: Path) -> None:
    """``on_disable = ["sh", "-c", "notify-something & echo sent"]``: a hook that backgrounds a child.

    Seen: the hook exits at once, and so does ``fire``, but the child the hook left running holds
    fire's stderr open, so ``moxiehook fire … 2>&1 | tee``, ``$(moxiehook fire …)`` and a CI step
    capturing output wait for that child (forever if it never ends) — past the 10 s a hook may take.
    Should: when fire exits, its output is closed; nothing a hook leaves behind keeps it open.
    """
    app = Receiver().start()
    from tests.conftest import Answer

    app.default = Answer(status=401)
    release = tmp_path / "release"
    (tmp_path / "moxiehook.toml").write_text(
        'version = 1\n[settings]\nmax_attempts = 1\n'
        f'on_disable = ["sh", "-c", "(while [ ! -e {release} ]; do sleep 0.1; done) & echo hook ran"]\n'
        '[endpoints.a]\n[[endpoints.a.mappings]]\nevent = "ClientCreate"\n'
        f'url = "{app.url("/x")}"\n')
    process = subprocess.Popen([sys.executable, "-m", "moxiehook", "fire", "ClientCreate"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.wait(timeout=60) == 1
        assert process.stderr is not None
        err = process.stderr.fileno()
        os.set_blocking(err, False)
        chunks = []
        closed = False
        for _ in range(100):  # bounded: until EOF, at most 10 s
            ready, _, _ = select.select([err], [], [], 0.1)
            if ready:
                chunk = os.read(err, 65536)
                if not chunk:
                    closed = True
                    break
                chunks.append(chunk)
        assert b"hook ran" in b"".join(chunks)
        assert closed, "fire has exited but its stderr is still held open by what the hook left running"
    finally:
        release.touch()
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)
        app.stop()


@pytest.mark.parametrize(("sent", "content_type"), [
    (b"plain text", "text/plain"),
    (b'{"a": 1e999}', "application/json"),  # JSON the log cannot carry: kept as text
    (b'"plain text"', "application/json"),  # a JSON string: stays one
    (b"caf\xc3\xa9 \xe2\x82\xac", "text/plain; charset=utf-8"),
])
def test_replay_of_a_relayed_text_body_sends_the_bytes_received(tmp_path: Path, sent: bytes,
                                                                 content_type: str) -> None:
    """A sender posts ``plain text`` (or ``{"a": 1e999}``) through ``listen --forward-to``; then ``replay ID``.

    Seen: the app receives ``plain text`` from the relay, but the replay sends ``"plain text"`` — a
    JSON string, quotes and escapes added — so the replay is not the event that came in. Should: a
    replay sends the body bytes the sender sent, with the Content-Type it came with, and so does a
    replay of that replay; the log says the body is text, and stays strict JSON.
    """
    app = Receiver().start()
    relay, port = _start_relay(tmp_path, app.url(""))
    log = tmp_path / "moxiehook-log.jsonl"
    try:
        raw_request(port, post("/hook", sent, {"Content-Type": content_type, "X-Event-Type": "ClientCreate"}))
        relay.terminate()
        relay.communicate(timeout=10)
        record = json.loads(log.read_text().splitlines()[0])
        assert ("body_format" in record["request"]) is (sent != b'"plain text"')
        result = run_moxiehook("replay", record["id"], cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        replayed = json.loads(log.read_text().splitlines()[-1])
        assert replayed["request"].get("body_format") == record["request"].get("body_format")
        result = run_moxiehook("replay", replayed["id"], cwd=tmp_path)  # the replay of the replay
        assert result.returncode == 0, result.stderr
        requests = app.requests_to("/hook")
        assert [r.body for r in requests] == [sent, sent, sent]
        assert [r.headers["content-type"] for r in requests] == [content_type] * 3
        for line in log.read_text().splitlines():
            json.loads(line, parse_constant=lambda word: pytest.fail(f"{word} in the log"))
    finally:
        if relay.poll() is None:
            relay.kill()
        app.stop()


def _run_hint(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a command moxiehook printed (``… then: moxiehook X Y``) as a user pasting it would."""
    import shlex

    argv = shlex.split(line[line.index("moxiehook "):])
    assert argv[0] == "moxiehook"
    return run_moxiehook(*argv[1:], cwd=cwd)


def test_the_hints_of_a_run_with_config_work_when_copied(tmp_path: Path) -> None:
    """``moxiehook --config ci/moxiehook.toml fire ClientCreate`` against a receiver answering 401.

    Seen: it prints ``details: moxiehook logs show dlv_…`` and ``then: moxiehook endpoint enable
    crm``; copied, both run without ``--config`` and fail ("no delivery dlv_… in the log
    ./moxiehook-log.jsonl"; no config file). Should: every command a run prints works as printed.
    """
    from tests.conftest import Answer

    app = Receiver().start()
    app.default = Answer(status=401)
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "moxiehook.toml").write_text(
        'version = 1\n[settings]\nmax_attempts = 1\n[endpoints.crm]\n[[endpoints.crm.mappings]]\n'
        f'event = "ClientCreate"\nurl = "{app.url("/x")}"\n')
    try:
        fired = run_moxiehook("--config", "ci/moxiehook.toml", "fire", "ClientCreate", cwd=tmp_path)
    finally:
        app.stop()
    assert fired.returncode == 1, fired.stderr
    hints = [line for line in fired.stderr.splitlines() if "moxiehook " in line]
    assert any("logs show" in line for line in hints) and any("endpoint enable" in line for line in hints), hints
    for line in hints:
        result = _run_hint(line, tmp_path)
        assert result.returncode == 0, (line, result.stderr)


@pytest.mark.parametrize("how", ["data", "set"])
def test_a_duplicate_key_in_the_payload_is_refused_naming_it(tmp_path: Path, how: str) -> None:
    """``--data`` file ``{"name": "Acme", "name": "Other"}`` (or ``--set 'x={"a":1,"a":2}'``).

    Seen: ``--dry-run`` shows and ``fire`` sends ``{"name": "Other"}``: one of the two values the
    file holds is dropped without a word (RFC 8259: names SHOULD be unique; readers disagree on
    which one wins). Should: exit 2 naming the duplicated key, nothing sent.
    """
    (tmp_path / "moxiehook.toml").write_text(
        'version = 1\n[endpoints.a]\n[[endpoints.a.mappings]]\nevent = "ClientCreate"\n'
        'url = "http://127.0.0.1:9/x"\n')
    (tmp_path / "d.json").write_text('{"name": "Acme", "name": "Other"}')
    args = ["--data", "d.json"] if how == "data" else ["--set", 'contacts={"a": 1, "a": 2}']
    result = run_moxiehook("fire", "ClientCreate", "--dry-run", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout[:300]
    assert "duplicate" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


NOISY_APP = '''
import os
print("loading settings")  # what many apps print when imported
os.write(1, b"a banner on descriptor 1\\n")


def app(environ, start_response):
    start_response("204 No Content", [])
    return [b""]
'''


@pytest.mark.parametrize("command", [
    pytest.param(["fire", "ClientCreate"], id="fire"),
    pytest.param(["fire", "ClientCreate", "--rate", "5", "--duration", "0.4"], id="load"),
    pytest.param(["scenario", "run", "client-lifecycle"], id="scenario"),
])
def test_an_app_printing_when_imported_leaves_json_stdout_one_document(tmp_path: Path, command: list[str]) -> None:
    """``fire ClientCreate --app noisy:app --json`` where ``noisy.py`` prints ``loading settings`` at import.

    Seen: stdout starts with ``loading settings`` and the banner, then the document: ``| jq`` fails.
    The docs say what the app prints goes to stderr so that ``--json`` stays one JSON document.
    Should: the import's output on stderr, stdout one JSON document.
    """
    (tmp_path / "noisy.py").write_text(NOISY_APP)
    mappings = "".join(f'[[endpoints.a.mappings]]\nevent = "{event}"\nurl = "http://127.0.0.1:9/x"\n'
                       for event in ("ClientCreate", "ClientUpdate", "ClientDelete"))
    (tmp_path / "moxiehook.toml").write_text(f"version = 1\n[endpoints.a]\n{mappings}")
    result = run_moxiehook(*command, "--app", "noisy:app", "--json", cwd=tmp_path)
    # exit 1 for the load run is its rate judged short on a busy machine: stdout is what is tested here
    assert result.returncode in ((0, 1) if "--rate" in command else (0,)), result.stderr
    json.loads(result.stdout)
    assert "loading settings" in result.stderr and "a banner on descriptor 1" in result.stderr


LATE_APP = '''
import atexit
import threading
import time

atexit.register(lambda: print("app shut down"))


def _later():
    time.sleep(0.5)
    print("background job done")


def app(environ, start_response):
    threading.Thread(target=_later, daemon=False).start()  # the interpreter waits for it
    start_response("204 No Content", [])
    return [b""]
'''


def test_an_app_printing_after_the_run_leaves_json_stdout_one_document(tmp_path: Path) -> None:
    """``fire --app late:app --json`` where the app starts a background job and registers an atexit hook.

    Seen: stdout is the JSON document followed by ``background job done`` and ``app shut down``:
    ``| jq`` fails. Should: everything the app prints, whenever it prints it, on stderr.
    """
    (tmp_path / "late.py").write_text(LATE_APP)
    (tmp_path / "moxiehook.toml").write_text(
        'version = 1\n[endpoints.a]\n[[endpoints.a.mappings]]\nevent = "ClientCreate"\nurl = "http://127.0.0.1:9/x"\n')
    result = run_moxiehook("fire", "ClientCreate", "--app", "late:app", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    json.loads(result.stdout)
    assert "background job done" in result.stderr and "app shut down" in result.stderr


def test_init_sample_with_config_prints_a_fire_hint_that_works(tmp_path: Path) -> None:
    """``moxiehook --config ci/moxiehook.toml init --sample``, then the ``then:`` line it prints.

    Seen: ``then: CRM_TOKEN=dev-token moxiehook fire ClientCreate`` — pasted, it finds no config
    (exit 2). Should: the hint names the config it just wrote, and works as printed.
    """
    import shlex

    (tmp_path / "ci").mkdir()
    wrote = run_moxiehook("--config", "ci/moxiehook.toml", "init", "--sample", cwd=tmp_path)
    assert wrote.returncode == 0, wrote.stderr
    [then] = [line for line in wrote.stderr.splitlines() if line.startswith("then: ")]
    words = shlex.split(then.removeprefix("then: "))
    env = dict(word.split("=", 1) for word in words if "=" in word and not word.startswith("-"))
    argv = [word for word in words if word not in {f"{k}={v}" for k, v in env.items()}]
    assert argv[0] == "moxiehook"
    result = run_moxiehook(*argv[1:], "--dry-run", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("args", [
    pytest.param(["fire", "ClientUpdate"], id="fire-no-mapping"),
    pytest.param(["endpoint", "list"], id="endpoint-list-empty"),
    pytest.param(["map", "list"], id="map-list-empty"),
])
def test_the_hints_of_commands_given_config_name_it(tmp_path: Path, args: list[str]) -> None:
    """``moxiehook --config ci/moxiehook.toml fire ClientUpdate`` (no mapping), ``endpoint list``, ``map list``.

    Seen: ``(see: moxiehook map list)`` and ``(add one with: moxiehook endpoint add NAME)``: pasted,
    they read ./moxiehook.toml, not the config the user named. Should: the hint carries --config.
    """
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "moxiehook.toml").write_text("version = 1\n")
    result = run_moxiehook("--config", "ci/moxiehook.toml", *args, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert "moxiehook " in output, output
    assert "moxiehook --config ci/moxiehook.toml " in output, output


def test_ctrl_c_after_a_hook_left_a_chatty_child_still_ends_at_once(tmp_path: Path) -> None:
    """A hook that exits at once but leaves a child printing every 10 ms; then Ctrl-C.

    Seen (with the hook's output copied through a pipe): fire keeps copying the child's output
    until the 10 s hook budget is spent, deaf to Ctrl-C. Should: Ctrl-C ends fire at once (130).
    """
    import signal

    from tests.conftest import Answer

    app = Receiver().start()
    app.default = Answer(status=401)
    started = tmp_path / "started"
    (tmp_path / "moxiehook.toml").write_text(
        'version = 1\n[settings]\nmax_attempts = 1\n'
        f'on_disable = ["sh", "-c", "(touch {started}; while :; do echo spam; sleep 0.01; done) & exit 0"]\n'
        '[endpoints.a]\n[[endpoints.a.mappings]]\nevent = "ClientCreate"\n'
        f'url = "{app.url("/x")}"\n')
    process = subprocess.Popen([sys.executable, "-m", "moxiehook", "fire", "ClientCreate"], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(400):  # bounded: until the hook's child runs
            if started.exists():
                break
            time.sleep(0.05)
        time.sleep(0.3)  # past the hook's own exit: fire is copying what the child writes
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=8) == 130  # the hook budget's 10 s would run past this
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        app.stop()  # the hook's child dies of SIGPIPE on its next line, fire's end of its pipe being closed
