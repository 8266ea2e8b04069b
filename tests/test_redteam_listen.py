"""Red team of listen's receiver after the performance change (no socket timeout, the watchdog the
only bound, headers checked in one regex, batched hand-over to the printer and the inspector).

Real receivers on 127.0.0.1 (in-process, as tests/test_listen_hardening.py drives them, or real
``listen`` processes), raw sockets; h11 is the well-kept HTTP parser the verdicts are compared with.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import h11
import pytest

from moxiehook.receive import ReceiverConfig, start_receiver
from moxiehook.receive.server import ReceivedRequest
from tests.test_listen_hardening import raw_request


def _answer_handing_on_nothing(request: bytes) -> bytes:
    """Send ``request`` to a real receiver; its answer, once it is checked that nothing was handed on."""
    received: list[ReceivedRequest] = []
    running = start_receiver(ReceiverConfig(port=0, read_timeout=10), on_request=received.append)
    try:
        answer = raw_request(running.port, request)
    finally:
        running.stop()
    assert received == [], received
    return answer


def _h11_refuses(data: bytes) -> bool:
    """Whether h11, as a server, refuses ``data`` followed by the sender closing (or finds it incomplete)."""
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(data)
    connection.receive_data(b"")
    try:
        event = connection.next_event()
        if not isinstance(event, h11.Request):
            return True
        while True:
            event = connection.next_event()
            if isinstance(event, h11.EndOfMessage):
                return False
            if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return True
    except h11.RemoteProtocolError:
        return True


# ---------------------------------------------------------------------------
# findings


@pytest.mark.parametrize("head", [
    b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n",  # the blank line never came
    b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nX-Event-Type: Clie",  # cut inside a line
    b"POST /hook HTTP/1.1\r\nHost: x\r\n",  # no length either: taken for an empty body
    b"POST /hook HTTP/1.0",  # the request line itself never ended
])
def test_a_head_the_sender_cut_short_is_no_request(head: bytes) -> None:
    """A sender (a crashed client, a proxy that gave up) sends part of a head and closes its side.

    What a user saw: the stdlib takes a head that ends at the sender's FIN for a whole one, so
    ``listen`` printed, saved (and with ``--forward-to`` forwarded to the app and logged) a request
    that was never sent, and answered it 204. The watchdog's cut was made "no request" by this
    change, but the same head cut by the sender was not. What they should see: nothing handed on,
    no 2xx answer, as for a body shorter than its Content-Length (RFC 9112 §8: an incomplete
    message). h11 finds each of these incomplete too.
    """
    assert _h11_refuses(head)
    answer = _answer_handing_on_nothing(head)
    assert not answer.startswith(b"HTTP/1.1 2"), answer[:200]


def test_a_request_line_without_a_version_is_refused_with_a_status_line() -> None:
    """``GET /hook`` (HTTP/0.9: no version on the request line) then a blank line.

    What a user saw: the stdlib takes it for an HTTP/0.9 GET; ``listen`` printed and saved it
    (``--forward-to`` forwarded it to the app as a GET and logged it) and answered with no status
    line at all (HTTP/0.9 has none), so the sender could not tell what happened. What they should
    see: a ``400`` with a status line, and nothing handed on. h11 refuses the request line too.
    """
    request = b"GET /hook\r\n\r\n"
    assert _h11_refuses(request)
    answer = _answer_handing_on_nothing(request)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]


@pytest.mark.parametrize("length", [b"\x0b2", b"2\x0c", b"\xa02", b"2\x1c"])
def test_a_content_length_padded_with_other_than_spaces_and_tabs_is_refused(length: bytes) -> None:
    """``Content-Length: <VT>2`` (or a form feed, a latin-1 no-break space, a file separator).

    What a user saw: ``str.strip`` drops every Unicode whitespace, so listen read a 2-byte body and
    answered 204 where a proxy in front, or the app behind the relay, reads the value as invalid
    (a request read two ways). The docs promise 400 for a ``Content-Length`` that is not one run
    of ASCII digits; only spaces and tabs are optional whitespace around a field value (RFC 9110
    §5.5), as ``moxiehook.http.tokens`` already holds. What they should see: 400, nothing handed on.
    h11 refuses each of these.
    """
    request = b"POST /hook HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " + length + b"\r\n\r\n{}"
    assert _h11_refuses(request)
    answer = _answer_handing_on_nothing(request)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]


# ---------------------------------------------------------------------------
# what held (kept as tests so it keeps holding)


def test_a_hundred_slow_senders_are_all_cut_and_a_good_one_is_answered_meanwhile() -> None:
    """100 slow senders at once (heads dripped a byte at a time, bodies dripped below any per-read
    timeout) while a well-behaved sender sends: it is answered, each slow one is cut off without an
    answer and nothing of theirs is handed on, and their threads end."""
    before = _handler_threads()
    received: list[ReceivedRequest] = []
    running = start_receiver(ReceiverConfig(port=0, read_timeout=1.0), on_request=received.append)
    slow: list[socket.socket] = []
    try:
        for number in range(100):
            sock = socket.create_connection(("127.0.0.1", running.port), timeout=20)
            sock.sendall(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" if number % 2
                         else b"POST /slo")
            slow.append(sock)
        assert raw_request(running.port, b"POST /good HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
                         ).startswith(b"HTTP/1.1 204 ")
        open_ones = list(slow)
        for _ in range(300):  # a byte each every 0.1 s: 30 s at most; the cuts come after 1 to 1.25 s
            if not open_ones:
                break
            still = []
            for sock in open_ones:
                try:
                    sock.sendall(b"x")
                except OSError:
                    continue
                still.append(sock)
            open_ones = still
            threading.Event().wait(0.1)
        for sock in slow:
            sock.settimeout(20)
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(65536) == b""  # closed without an answer
        assert [request.path for request in received] == ["/good"]
    finally:
        for sock in slow:
            sock.close()
        running.stop()
    for _ in range(200):  # every handler thread ends once its connection is cut (20 s at most)
        if _handler_threads() <= before:
            break
        threading.Event().wait(0.1)
    assert _handler_threads() <= before


def _handler_threads() -> int:
    return sum("process_request_thread" in thread.name for thread in threading.enumerate())


def test_ctrl_c_right_after_a_burst_prints_and_saves_every_request_once_in_order(tmp_path: Path) -> None:
    """3,000 requests pipelined on one keep-alive connection, every answer read, then Ctrl-C at once
    (while the printer may be resting between batches): each request printed once, in order, and
    saved once; exit 0, no traceback."""
    process = subprocess.Popen(
        [sys.executable, "-m", "moxiehook", "listen", "--port", "0", "--quiet", "--save", "saved.jsonl"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        port = int(re.search(r"127\.0\.0\.1:(\d+)", first).group(1))  # type: ignore[union-attr]
        count = 3000
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(b"".join(b"POST /b%d HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}" % number
                                  for number in range(count)))
            answers = b""
            while answers.count(b"HTTP/1.1 204 ") < count:
                chunk = sock.recv(65536)
                assert chunk, "listen closed the connection mid-burst"
                answers += chunk
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode == 0
    assert "Traceback" not in stderr
    printed = [line.split()[2] for line in stdout.splitlines() if " /b" in line]
    assert printed == [f"/b{number}" for number in range(count)]
    saved = [json.loads(line)["path"] for line in (tmp_path / "saved.jsonl").read_text().splitlines()]
    assert saved == [f"/b{number}" for number in range(count)]


class _HeldRelay:
    """A relay whose app answers only when the test says so (a forward outliving ``stop``'s grace)."""

    def __init__(self) -> None:
        self.called = threading.Event()
        self.release = threading.Event()

    def forward(self, request: ReceivedRequest) -> ReceivedRequest:
        from dataclasses import replace

        from moxiehook.receive import Forwarded

        self.called.set()
        self.release.wait(30)
        answer = Forwarded(url="http://app.invalid/", app_status=200, headers=[("Content-Length", "2")],
                           body=b"ok", error=None, duration_ms=1.0, record_id=None)
        return replace(request, status=200, forwarded=answer)

    def close(self) -> None:
        pass


def test_a_connection_kept_open_after_a_forward_that_outlived_stop_is_still_cut_off() -> None:
    """An app slower than ``stop``'s grace; once it answers, the sender keeps its connection open, idle.

    What a user of ``start_receiver`` (``demo``, a test) saw: the watchdog is the only bound on a
    sender's socket now, and it stopped at ``stop`` because no connection was armed at that moment
    (the forward's connection is disarmed while the app works). The answer then went out and the
    connection was armed for its next request with nobody watching: its thread waited for ever on
    the idle socket (before this change, the socket's own timeout ended it). What they should see:
    the idle connection closed after the read timeout, as one left open after ``stop`` already is.
    """
    relay = _HeldRelay()
    running = start_receiver(ReceiverConfig(port=0, read_timeout=0.5), relay=relay)
    try:
        with socket.create_connection(("127.0.0.1", running.port), timeout=20) as idle:
            idle.sendall(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            assert relay.called.wait(20)
            assert running.stop(grace=0.1) is False  # the forward is still in flight
            threading.Event().wait(1.0)  # the app takes a while longer (the watchdog has seen stop by then)
            relay.release.set()
            answer = b""
            while not answer.endswith(b"\r\n\r\nok"):
                chunk = idle.recv(65536)
                assert chunk, answer
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200 ")
            try:
                assert idle.recv(65536) == b""  # closed by the server; still open, it is a 20 s timeout
            except TimeoutError:
                pytest.fail("the idle connection was never closed after stop")
    finally:
        relay.release.set()
        running.stop()


def test_sigterm_ends_listen_whose_stdout_is_not_being_read(tmp_path: Path) -> None:
    """``moxiehook listen --quiet | slow-consumer`` (a pipe nobody reads for now: a paused pager, a
    stopped job, a full CI log pipe), 3,000 requests, then SIGTERM.

    What a user saw: the printer thread blocks in its write once the pipe is full; on SIGTERM,
    ``listen`` waits for the printer to print what is queued, for ever (and ignores a second
    Ctrl-C while it stops), so only SIGKILL ended it. What they should see: ``listen`` stops
    (exit 0, no traceback) in bounded time, printing what the pipe still takes, and saying on
    stderr that the last requests were not printed.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "moxiehook", "listen", "--port", "0", "--quiet"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stderr is not None and process.stdout is not None
        first = process.stderr.readline()
        port = int(re.search(r"127\.0\.0\.1:(\d+)", first).group(1))  # type: ignore[union-attr]
        count = 3000  # about 150 kB of lines: more than a pipe holds
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(b"".join(b"POST /b%d HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}" % number
                                  for number in range(count)))
            answers = b""
            while answers.count(b"HTTP/1.1 204 ") < count:
                chunk = sock.recv(65536)
                assert chunk, "listen closed the connection mid-burst"
                answers += chunk
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail("listen did not stop within 20 s of SIGTERM")
        stderr = process.stderr.read()
        assert code == 0
        assert "Traceback" not in stderr
        assert "stopped without printing the last requests" in stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.mark.parametrize("line", [b"POST /hook", b"HELLO", b"POST /hook HTTP/1.1 extra", b"POST  "])
def test_a_bad_request_line_is_answered_400_with_a_status_line(line: bytes) -> None:
    """A request line that is not ``METHOD target HTTP/x.y``: a non-GET with no version, one word,
    four words.

    What a user saw: the stdlib answers these as HTTP/0.9 (its default version when the line has
    fewer than three words), so the 400 went out as a bare HTML page with no status line, which no
    HTTP client reads as an answer (curl: "Received HTTP/0.9 when not allowed"). What they should
    see: every request gets an HTTP answer, here ``400`` with a status line; nothing handed on.
    h11 refuses each.
    """
    request = line + b"\r\nHost: x\r\n\r\n"
    assert _h11_refuses(request)
    answer = _answer_handing_on_nothing(request)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
