"""Red team (late): attacks on the CA-bundle config error, Ctrl-C during the exit, and .ci/run's compileall."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _cert(folder: Path) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl binary is needed to make a test certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    return cert


def test_listen_forward_reads_a_relative_ca_bundle_beside_the_config_as_fire_does(tmp_path: Path) -> None:
    """`verify_tls = "ca.pem"` in sub/moxiehook.toml, with sub/ca.pem a good bundle; run from tmp/.

    Seen: `fire` trusts sub/ca.pem, but `listen --forward-to https://… --endpoint a` read ./ca.pem
    (the working folder): "error: ca.pem holds no CA certificate that can be loaded (No such file
    or directory)", or, with another ./ca.pem there, silently trusted a CA the config never named.
    Should: listen resolves the bundle beside the config, as every other command does, and starts.
    """
    sub = tmp_path / "sub"
    sub.mkdir()
    shutil.copy(_cert(tmp_path), sub / "ca.pem")
    (sub / "moxiehook.toml").write_text(
        'version = 1\n[endpoints.a]\nverify_tls = "ca.pem"\n[[endpoints.a.mappings]]\n'
        'event = "ClientCreate"\nurl = "https://127.0.0.1:9/x"\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "moxiehook", "-c", "sub/moxiehook.toml", "listen", "--port", "0",
         "--forward-to", "https://127.0.0.1:9/x", "--endpoint", "a"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        first = process.stderr.readline()  # the listening line, or the error that ended it
        assert "error:" not in first, first
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_listen_forward_with_a_bad_bundle_names_the_endpoint_and_the_file(tmp_path: Path) -> None:
    """A bundle beside the config that holds no certificate, used by `listen --forward-to --endpoint a`.

    Should: one `error:` line naming the endpoint and the file's full path, exit 2, as `fire` says it.
    """
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "ca.pem").write_text("not a certificate\n")
    (sub / "moxiehook.toml").write_text(
        'version = 1\n[endpoints.a]\nverify_tls = "ca.pem"\n[[endpoints.a.mappings]]\n'
        'event = "ClientCreate"\nurl = "https://127.0.0.1:9/x"\n')
    result = subprocess.run(
        [sys.executable, "-m", "moxiehook", "-c", "sub/moxiehook.toml", "listen", "--port", "0",
         "--forward-to", "https://127.0.0.1:9/x", "--endpoint", "a"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: verify_tls of endpoint 'a': "), result.stderr
    assert str(sub / "ca.pem") in result.stderr and result.stderr.count("\n") == 1, result.stderr


@pytest.mark.xfail(strict=False, reason="red team: with SIGINT ignored once the threads are joined, quiet runs "
                   "pass every time (they failed 5 in 7 before); under the full suite's load one run of eight "
                   "still died of SIGINT once: a window not yet found")
def test_a_second_ctrl_c_while_fire_winds_down_exits_130(tmp_path: Path) -> None:
    """fire with an on_disable hook that leaves a chatty child; Ctrl-C, then Ctrl-C again 10-30 ms later.

    Seen: the summary and "⚠ interrupted" are printed, then the process dies of SIGINT (exit -2,
    a shell shows 130 but a parent reading waitpid sees a signal death), in about 2 runs of 3.
    Should: every Ctrl-C ends in exit 130, as the Ctrl-C commit says of the interpreter's exit.
    Cause (strace): late in finalization CPython sets SIGINT back to SIG_DFL (rt_sigaction just
    before exit_group), replacing main's os._exit(130) handler; a Ctrl-C in that window kills.
    """
    import signal
    import time

    from tests.conftest import Answer, Receiver

    app = Receiver().start()
    app.default = Answer(status=401)
    codes = []
    try:
        for gap in (0.01, 0.015, 0.02, 0.025):  # bounded: four runs
            started = tmp_path / "started"
            started.unlink(missing_ok=True)
            for log in tmp_path.glob("moxiehook-log*"):
                log.unlink()
            (tmp_path / "moxiehook.toml").write_text(
                'version = 1\n[settings]\nmax_attempts = 1\n'
                f'on_disable = ["sh", "-c", "(touch {started}; while :; do echo spam; sleep 0.01; done) & exit 0"]\n'
                '[endpoints.a]\n[[endpoints.a.mappings]]\nevent = "ClientCreate"\n'
                f'url = "{app.url("/x")}"\n')
            process = subprocess.Popen([sys.executable, "-m", "moxiehook", "fire", "ClientCreate", "--json"],
                                       cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                for _ in range(400):
                    if started.exists():
                        break
                    time.sleep(0.05)
                time.sleep(0.2)
                process.send_signal(signal.SIGINT)
                time.sleep(gap)
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
                codes.append(process.wait(timeout=15))
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    finally:
        app.stop()
    assert set(codes) == {130}, codes
