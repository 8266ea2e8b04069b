"""Second red team of ``MoxieUser``, after it moved to moxiehook's own client and Locust's request event.

Real parts only: Locust runs as ``python -m locust`` child processes (never imported here: gevent
monkey-patches the interpreter), against raw socket receivers on 127.0.0.1 that answer as scripted.
The findings already covered by ``test_redteam_locust.py`` are not repeated.
"""

from __future__ import annotations

import csv
import itertools
import json
import socket
import threading
from pathlib import Path

import pytest

from tests.conftest import run_moxiehook
from tests.test_locust import finish, locust, printed_counts
from tests.test_redteam_locust import RawReceiver, raw_receiver, write_config  # noqa: F401, F811 - a fixture

PACED_LOCUSTFILE = (
    "import json\nfrom locust import constant, events\nfrom moxiehook.locust import MoxieUser\n\n\n"
    "class W(MoxieUser):\n    events = ['ClientCreate']\n    wait_time = constant(0.05)\n")


# ---------------------------------------------------------------------------
# What does it cost? A failure's text must not carry what the receiver picks per answer

numbered = itertools.count()


def _numbered_banner(conn: socket.socket) -> None:
    """Not HTTP: a line that differs for every answer (a request number, as a debug banner has)."""
    conn.sendall(b"NOPE request %d\r\n\r\n" % next(numbered))
    conn.close()


def _numbered_bad_header(conn: socket.socket) -> None:
    """HTTP, with a header line missing its colon that holds a per-answer trace id."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Trace %d\r\nContent-Length: 0\r\n\r\n" % next(numbered))
    conn.close()


@pytest.mark.parametrize("raw_receiver", [_numbered_banner, _numbered_bad_header], indirect=True)
def test_answers_that_differ_each_time_make_one_failure_row_not_one_per_request(
        tmp_path: Path, raw_receiver: RawReceiver) -> None:  # noqa: F811
    """A broken receiver answers every delivery with a line that is not HTTP and holds a request number.

    Locust keeps one failure row per distinct text, in every worker and in the master, for the
    whole run, and prints them all at the end. A user saw one row per delivery
    (`connection error: not an HTTP answer: b'NOPE request 1'`, `… 2'`, …): hundreds of
    thousands of rows in a long run, a master growing without end, a failures table nobody can
    read. The docs promise failure texts hold nothing the receiver picks per answer. They should
    see one row saying the answer was not HTTP, counting every failed delivery.
    """
    write_config(tmp_path, raw_receiver.url("/clients"))
    (tmp_path / "lf.py").write_text(PACED_LOCUSTFILE + (
        "\n\n@events.quitting.add_listener\n"
        "def rows(environment, **kwargs):\n"
        "    with open('rows.json', 'w') as f:\n"
        "        json.dump([environment.stats.total.num_failures,\n"
        "                   [str(e.error) for e in environment.stats.errors.values()]], f)\n"))
    code, output = finish(locust("-f", "lf.py", "--headless", "-u", "2", "-r", "2", "-t", "2s",
                                 "--stop-timeout", "5", "--only-summary", cwd=tmp_path))
    assert code == 1, output[-3000:]
    failures, rows = json.loads((tmp_path / "rows.json").read_text())
    assert failures >= 4, output[-3000:]
    assert len(rows) == 1, rows[:5]
    assert "not an HTTP answer" in rows[0]


# ---------------------------------------------------------------------------
# What does the user see? Locust's own request listeners read Locust's response attributes


def _ok(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nContent-Type: text/plain\r\n\r\nreceived")


ONE_DELIVERY = (
    "from locust import constant, events\nfrom moxiehook.locust import MoxieUser\n\n\n"
    "class W(MoxieUser):\n    events = ['ClientCreate']\n    wait_time = constant(60)\n")


@pytest.mark.parametrize("raw_receiver", [_ok], indirect=True)
def test_locusts_own_request_logger_records_each_deliverys_status(tmp_path: Path,
                                                                 raw_receiver: RawReceiver) -> None:  # noqa: F811
    """A team turns on the per-request CSV log Locust ships (`locust.contrib.csv_request_logger`).

    It reads each request's `response.status_code`, as Locust's clients give it. A user saw every
    MoxieUser delivery logged with status 0 (moxiehook's answer had only `status`), a 200 logged
    as if no answer had come. They should see the status the receiver answered.
    """
    write_config(tmp_path, raw_receiver.url("/clients"))
    (tmp_path / "lf.py").write_text(ONE_DELIVERY + (
        "\n\nfrom locust.contrib.csv_request_logger import CsvRequestLogger\n\n\n"
        "@events.init.add_listener\n"
        "def log_requests(environment, **kwargs):\n"
        "    CsvRequestLogger('requests.csv').register(environment)\n"))
    code, output = finish(locust("-f", "lf.py", "--headless", "-u", "1", "-r", "1", "-t", "2s",
                                 "--stop-timeout", "5", "--only-summary", cwd=tmp_path))
    assert code == 0, output[-3000:]
    with open(tmp_path / "requests.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["name"], row["response_length"], row["status_code"]) == ("ClientCreate", "8", "200")


def test_a_listener_reading_the_status_of_a_delivery_that_got_no_answer(tmp_path: Path) -> None:
    """A request listener reads `response.status_code`, with the receiver down (connection refused).

    Locust's own clients hand listeners a response with status 0 when no answer came; a user
    saw `'NoneType' object has no attribute 'status_code'` for every refused delivery and Locust
    exit 2. They should see status 0 for each refused delivery, and exit 1 (failures).
    """
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: every connection is refused
    write_config(tmp_path, f"http://127.0.0.1:{port}/clients")
    (tmp_path / "lf.py").write_text(ONE_DELIVERY + (
        "\n\n@events.request.add_listener\n"
        "def on_request(name, response, exception, **kwargs):\n"
        "    print(f'{name} status={response.status_code} ok={response.ok} bytes={len(response.content)}')\n"))
    code, output = finish(locust("-f", "lf.py", "--headless", "-u", "1", "-r", "1", "-t", "2s",
                                 "--stop-timeout", "5", "--only-summary", cwd=tmp_path))
    assert code == 1, output[-3000:]
    assert "Traceback" not in output and "Uncaught exception" not in output, output[-3000:]
    assert "ClientCreate status=0 ok=False bytes=0" in output, output[-3000:]


@pytest.mark.parametrize("raw_receiver", [_ok], indirect=True)
def test_the_request_listener_of_locusts_docs_reads_the_answer_text(tmp_path: Path,
                                                                    raw_receiver: RawReceiver) -> None:  # noqa: F811
    """A locustfile has the request listener Locust's docs show ("Event hooks"), printing `response.text`.

    A user saw `Uncaught exception in event handler` with a traceback for every delivery
    (`'Response' object has no attribute 'text'`) and Locust exit 2 at the end, though every
    delivery was received. They should see the answer's text, and exit 0.
    """
    write_config(tmp_path, raw_receiver.url("/clients"))
    (tmp_path / "lf.py").write_text(ONE_DELIVERY + (
        "\n\n@events.request.add_listener\n"
        "def my_request_handler(request_type, name, response_time, response_length, response,\n"
        "                       context, exception, start_time, url, **kwargs):\n"
        "    if exception:\n"
        "        print(f'Request to {name} failed with exception {exception}')\n"
        "    else:\n"
        "        print(f'Successfully made a request to: {name}')\n"
        "        print(f'The response was {response.text}')\n"
        "        print(f'status {response.status_code} ok {response.ok} content {response.content!r}')\n"))
    code, output = finish(locust("-f", "lf.py", "--headless", "-u", "1", "-r", "1", "-t", "2s",
                                 "--stop-timeout", "5", "--only-summary", cwd=tmp_path))
    assert "Uncaught exception" not in output, output[-3000:]
    assert "The response was received" in output
    assert "status 200 ok True content b'received'" in output
    assert printed_counts(output)["ClientCreate"] == ("POST", 1, 0)
    assert code == 0


# ---------------------------------------------------------------------------
# How many times? Users stopped by a ramp-down finish the delivery in flight when told to

answering = threading.Event()  # set when the test ends: answers go out at once


def _slow_answer(conn: socket.socket) -> None:
    """Each answer comes 0.3 s after its request, so a ramp-down finds deliveries in flight."""
    answering.wait(0.3)
    conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")


@pytest.mark.parametrize("raw_receiver", [_slow_answer], indirect=True)
def test_a_ramp_down_with_a_stop_timeout_counts_every_delivery_in_flight_once(
        tmp_path: Path, raw_receiver: RawReceiver) -> None:  # noqa: F811
    """A load shape runs 6 users, then ramps down to 1 while each of them waits for an answer.

    Without `--stop-timeout`, Locust kills a ramped-down user where it is: its delivery in
    flight reaches the receiver but never Locust's stats (a user saw the receiver count 8 more
    than Locust after one ramp-down, where the docs spoke only of the end of a run). With
    `--stop-timeout`, as the docs advise for ramp-downs too, each user finishes the delivery it
    sent, and the receiver and Locust count the same deliveries.
    """
    answering.clear()
    write_config(tmp_path, raw_receiver.url("/clients"))
    (tmp_path / "lf.py").write_text(
        "import json\nfrom locust import LoadTestShape, constant, events\nfrom moxiehook.locust import MoxieUser\n\n\n"
        "class W(MoxieUser):\n    events = ['ClientCreate']\n    wait_time = constant(0)\n\n\n"
        "class Shape(LoadTestShape):\n"
        "    def tick(self):\n"
        "        seconds = self.get_run_time()\n"
        "        return (6, 100) if seconds < 1.5 else (1, 100) if seconds < 3 else None\n\n\n"
        "counted = []\n\n\n"
        "@events.request.add_listener\n"
        "def count(name, exception, **kwargs):\n"
        "    counted.append(exception is None)\n\n\n"
        "@events.quitting.add_listener\n"
        "def write(**kwargs):\n"
        "    with open('counted.json', 'w') as f:\n"
        "        json.dump(counted, f)\n")
    try:
        code, output = finish(locust("-f", "lf.py", "--headless", "--stop-timeout", "10", "--only-summary",
                                     cwd=tmp_path))
    finally:
        answering.set()
    assert code == 0, output[-3000:]
    counted = json.loads((tmp_path / "counted.json").read_text())
    assert all(counted) and len(counted) >= 6, output[-3000:]
    assert len(raw_receiver.requests) == len(counted)


@pytest.mark.parametrize(("content_type", "text"), [
    ("text/plain", "é ok"),
    ("text/plain; charset=latin-1", "Ã© ok"),
    ('text/plain; charset="utf-8"', "é ok"),
    ("text/plain; charset=base64", "é ok"),  # a codec, but not a text one: UTF-8
    ("text/plain; charset=idna", "é ok"),  # takes no "replace": UTF-8
    ("text/plain; charset=undefined", "é ok"),
    ("text/plain; charset=no-such-thing", "é ok"),
    ("text/plain; charset=", "é ok"),
])
def test_an_answers_text_is_read_whatever_charset_the_receiver_names(content_type: str, text: str) -> None:
    """A listener reading `response.text` must not raise for a charset the receiver made up."""
    from moxiehook.http import Response
    from moxiehook.locust.plan import Answer

    answer = Answer.of(Response(200, {"content-type": content_type}, [], "é ok".encode()), "http://127.0.0.1/x")
    assert (answer.text, answer.status_code, answer.content, answer.ok) == (text, 200, "é ok".encode(), True)


# ---------------------------------------------------------------------------
# What does the user see? `moxiehook locustfile --config` with a folder named past U+FFFF


@pytest.mark.parametrize("raw_receiver", [_ok], indirect=True)
def test_a_generated_locustfile_finds_a_config_in_a_folder_named_with_an_emoji(
        tmp_path: Path, raw_receiver: RawReceiver) -> None:  # noqa: F811
    """`moxiehook --config "load 🚀/moxiehook.toml" locustfile ClientCreate -o lf.py`, then Locust.

    A user saw the locustfile written (exit 0) with `config = "…\\ud83d\\ude80…"`: a JSON
    string, which Python reads as two lone surrogates, not the emoji. Locust then died at start
    with a traceback (`UnicodeEncodeError: … surrogates not allowed`). They should see the
    locustfile use the config they named and deliver.
    """
    folder = tmp_path / "load 🚀"
    folder.mkdir()
    config = write_config(folder, raw_receiver.url("/clients"))
    written = run_moxiehook("--config", str(config), "locustfile", "ClientCreate", "-o", "lf.py", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    text = (tmp_path / "lf.py").read_text()
    (tmp_path / "lf.py").write_text(text.replace("wait_time = constant(0)", "wait_time = constant(60)"))
    code, output = finish(locust("-f", "lf.py", "--headless", "-u", "1", "-r", "1", "-t", "2s",
                                 "--stop-timeout", "5", "--only-summary", cwd=tmp_path))
    assert "Traceback" not in output, output[-3000:]
    assert printed_counts(output)["ClientCreate"] == ("POST", 1, 0), output[-3000:]
    assert code == 0
    assert len(raw_receiver.requests) == 1


# ---------------------------------------------------------------------------
# Is every number what it claims? Weights that are each finite but sum past the largest float


def test_weights_whose_sum_is_infinite_stop_the_run_with_one_line(tmp_path: Path,
                                                                  raw_receiver: RawReceiver) -> None:  # noqa: F811
    """`events = {"ClientCreate": 1e308, "InvoiceSent": 1e308}`: each weight is finite, their sum is not.

    A user saw the run start, then a traceback for every task of every user (`ValueError: Total
    of weights must be finite`, from Python's `random.choices`), nothing sent and exit 1 as if
    deliveries had failed. They should see one line saying what is wrong with the weights, and
    exit 2, before anything is sent, as for any other mistake in the user class.
    """
    url = raw_receiver.url("/clients")
    write_config(tmp_path, url, f'\n[[endpoints.crm.mappings]]\nevent = "InvoiceSent"\nurl = "{url}"\n')
    (tmp_path / "lf.py").write_text(
        "from locust import constant\nfrom moxiehook.locust import MoxieUser\n\n\n"
        "class W(MoxieUser):\n    events = {'ClientCreate': 1e308, 'InvoiceSent': 1e308}\n"
        "    wait_time = constant(0.2)\n")
    code, output = finish(locust("-f", "lf.py", "--headless", "-u", "2", "-r", "2", "-t", "2s",
                                 "--stop-timeout", "5", cwd=tmp_path))
    assert "Traceback" not in output, output[-3000:]
    assert output.count("W: events: the weights add up to more than") == 1, output[-3000:]
    assert code == 2
    assert raw_receiver.requests == []


@pytest.mark.parametrize("events", [
    {"ClientCreate": 1e308, "InvoiceSent": 1e308}, {"ClientCreate": 10 ** 400}, {"ClientCreate": float("inf")},
])
def test_weights_too_large_to_draw_from_are_a_usage_error(events: dict[str, float]) -> None:
    """Checked before the config is read: one UsageError (exit 2), not an OverflowError or ValueError."""
    from moxiehook.errors import UsageError
    from moxiehook.locust.plan import make_plan

    with pytest.raises(UsageError, match="the weights add up to more than the largest number"):
        make_plan(events, config="no-such-config.toml")


def test_a_seed_too_long_to_write_in_digits_is_a_usage_error() -> None:
    """`seed = 10 ** 5000`: Python refuses to turn it into digits (the users' seeds are derived from them).

    A user saw Locust start and a `ValueError: Exceeds the limit (4300 digits)` traceback for
    every user it spawned. They should see one usage error at start.
    """
    from moxiehook.errors import UsageError
    from moxiehook.locust.plan import make_plan

    with pytest.raises(UsageError, match=r"seed must be a whole number between -2\*\*256 and 2\*\*256"):
        make_plan(["ClientCreate"], seed=10 ** 5000, config="no-such-config.toml")
