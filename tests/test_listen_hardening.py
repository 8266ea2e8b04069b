"""``listen`` against hostile or odd senders: every request gets an HTTP answer, no traceback,
nothing from the network acts on the terminal (issue 15, items 14–17)."""

from __future__ import annotations

import base64
import json
import socket
import time
from pathlib import Path

import pytest

from moxiehook.cli.listen_cmds import PRETTY_LIMIT, _block, _one_line
from moxiehook.cli.render import escape_control
from moxiehook.receive.server import CheckResult, ReceivedRequest
from tests.conftest import run_moxiehook
from tests.test_cli_listen import listen  # noqa: F401 - the fixture

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def raw_request(port: int, data: bytes, timeout: float = 20) -> bytes:
    """Send ``data`` as it is on a fresh connection; return everything answered until close."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def post(path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: x", f"Content-Length: {len(body)}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


def no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr and "Exception" not in stderr, stderr


def test_deeply_nested_json_is_answered_and_saved_as_text(listen, tmp_path: Path) -> None:  # noqa: F811
    listener = listen("--save", "saved.jsonl")
    body = b"[" * 200_000 + b"]" * 200_000
    assert status_of(raw_request(listener.port, post("/deep", body))) == 204
    code, stdout, stderr = listener.stop()
    assert code == 0
    no_traceback(stderr)
    assert "POST /deep  → 204" in stdout
    assert f"({len(body)} bytes in all)" in stdout
    saved = json.loads((tmp_path / "saved.jsonl").read_text())
    assert saved["body"] == body.decode()  # kept whole, as text


@pytest.mark.parametrize("size_line", [b"-5", b"+5", b"0x5", b" 5 5", b"zz", b"1" * 40])
def test_bad_chunk_sizes_are_answered_400(listen, size_line: bytes) -> None:  # noqa: F811
    listener = listen()
    request = (b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + size_line + b"\r\nhello\r\n0\r\n\r\n")
    answer = raw_request(listener.port, request)
    assert status_of(answer) == 400
    assert b"bad chunked body" in answer
    code, stdout, stderr = listener.stop()
    assert code == 0
    no_traceback(stderr)
    assert stdout == ""  # nothing was received, so nothing is printed


def test_a_good_chunked_body_still_arrives(listen) -> None:  # noqa: F811
    listener = listen()
    request = (b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               b"3;ext=1\r\n{\"a\r\n5\r\n\":1}\n\r\n0\r\n\r\n")
    assert status_of(raw_request(listener.port, request)) == 204
    _, stdout, _ = listener.stop()
    assert '"a": 1' in stdout


@pytest.mark.parametrize("length", ["-5", "+5", "²", "5 5"])
def test_bad_content_lengths_are_answered_400(listen, length: str) -> None:  # noqa: F811
    listener = listen()
    request = f"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\nhello".encode("latin-1")
    assert status_of(raw_request(listener.port, request)) == 400
    _, _, stderr = listener.stop()
    no_traceback(stderr)


def test_save_to_a_full_disk_answers_and_warns_once(listen) -> None:  # noqa: F811
    listener = listen("--save", "/dev/full")
    for _ in range(3):
        assert status_of(raw_request(listener.port, post("/full", b'{"a": 1}'))) == 204
    code, stdout, stderr = listener.stop()
    assert code == 0
    no_traceback(stderr)
    assert stdout.count("POST /full  → 204") == 3
    warnings = [line for line in stderr.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: --save: cannot write /dev/full: No space left on device "
                        "(the request was still answered)"]


def test_save_never_writes_bare_nan(listen, tmp_path: Path) -> None:  # noqa: F811
    listener = listen("--save", "saved.jsonl")
    body = b'{"amount": NaN, "other": -Infinity}'
    assert status_of(raw_request(listener.port, post("/nan", body))) == 204
    listener.stop()
    line = (tmp_path / "saved.jsonl").read_text()

    def strict(name: str) -> None:
        raise AssertionError(f"bare {name} in the saved line")

    saved = json.loads(line, parse_constant=strict)
    assert saved["body"] == body.decode()  # not JSON to a strict reader: kept as text


@pytest.mark.parametrize("stamp", ["9" * 400, "-1", "1_700_000_000", "17.5", "9" * 5000])
def test_an_absurd_webhook_timestamp_is_a_401_with_the_reason(listen, stamp: str) -> None:  # noqa: F811
    listener = listen("--signing-secret", SECRET)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": stamp, "webhook-signature": "v1,abc"}
    answer = raw_request(listener.port, post("/signed", b"{}", headers))
    assert status_of(answer) == 401
    assert b"is not a Unix time" in answer
    _, _, stderr = listener.stop()
    no_traceback(stderr)


def test_a_5_mb_body_does_not_hold_up_other_requests(listen) -> None:  # noqa: F811
    """The big body is answered, the small ones after it too, within a bound far below the 47 s
    that pretty-printing it used to hold every request for; its block shows a preview only."""
    listener = listen()
    big = json.dumps([{"id": i, "name": f"client {i}", "tags": ["a", "b"]} for i in range(110_000)]).encode()
    assert len(big) > 5_000_000
    assert status_of(raw_request(listener.port, post("/big", big), timeout=30)) == 204
    for n in range(5):
        assert status_of(raw_request(listener.port, post(f"/small{n}", b"{}"), timeout=10)) == 204
    code, stdout, stderr = listener.stop()
    assert code == 0
    assert f"({len(big)} bytes in all)" in stdout
    assert stdout.count("\n") < 200  # a preview, not 1.2 million pretty-printed lines
    assert all(f"POST /small{n}  → 204" in stdout for n in range(5))


def test_escape_sequences_from_a_sender_never_reach_the_terminal(listen) -> None:  # noqa: F811
    listener = listen()
    # Valid JSON: the ESC as a JSON escape, C1 CSI and a bidi override as raw UTF-8.
    body = '{"name": "\\u001b]0;pwned\\u0007 \u009b31m red \u202e"}'.encode()
    request = post("/a\x1b[2Jb", body, {"X-Event-Type": "\x1b[31mClientCreate", "X-Event-Origin": "o\x1b[1m"})
    assert status_of(raw_request(listener.port, request)) == 204
    text_body = b"plain \x1b[41m text \x08\x08"
    assert status_of(raw_request(listener.port, post("/text", text_body))) == 204
    _, stdout, stderr = listener.stop()
    for control in ("\x1b", "\x07", "\x08", "\u009b", "\u202e"):
        assert control not in stdout, repr(control)
    assert "POST /a\\x1b[2Jb" in stdout
    assert "event \\x1b[31mClientCreate" in stdout
    assert "\\u001b]0;pwned" in stdout  # JSON escapes C0 in strings; C1 and bidi are escaped by us
    assert "\\x9b31m red \\u202e" in stdout
    assert "plain \\x1b[41m text \\x08\\x08" in stdout


def test_quiet_prints_one_line_per_request(listen) -> None:  # noqa: F811
    listener = listen("--quiet", "--token", "t")
    assert status_of(raw_request(listener.port, post("/q", b'{"a": 1}', {
        "X-Event-Type": "ClientCreate", "Authorization": "Bearer t"}))) == 204
    assert status_of(raw_request(listener.port, post("/q", b"{}", {"X-Event-Type": "\x1bX"}))) == 401
    _, stdout, _ = listener.stop()
    lines = stdout.splitlines()
    assert len(lines) == 2, stdout
    assert lines[0].endswith("  POST /q  ClientCreate  → 204")
    assert lines[1].endswith("  POST /q  \\x1bX  → 401  rejected: missing Authorization header")


def test_host_empty_is_refused(tmp_path: Path) -> None:
    result = run_moxiehook("listen", "--port", "0", "--host", "", cwd=tmp_path, timeout=20)
    assert result.returncode == 2
    assert result.stderr.startswith("error: --host: give an address")
    assert len(result.stderr.strip().splitlines()) == 1


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
def test_host_in_brackets_works_as_listen_prints_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", "moxiehook", "listen", "--port", "0", "--host", "[::1]",
                                "--ready-file", "ready"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        ready = tmp_path / "ready"
        for _ in range(200):
            if ready.exists() or process.poll() is not None:
                break
            time.sleep(0.05)
        url = ready.read_text().strip()
        assert url.startswith("http://[::1]:")
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("::1", port), timeout=10) as sock:
            sock.sendall(post("/v6", b"{}"))
            assert sock.recv(100).startswith(b"HTTP/1.1 204")
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "POST /v6  → 204" in out


def _request(body: bytes) -> ReceivedRequest:
    return ReceivedRequest(at="2026-11-28T14:00:00.000Z", method="POST", path="/p",
                           headers=(("X-Event-Type", "E"),), body=body, check=CheckResult(ok=True), status=204)


def test_json_just_under_the_pretty_limit_is_pretty_and_over_it_a_preview() -> None:
    small = json.dumps({"k": "v" * (PRETTY_LIMIT - 20)}).encode()
    big = json.dumps({"k": "v" * (PRETTY_LIMIT + 20)}).encode()
    assert '{\n  "k": ' in _block(_request(small), False)
    assert f"({len(big)} bytes in all)" in _block(_request(big), False)
    assert _one_line(_request(big), False).count("\n") == 1


def test_escape_control_keeps_text_and_shows_controls() -> None:
    assert escape_control("plain café ✓") == "plain café ✓"
    assert escape_control("a\x1b[31mb\r\n\x7f\u2028") == "a\\x1b[31mb\\x0d\\x0a\\x7f\\u2028"
    assert escape_control("line\nnext\t", keep_newlines=True) == "line\nnext\\x09"


def test_a_disable_reason_with_control_characters_is_shown_escaped(tmp_path: Path) -> None:
    config = tmp_path / "moxiehook.toml"
    config.write_text('version = 1\n\n[settings]\nlog_file = "log.jsonl"\n\n[endpoints.crm]\n'
                      '[[endpoints.crm.mappings]]\nevent = "ClientCreate"\nurl = "http://127.0.0.1:9/x"\n')
    reason = "\x1b[31mbroken\x07 again"
    disabled = run_moxiehook("--config", str(config), "endpoint", "disable", "crm", "--reason", reason, cwd=tmp_path)
    assert disabled.returncode == 0, disabled.stderr
    status = run_moxiehook("--config", str(config), "endpoint", "status", "crm", cwd=tmp_path)
    fired = run_moxiehook("--config", str(config), "fire", "ClientCreate", cwd=tmp_path)
    for output in (disabled.stdout, status.stdout, fired.stderr):
        assert "\x1b" not in output and "\x07" not in output, output
    assert status.stdout == "disabled: \\x1b[31mbroken\\x07 again\n"
    assert "skipped: \\x1b[31mbroken\\x07 again" in fired.stderr


def test_a_head_cut_off_by_the_watchdog_is_no_request() -> None:
    """A sender sends a head with its Host, then dribbles one header line and never ends the head.

    The watchdog (the only bound on a sender's socket, which has no timeout of its own) cuts it
    off; to the handler that looks like the sender hanging up, and the stdlib takes a head ending
    there for a whole one. Nothing must be handed on, printed or answered 204.
    """
    import select

    from moxiehook.receive import ReceiverConfig, start_receiver

    received: list[ReceivedRequest] = []
    running = start_receiver(ReceiverConfig(port=0, read_timeout=0.5), on_request=received.append)
    try:
        with socket.create_connection(("127.0.0.1", running.port), timeout=30) as slow:
            slow.sendall(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nX-Dribble: ")
            answer = b""
            for _ in range(300):  # a byte every 0.1 s: 30 s at most, the cut comes after 0.5 to 0.75 s
                try:
                    slow.sendall(b"x")
                except OSError:
                    break
                readable, _, _ = select.select([slow], [], [], 0.1)
                if readable:
                    answer = slow.recv(65536)
                    break
        assert answer == b""
        assert received == []
    finally:
        running.stop()


def test_a_keep_alive_connection_left_open_after_stop_is_still_cut_off() -> None:
    """A sender keeps its connection open, idle, after the receiver was stopped.

    The sockets have no timeout of their own (the watchdog bounds them), so the watchdog must go
    on bounding the connections still open after ``stop`` instead of leaving their threads
    waiting for ever: the connection is closed once idle for the read timeout.
    """
    from moxiehook.receive import ReceiverConfig, start_receiver

    running = start_receiver(ReceiverConfig(port=0, read_timeout=0.5))
    with socket.create_connection(("127.0.0.1", running.port), timeout=10) as idle:
        idle.sendall(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert idle.recv(65536).startswith(b"HTTP/1.1 204 ")
        running.stop()
        assert idle.recv(65536) == b""  # closed by the server (a hang would end in the 10 s timeout)


class _BigAnswer:
    """A relay whose app answers 32 MiB: more than the loopback socket buffers hold."""

    def __init__(self) -> None:
        import threading

        self.called = threading.Event()

    def forward(self, request: ReceivedRequest) -> ReceivedRequest:
        from dataclasses import replace

        self.called.set()
        from moxiehook.receive import Forwarded

        answer = Forwarded(url="http://app.invalid/", app_status=200, headers=[], body=b"x" * (32 * 1024 * 1024),
                           error=None, duration_ms=1.0, record_id=None)
        return replace(request, status=200, forwarded=answer)

    def close(self) -> None:
        pass


def test_a_sender_that_never_reads_its_answer_is_cut_off() -> None:
    """A sender sends a whole request and never reads the (large) answer.

    The sockets have no timeout of their own, so without the watchdog the thread answering would
    wait in its write for ever (one such sender per thread held). The answer's writing is bounded
    by the read timeout: the request is no longer in flight, and ``stop`` finds none.
    """
    from moxiehook.receive import ReceiverConfig, start_receiver

    relay = _BigAnswer()
    running = start_receiver(ReceiverConfig(port=0, read_timeout=0.5), relay=relay)
    try:
        with socket.create_connection(("127.0.0.1", running.port), timeout=10) as deaf:
            deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            deaf.sendall(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            assert relay.called.wait(10)  # the request is in flight (its answer about to be written)
            assert running.stop(grace=10) is True  # cut after 0.5 to 0.75 s, not after 10 s
    finally:
        running.stop()
