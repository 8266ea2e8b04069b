"""Red team of the relay (``listen --forward-to``) and ``replay``: findings, each a real process on loopback.

Requests are written on raw sockets (an HTTP client would tidy them up) to a real ``listen
--forward-to`` process; the app is the loopback test receiver, which records what reached it.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import signal
import socket
from pathlib import Path

import pytest

from moxiehook.log import reading as logquery  # where entries_backward finds parse_entry
from moxiehook.log import replay as replayselect
from tests import test_listen_forward
from tests.conftest import Answer, Receiver, run_moxiehook
from tests.test_listen_forward import write_config

relay = test_listen_forward.relay  # the fixture: a real listen --forward-to process


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def _head(extra: str = "", body: bytes = b'{"id": 1}', connection: str = "Connection: close\r\n") -> bytes:
    return (f"POST /hooks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Event-Type: ClientCreate\r\n{extra}"
            f"Content-Length: {len(body)}\r\n{connection}\r\n").encode() + body


def _read_all(sock: socket.socket) -> bytes:
    """Everything the relay sends until it closes the connection (socket.timeout if it never does)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_proxy_headers_never_reach_the_app(relay, receiver: Receiver) -> None:
    """A sender adds ``Proxy: http://evil:1/`` (httpoxy) and ``Proxy-Foo``: the app saw them.

    A CGI-style app turns ``Proxy`` into ``HTTP_PROXY`` and sends its own outgoing calls
    through the sender's proxy. The relay is the intermediary: ``Proxy`` and every
    ``Proxy-*`` header are for it, never for the app, which should see neither.
    """
    listener = relay(receiver.url("/app"))
    with socket.create_connection(_address(listener.url), timeout=30) as sock:
        sock.sendall(_head("Proxy: http://127.0.0.1:1/\r\nProxy-Foo: bar\r\nPROXY-Authorization: Basic eDp5\r\n"
                           "X-Kept: yes\r\n"))
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    [received] = receiver.requests
    assert received.headers.get("x-kept") == "yes"
    assert not [name for name in received.headers if name == "proxy" or name.startswith("proxy-")]
    code, _, stderr = listener.stop()
    assert code == 0 and "Traceback" not in stderr


def test_connection_close_among_other_tokens_closes_the_connection(relay, receiver: Receiver) -> None:
    """``Connection: X-Trace, close`` (RFC 9110 §7.6.1: a list) left the sender's connection open.

    The sender waits for the relay to close after the answer, as it asked, and hangs
    until its own timeout. ``close`` anywhere in the list closes the connection.
    """
    listener = relay(receiver.url("/app"))
    with socket.create_connection(_address(listener.url), timeout=30) as sock:
        sock.sendall(_head("X-Trace: secret\r\n", connection="Connection: X-Trace, close\r\n"))
        answer = _read_all(sock)  # socket.timeout (30 s) when the relay keeps it open
    assert answer.startswith(b"HTTP/1.1 200"), answer
    [received] = receiver.requests
    assert "x-trace" not in received.headers  # named by Connection: hop-by-hop, not passed on
    code, _, stderr = listener.stop()
    assert code == 0 and "Traceback" not in stderr


def test_a_sender_that_stops_mid_request_is_dropped(relay, receiver: Receiver, tmp_path: Path) -> None:
    """A sender announces 100 bytes, sends 1, and stalls: the relay held the connection (and a thread) forever.

    Every wait is bounded: a sender silent for longer than ``settings.timeout`` (here 1 s)
    mid-request is dropped, and nothing was forwarded or logged for it.
    """
    config = write_config(tmp_path / "moxiehook.toml", "http://x", timeout=1)
    listener = relay(receiver.url("/app"), config=config)
    with socket.create_connection(_address(listener.url), timeout=30) as sock:
        sock.sendall(b"POST /hooks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
        _read_all(sock)  # socket.timeout (30 s) when the relay never lets go
    assert receiver.requests == []
    code, _, stderr = listener.stop()
    assert code == 0 and "Traceback" not in stderr


def test_ctrl_c_with_a_half_sent_request_does_not_claim_cut_forwards(relay, receiver: Receiver,
                                                                      tmp_path: Path) -> None:
    """Ctrl-C while a sender is still sending its request: listen waited out the timeout, then said
    "stopped with forwards still in flight after the timeout; they were cut off".

    Nothing was forwarded: only a request that has fully arrived is a forward in flight
    (the one listen waits for). The user should see a plain "stopped", and nothing reached the app.
    """
    config = write_config(tmp_path / "moxiehook.toml", "http://x", timeout=3)
    listener = relay(receiver.url("/app"), config=config)
    with socket.create_connection(_address(listener.url), timeout=30) as sock:
        sock.sendall(b"POST /hooks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
        code, _, stderr = listener.stop(signal.SIGINT)
    assert code == 0 and "Traceback" not in stderr
    assert "in flight" not in stderr and "cut off" not in stderr, stderr
    assert receiver.requests == []


def _forward_log(path: Path, events: int, failed_every: int) -> None:
    """A relay's log: ``events`` distinct events, one in ``failed_every`` failed (as the relay writes them)."""
    with path.open("w") as log:
        for number in range(events):
            failed = number % failed_every == 0
            record = {
                "kind": "delivery", "id": f"dlv_01M94CK4243195MM{number:08d}",
                "event_id": f"evt_01M94CK4243195MM{number:08d}", "event": "ClientCreate", "endpoint": "listen",
                "url": "http://127.0.0.1:5000/hooks", "mode": "forward", "replay_of": None,
                "at": "2026-12-06T00:38:18.946Z", "outcome": "failed" if failed else "delivered",
                "status": 500 if failed else 200, "error": "HTTP 500" if failed else None, "duration_ms": 1.1,
                "attempts": [{"at": "2026-12-06T00:38:18.946Z", "status": 500 if failed else 200,
                              "error": None, "duration_ms": 1.1}],
                "request": {"method": "POST", "headers": {"X-Event-Type": "ClientCreate"},
                            "body": {"client": {"id": number}}},
                "response": {"status": 500 if failed else 200, "headers": {}, "body": ""},
            }
            log.write(json.dumps(record, separators=(",", ":")) + "\n")


def test_replay_selection_on_a_relay_log_builds_only_the_records_it_may_resend(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``replay --failed`` on a 100k-line relay log took 6x as long as on a fire log of the same size.

    Every forward line was parsed AND built into a checked record (the costliest step), though
    a delivered forward that the query does not select only adds its event's 32-byte key, and a
    failed one the query does not select changes nothing. Selection builds records only for what
    it may resend (here the 20 failed events of 2,000 lines), and still resends each of them.
    """
    path = tmp_path / "log.jsonl"
    _forward_log(path, 2000, failed_every=100)
    built = []
    original = logquery.parse_entry

    def counting(line: bytes, offset: int) -> logquery.LogEntry | None:
        built.append(offset)
        return original(line, offset)

    monkeypatch.setattr(logquery, "parse_entry", counting)
    selection = replayselect.select(path, replayselect.ReplayQuery(failed=True))
    assert [entry.data["id"] for entry in selection.entries] == [
        f"dlv_01M94CK4243195MM{number:08d}" for number in range(0, 2000, 100)]
    assert len(built) == 20


@pytest.mark.skipif(not Path("/proc/self/task").is_dir() or platform.machine() != "x86_64",
                    reason="needs Linux tgkill on x86_64 to aim a signal at one thread")
def test_ctrl_c_handed_to_a_server_thread_still_stops_listen(relay, receiver: Receiver) -> None:
    """Ctrl-C sometimes did nothing: listen kept running until killed (1 time in 3 with a sender connected).

    The kernel hands a process's SIGINT to any of its threads; when it was one of the server's,
    Python ran the handler only when the main thread next ran Python code, and the main thread
    waited without end. Here the signal is aimed at a server thread: listen stops, cleanly.
    """
    listener = relay(receiver.url("/app"))
    with socket.create_connection(_address(listener.url), timeout=30) as sock:
        sock.sendall(b"POST /hooks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")  # a handler thread
        pid = listener.process.pid
        threads = [int(tid) for tid in os.listdir(f"/proc/{pid}/task") if int(tid) != pid]
        libc = ctypes.CDLL(None, use_errno=True)
        tgkill = 234  # the x86_64 syscall number
        assert libc.syscall(tgkill, pid, threads[-1], signal.SIGINT) == 0
        code = listener.process.wait(timeout=30)  # subprocess.TimeoutExpired when the signal is lost
    assert code == 0


FRAMING = [
    # (what the sender wrote after the request line's usual headers, the body, the status it should get)
    pytest.param("Transfer-Encoding: chunked, gzip\r\n", b'7\r\n{"id":1}\r\n0\r\n\r\n', 400, id="chunked-not-last"),
    pytest.param("Transfer-Encoding: gzip\r\nContent-Length: 8\r\n", b'{"id":1}', 400, id="coding-without-chunked"),
    pytest.param("Transfer-Encoding: gzip, chunked\r\n", b'8\r\n{"id":1}\r\n0\r\n\r\n', 501, id="unknown-coding"),
    pytest.param("Transfer-Encoding: xchunked\r\nContent-Length: 8\r\n", b'{"id":1}', 400, id="xchunked"),
    pytest.param("Content-Length: 8\r\nContent-Length: 9\r\n", b'{"id":1}', 400, id="two-lengths"),
    pytest.param("Content-Length : 8\r\n", b'{"id":1}', 400, id="space-before-colon"),
    pytest.param("X-Fold: a\r\n b\r\nContent-Length: 8\r\n", b'{"id":1}', 400, id="obs-fold"),
    pytest.param("X-Nul: a\x00b\r\nContent-Length: 8\r\n", b'{"id":1}', 400, id="nul-in-value"),
]


def test_a_bare_cr_in_the_head_is_refused_not_read_as_a_line_break(relay, receiver: Receiver) -> None:
    """``X-Note: a<CR>Proxy-Hidden: 1`` (a CR with no LF) reached the app as two headers, a second
    one that no parser reading RFC 9112 would see (h11 refuses the request; a proxy in front of
    the relay sees one header). RFC 9112 §2.2: a bare CR is invalid; the relay answers 400 and
    forwards nothing.
    """
    listener = relay(receiver.url("/app"))
    with socket.create_connection(_address(listener.url), timeout=30) as sock:
        sock.sendall(_head("X-Note: a\rX-Smuggled: 1\r\n"))
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert receiver.requests == []
    code, _, stderr = listener.stop()
    assert code == 0 and "Traceback" not in stderr


@pytest.mark.parametrize(("extra", "body", "status"), FRAMING)
def test_a_request_whose_framing_is_ambiguous_is_refused_not_relayed(relay, receiver: Receiver, tmp_path: Path,
                                                                    extra: str, body: bytes, status: int) -> None:
    """The relay read ``Transfer-Encoding: chunked, gzip``, two Content-Lengths, ``Content-Length :`` and a
    folded header its own way and forwarded what it made of them (an empty body, the first length,
    a body still gzip-coded with no header saying so), or answered 502 blaming the app.

    RFC 9112 §5.1, §5.2, §6.1, §6.3 and RFC 9110 §5.5: such a request is refused by the
    intermediary (400, or 501 for a transfer coding it does not know), with the connection
    closed; nothing reaches the app and nothing is logged to replay.
    """
    listener = relay(receiver.url("/app"))
    with socket.create_connection(_address(listener.url), timeout=30) as sock:
        sock.sendall(f"POST /hooks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Event-Type: ClientCreate\r\n{extra}\r\n".encode()
                     + body)
        answer = _read_all(sock)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer
    assert receiver.requests == []
    code, _, stderr = listener.stop()
    assert code == 0 and "Traceback" not in stderr
    log = tmp_path / "moxiehook-log.jsonl"
    assert not log.exists() or '"kind":"delivery"' not in log.read_text()


BROKEN_APP = '''
def app(environ, start_response):
    start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
    return [b"boom"]
'''


@pytest.mark.parametrize("run", [["--count", "1"], ["--rate", "20", "--duration", "0.1s"]], ids=["fire", "load"])
def test_fire_app_is_logged_in_process_and_never_replayed_to_the_network(receiver: Receiver, tmp_path: Path,
                                                                          run: list[str]) -> None:
    """``fire ClientCreate --app myapp:app`` into a broken app was logged as ``mode = "fire"`` (``load``
    with --rate) with the mapping's URL, and ``replay --failed`` then sent the event, with the
    endpoint's token, to that URL over the network.

    A delivery made in-process is logged as ``mode = "app"``; ``replay --failed`` without --app
    leaves it out and says so; ``replay ID`` is refused (exit 2) naming --app; nothing reaches
    the network.
    """
    (tmp_path / "myapp.py").write_text(BROKEN_APP)
    config = write_config(tmp_path / "moxiehook.toml", receiver.url("/hooks"))
    fired = run_moxiehook("--config", str(config), "fire", "ClientCreate", "--app", "myapp:app", *run, cwd=tmp_path)
    assert fired.returncode == 1 and "Traceback" not in fired.stderr, fired.stderr
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert records and {record["mode"] for record in records} == {"app"}
    replayed = run_moxiehook("--config", str(config), "replay", "--failed", cwd=tmp_path)
    assert replayed.returncode == 0 and "left out" in replayed.stderr, replayed.stderr
    by_id = run_moxiehook("--config", str(config), "replay", records[0]["id"], cwd=tmp_path)
    assert by_id.returncode == 2 and "--app" in by_id.stderr, by_id.stderr
    assert receiver.requests == []


def test_a_204_that_announces_a_body_is_relayed_as_the_204_it_is(relay, receiver: Receiver, tmp_path: Path) -> None:
    """The app answered ``204 No Content`` with ``Content-Length: 5`` (and 5 stray bytes): the sender got
    ``502 the app did not answer (... closed the connection mid-answer)`` and a failed record was logged,
    so ``replay --failed`` would resend an event the app took.

    A 204 has no body whatever its headers say (RFC 9112 §6.3, as httpx and curl read it): the
    sender gets the 204, and the record is delivered.
    """
    receiver.default = Answer(status=204, body=b"hello")
    listener = relay(receiver.url("/app"))
    with socket.create_connection(_address(listener.url), timeout=30) as sock:
        sock.sendall(_head())
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 204 "), answer
    code, _, stderr = listener.stop()
    assert code == 0 and "Traceback" not in stderr
    records = [json.loads(line) for line in (tmp_path / "moxiehook-log.jsonl").read_text().splitlines()]
    assert [(record["outcome"], record["status"]) for record in records] == [("delivered", 204)]


def test_a_body_shorter_than_announced_is_not_relayed(relay, receiver: Receiver, tmp_path: Path) -> None:
    """A sender announced ``Content-Length: 100``, sent 9 bytes and closed its side: the relay forwarded
    the 9 bytes to the app as a whole request (with ``Content-Length: 9``) and logged it delivered.

    An incomplete request is not a request (RFC 9112 §8): nothing reaches the app, nothing is logged.
    """
    listener = relay(receiver.url("/app"))
    with socket.create_connection(_address(listener.url), timeout=30) as sock:
        sock.sendall(b"POST /hooks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Event-Type: ClientCreate\r\n"
                     b"Content-Length: 100\r\n\r\n{\"id\": 1}")
        sock.shutdown(socket.SHUT_WR)
        _read_all(sock)
    code, _, stderr = listener.stop()
    assert code == 0 and "Traceback" not in stderr
    assert receiver.requests == []
    log = tmp_path / "moxiehook-log.jsonl"
    assert not log.exists() or '"kind":"delivery"' not in log.read_text()


def test_a_sender_dribbling_its_request_is_cut_off(relay, receiver: Receiver, tmp_path: Path) -> None:
    """A sender that sends its request one byte every 0.3 s (a slowloris) never goes silent long enough
    for a per-read timeout: the relay kept reading, holding the connection and a thread, for as
    long as the sender liked.

    The whole request must have arrived within ``settings.timeout`` (here 1 s) of its start: the
    relay then disconnects the sender, and nothing reaches the app.
    """
    config = write_config(tmp_path / "moxiehook.toml", "http://x", timeout=1)
    listener = relay(receiver.url("/app"), config=config)
    request = b"POST /hooks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 400\r\n\r\n" + b" " * 400
    cut = False
    with socket.create_connection(_address(listener.url), timeout=30) as sock:
        for byte in request:  # bounded: 460 bytes, about 2 minutes if the relay never lets go
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                cut = True
                break
            sock.settimeout(0.3)
            try:
                if sock.recv(1024) == b"":
                    cut = True
                    break
            except TimeoutError:
                pass
    assert cut
    assert receiver.requests == []
    code, _, stderr = listener.stop()
    assert code == 0 and "Traceback" not in stderr
