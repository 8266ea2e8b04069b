"""Security: no secret leaks, strict file modes, risky settings warned about.

The leak hunt configures every kind of secret moxiehook knows with a
distinctive string, runs every command that prints, logs or fails, and
searches all their output (stdout, stderr, the log file, ``--json``) for
those strings. The secrets are:

- a basic-auth password, a bearer token, a custom-auth header value and a
  signing secret, each written literally in the file;
- a bearer token and a custom header value coming from ``${VAR}`` (the
  reference may be shown, the variable's value never).
"""

from __future__ import annotations

import ast
import base64
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import moxiehook.receive.server
from moxiehook.config import edits as ops
from moxiehook.config.advice import endpoint_warnings
from moxiehook.config.model import Auth, Config, Endpoint, EventMapping, Settings
from moxiehook.config.store import load_config

# Distinctive secret strings: none of them can appear in output by accident.
PASSWORD = "pw-LEAKCHECK-basic-7f3a"
TOKEN = "tok-LEAKCHECK-bearer-91c2"
CUSTOM_VALUE = "val-LEAKCHECK-custom-55d0"
SIGNING_RAW = b"sig-LEAKCHECK-signing-key-0123456789"
SIGNING_SECRET = "whsec_" + base64.b64encode(SIGNING_RAW).decode()
ENV_TOKEN = "env-LEAKCHECK-token-a1b2"
ENV_HEADER = "env-LEAKCHECK-header-c3d4"
SECRETS = (PASSWORD, TOKEN, CUSTOM_VALUE, SIGNING_SECRET, SIGNING_SECRET[6:], ENV_TOKEN, ENV_HEADER)
# What a secret looks like once encoded for the wire: Basic auth's base64.
ENCODED = (base64.b64encode(f"user:{PASSWORD}".encode()).decode(),)
SECRET_ENV = {"LEAK_TOKEN": ENV_TOKEN, "LEAK_HEADER": ENV_HEADER}


def leaks(text: str) -> list[str]:
    """The secrets (or their wire encodings) found in ``text``."""
    return [secret for secret in SECRETS + ENCODED if secret in text]


def secret_config(url_of: dict[str, str]) -> Config:
    """Five endpoints, one per kind of secret, each mapping ClientCreate to ``url_of[name]``."""

    def endpoint(name: str, auth: Auth, **extra: object) -> Endpoint:
        return Endpoint(name=name, auth=auth, mappings=[EventMapping("ClientCreate", url_of[name])], **extra)  # type: ignore[arg-type]

    return Config(
        settings=Settings(log_file="log.jsonl", timeout=2.0, max_attempts=1, backoff=0.01),
        endpoints={
            "basic": endpoint("basic", Auth(type="basic", username="user", password=PASSWORD)),
            "bearer": endpoint("bearer", Auth(type="bearer", token=TOKEN)),
            "custom": endpoint("custom", Auth(type="custom", header="X-Api-Key", value=CUSTOM_VALUE)),
            "signed": endpoint("signed", Auth(type="bearer", token="${LEAK_TOKEN}"),
                               signing_secret=SIGNING_SECRET, headers={"X-Secret-Header": "${LEAK_HEADER}"}),
            "refs": endpoint("refs", Auth(type="custom", header="X-Ref-Key", value="${LEAK_TOKEN}"),
                             headers={"X-Team": "ops", "X-From-Env": "${LEAK_HEADER}"}),
        },
    )


@pytest.fixture
def secret_config_path(config_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from moxiehook.config.store import render_config, write_atomic

    config = secret_config({name: f"https://{name}.example.com/hook" for name in
                            ("basic", "bearer", "custom", "signed", "refs")})
    write_atomic(config_path, render_config(config), secret=True)
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    return config_path


# ---------------------------------------------------------------------------
# leaks in the config commands

CONFIG_VIEWS = [
    ("config", "show"),
    ("config", "show", "--json"),
    ("config", "validate"),
    ("endpoint", "list"),
    ("endpoint", "list", "--json"),
    ("map", "list"),
    ("map", "list", "--json"),
    *[("endpoint", "show", name) for name in ("basic", "bearer", "custom", "signed", "refs")],
    *[("endpoint", "show", name, "--json") for name in ("basic", "bearer", "custom", "signed", "refs")],
    ("endpoint", "status", "basic"),
]

# Commands that fail after reading the secret-holding config or a secret option.
CONFIG_ERRORS = [
    ("endpoint", "add", "basic", "--auth", "basic", "--username", "user", "--password", PASSWORD),
    ("endpoint", "add", "x", "--auth", "bearer", "--token", TOKEN + "\n"),
    ("endpoint", "add", "x", "--auth", "custom", "--header-name", "Bad Name", "--header-value", CUSTOM_VALUE),
    ("endpoint", "add", "x", "--token", TOKEN, "--header", f"Authorization: {TOKEN}"),
    ("endpoint", "add", "x", "--signing-secret", "whsec_" + "A" * 10 + TOKEN),
    ("endpoint", "auth", "bearer", "--auth", "basic", "--username", "u:x", "--password", PASSWORD),
    ("endpoint", "auth", "bearer", "--auth", "bearer", "--token", TOKEN, "--password", PASSWORD),
    ("endpoint", "set-header", "bearer", "Authorization", TOKEN),
    ("endpoint", "secret", "signed", "--set", SIGNING_SECRET + "!"),
    ("endpoint", "secret", "signed", "--generate", "--set", SIGNING_SECRET),
]


def test_config_views_show_no_secret(cli, secret_config_path: Path) -> None:
    checked = 0
    for args in CONFIG_VIEWS:
        result = cli(*args)
        assert result.exit_code == 0, (args, result.stderr)
        assert leaks(result.stdout + result.stderr) == [], args
        checked += 1
    # … while the references themselves are shown as written (they are not secrets).
    shown = cli("endpoint", "show", "signed", "--json")
    data = json.loads(shown.stdout)
    assert data["auth"] == {"type": "bearer", "token": "${LEAK_TOKEN}"}
    assert data["headers"] == {"X-Secret-Header": "${LEAK_HEADER}"}
    assert data["signing_secret"] == "***"
    assert json.loads(cli("endpoint", "show", "basic", "--json").stdout)["auth"]["password"] == "***"
    assert checked == len(CONFIG_VIEWS)


def test_reveal_is_the_only_way_to_see_a_literal_secret(cli, secret_config_path: Path) -> None:
    """The control: --reveal does show them, so the leak search above can find a leak."""
    revealed = cli("config", "show", "--reveal", "--json").stdout
    assert set(leaks(revealed)) == {PASSWORD, TOKEN, CUSTOM_VALUE, SIGNING_SECRET, SIGNING_SECRET[6:]}
    assert ENV_TOKEN not in revealed and ENV_HEADER not in revealed  # references stay references


@pytest.mark.parametrize("args", CONFIG_ERRORS, ids=lambda a: " ".join(a[:3]))
def test_error_messages_show_no_secret(cli, secret_config_path: Path, args: tuple[str, ...]) -> None:
    before = secret_config_path.read_bytes()
    result = cli(*args)
    assert result.exit_code == 2, (args, result.stdout, result.stderr)
    assert result.stderr.startswith("error: ")
    assert leaks(result.stdout + result.stderr) == [], result.stderr
    assert secret_config_path.read_bytes() == before


def test_a_broken_config_holding_secrets_is_reported_without_them(cli, config_path: Path) -> None:
    config_path.write_text(
        'version = 1\n[endpoints.a]\nauth = { type = "bearer", token = "' + TOKEN + '", extra = 1 }\n'
    )
    result = cli("config", "validate")
    assert result.exit_code == 2
    assert "endpoints.a.auth.extra: unknown key" in result.stderr
    assert leaks(result.stderr + result.stdout) == []


# ---------------------------------------------------------------------------
# file modes


def mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777


@pytest.mark.parametrize(
    "args",
    [
        ("endpoint", "add", "a", "--token", TOKEN),
        ("endpoint", "add", "a", "--username", "u", "--password", PASSWORD),
        ("endpoint", "add", "a", "--header-name", "X-Key", "--header-value", CUSTOM_VALUE),
        ("endpoint", "add", "a", "--signing-secret", SIGNING_SECRET),
    ],
    ids=["token", "password", "custom", "signing"],
)
def test_a_config_holding_a_literal_secret_is_0600(cli, config_path: Path, args: tuple[str, ...]) -> None:
    os.chmod(config_path, 0o644)
    assert cli(*args).exit_code == 0
    assert mode(config_path) == 0o600
    # Later edits that keep the secret keep the mode.
    assert cli("map", "add", "a", "ClientCreate", "https://a.example.com/").exit_code == 0
    assert mode(config_path) == 0o600


def test_a_config_with_only_references_keeps_its_mode(cli, config_path: Path) -> None:
    os.chmod(config_path, 0o644)
    assert cli("endpoint", "add", "a", "--token", "${LEAK_TOKEN}").exit_code == 0
    assert mode(config_path) == 0o644
    assert cli("endpoint", "auth", "a", "--auth", "bearer", "--token", TOKEN).exit_code == 0
    assert mode(config_path) == 0o600


@pytest.mark.parametrize("file_mode", [0o644, 0o640, 0o604])
def test_validate_warns_when_others_can_read_literal_secrets(cli, config_path: Path, file_mode: int) -> None:
    ops.add_endpoint(config_path, Endpoint(name="a", auth=Auth(type="bearer", token=TOKEN)))
    os.chmod(config_path, file_mode)
    result = cli("config", "validate")
    assert result.exit_code == 0, result.stderr
    assert "holds literal secrets and is readable by other users" in result.stderr
    assert f"chmod 600 {config_path}" in result.stderr
    assert "${VAR}" in result.stderr
    assert leaks(result.stdout + result.stderr) == []
    assert mode(config_path) == file_mode  # validate only reads


def test_validate_is_quiet_about_modes_when_no_secret_is_literal_or_the_file_is_private(
    cli, config_path: Path
) -> None:
    ops.add_endpoint(config_path, Endpoint(name="a", auth=Auth(type="bearer", token="${LEAK_TOKEN}")))
    os.chmod(config_path, 0o644)
    assert "readable by other users" not in cli("config", "validate").stderr
    ops.set_auth(config_path, "a", Auth(type="bearer", token=TOKEN))
    assert mode(config_path) == 0o600
    assert "readable by other users" not in cli("config", "validate").stderr


def test_lock_and_log_files_are_private(cli, config_path: Path) -> None:
    ops.add_endpoint(config_path, Endpoint(name="a"))
    ops.disable_endpoint(config_path, "a", "r")  # writes an `endpoint` record to the log
    assert mode(config_path.with_name("moxiehook.toml.lock")) == 0o600
    assert mode(config_path.parent / "log.jsonl") == 0o600


# ---------------------------------------------------------------------------
# credentials over plain http://


@pytest.mark.parametrize(
    ("auth_args", "url", "warned"),
    [
        (("--token", TOKEN), "http://crm.example.com/hook", True),
        (("--username", "u", "--password", PASSWORD), "http://10.0.0.5:8080/hook", True),
        (("--header-name", "X-Key", "--header-value", "${LEAK_TOKEN}"), "http://crm.example.com/", True),
        (("--signing-secret", SIGNING_SECRET), "http://crm.example.com/", True),
        (("--token", TOKEN), "https://crm.example.com/hook", False),
        (("--token", TOKEN), "http://127.0.0.1:8787/hook", False),
        (("--token", TOKEN), "http://localhost:8787/hook", False),
        (("--token", TOKEN), "http://[::1]:8787/hook", False),
        ((), "http://crm.example.com/hook", False),  # no credentials to expose
    ],
)
def test_map_add_warns_when_credentials_would_travel_over_plain_http(
    cli, config_path: Path, auth_args: tuple[str, ...], url: str, warned: bool
) -> None:
    assert cli("endpoint", "add", "a", *auth_args).exit_code == 0
    result = cli("map", "add", "a", "ClientCreate", url)
    assert result.exit_code == 0, result.stderr
    assert ("sends credentials over plain http://" in result.stderr) is warned, result.stderr
    assert leaks(result.stdout + result.stderr) == []


def test_validate_warns_about_plain_http_and_tls_checks_off(cli, config_path: Path) -> None:
    ops.add_endpoint(config_path, Endpoint(name="a", auth=Auth(type="bearer", token="${T}"),
                                           mappings=[EventMapping("ClientCreate", "http://crm.example.com/")]))
    ops.add_endpoint(config_path, Endpoint(name="b", auth=Auth(type="bearer", token="${T}"), verify_tls=False))
    result = cli("config", "validate")
    assert result.exit_code == 0
    assert "endpoint 'a' sends credentials over plain http:// to crm.example.com (use https://)" in result.stderr
    assert "endpoint 'b' has verify_tls = false: TLS certificates are not checked" in result.stderr


def test_endpoint_warnings_cover_each_risk_once() -> None:
    endpoint = Endpoint(
        name="e", auth=Auth(type="bearer", token="t"), verify_tls=False,
        mappings=[EventMapping("A", "http://a.example.com/"), EventMapping("B", "http://b.example.com/")],
    )
    found = endpoint_warnings(endpoint)
    assert len(found) == 2  # TLS off; plain http (once, not per mapping)
    assert endpoint_warnings(Endpoint(name="ok", auth=Auth(type="bearer", token="t"))) == []


# ---------------------------------------------------------------------------
# TLS settings


def test_verify_tls_is_on_by_default(cli, config_path: Path) -> None:
    assert Settings().verify_tls is True
    assert load_config(config_path).settings.verify_tls is True
    data = json.loads(cli("config", "show", "--json").stdout)
    assert data["settings"]["verify_tls"] is True
    assert "verify_tls" not in json.loads(
        (ops.add_endpoint(config_path, Endpoint(name="a")) and cli("endpoint", "show", "a", "--json")).stdout
    )  # an endpoint inherits the setting unless it says otherwise


def test_a_ca_bundle_path_and_a_per_endpoint_override_are_accepted(cli, config_path: Path) -> None:
    config_path.write_text(
        'version = 1\n[settings]\nverify_tls = "certs/ca.pem"\n'
        '[endpoints.dev]\nverify_tls = false\nauth = { type = "bearer", token = "${T}" }\n'
        '[endpoints.prod]\nverify_tls = "/etc/ssl/certs/ca-certificates.crt"\n'
    )
    config = load_config(config_path)
    assert config.settings.verify_tls == "certs/ca.pem"
    assert config.endpoints["dev"].verify_tls is False
    assert config.endpoints["prod"].verify_tls == "/etc/ssl/certs/ca-certificates.crt"
    result = cli("config", "validate")
    assert result.exit_code == 0
    assert "endpoint 'dev' has verify_tls = false" in result.stderr
    assert "endpoint 'prod'" not in result.stderr.replace("endpoint 'prod' has no auth", "")


# ---------------------------------------------------------------------------
# listen: loopback by default, constant-time checks


def test_listen_binds_loopback_by_default(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "moxiehook", "listen", "--port", "0"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = _first_line_with(proc, "listening on", seconds=15)
        match = re.search(r"http://([^:/]+):(\d+)", line)
        assert match, line
        host, port = match.group(1), int(match.group(2))
        assert host == "127.0.0.1"
        # The kernel's view: the listening socket's local address is 127.0.0.1.
        assert _listening_address(port) == "127.0.0.1"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def _first_line_with(proc: subprocess.Popen[str], needle: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if needle in line:
            return line
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"no line with {needle!r}")


def _listening_address(port: int) -> str | None:
    """The local IPv4 address of the socket listening on ``port`` (from /proc/net/tcp)."""
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = row.split()[1], row.split()[3]
        address, port_hex = local.split(":")
        if int(port_hex, 16) == port and state == "0A":  # 0A = LISTEN
            return socket.inet_ntoa(bytes.fromhex(address)[::-1])
    return None


def _functions(tree: ast.AST) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def _calls(node: ast.AST) -> set[str]:
    return {ast.unparse(call.func) for call in ast.walk(node) if isinstance(call, ast.Call)}


def test_listen_compares_credentials_in_constant_time() -> None:
    source = Path(moxiehook.receive.server.__file__).read_text()
    tree = ast.parse(source)
    functions = _functions(tree)
    checker = functions["_auth_problem"]
    # Every credential comparison goes through hmac.compare_digest (directly or via _same) …
    assert "hmac.compare_digest" in _calls(functions["_same"])
    assert {"_same", "hmac.compare_digest"} <= _calls(checker)
    # … and no == / != has a credential on either side (auth.type, the scheme name may be).
    credential = {"credential", "value", "decoded", "expected", "header", "token", "password", "got", "received"}
    for function in (checker, functions["_same"]):
        for compare in (n for n in ast.walk(function) if isinstance(n, ast.Compare)):
            if not any(isinstance(op, (ast.Eq, ast.NotEq)) for op in compare.ops):
                continue
            touched = {n.id for n in ast.walk(compare) if isinstance(n, ast.Name)} | {
                n.attr for n in ast.walk(compare) if isinstance(n, ast.Attribute)
            }
            assert not touched & credential, f"non-constant-time comparison: {ast.unparse(compare)}"


def test_signature_check_compares_in_constant_time() -> None:
    import moxiehook.send.signing

    functions = _functions(ast.parse(Path(moxiehook.send.signing.__file__).read_text()))
    assert "hmac.compare_digest" in _calls(functions["verify"])


def test_a_non_ascii_signature_is_a_mismatch_not_a_crash() -> None:
    """Regression: compare_digest on a non-ASCII str raised TypeError (a 500 from listen)."""
    from moxiehook.send.signing import SignatureMismatch, verify

    headers = {"webhook-id": "msg", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,\xe9t\xe9"}
    with pytest.raises(SignatureMismatch):
        verify(SIGNING_RAW, headers, b"{}")


@pytest.mark.parametrize(
    "headers",
    [
        {"webhook-signature": "v1,\xe9t\xe9"},
        {"authorization": "Bearer \xe9\xe9"},
        {"authorization": "Basic \xff\xfe"},
    ],
    ids=["signature", "bearer", "basic"],
)
def test_listen_answers_401_to_non_ascii_credentials(headers: dict[str, str]) -> None:
    """Raw latin-1 bytes in a credential header: a 401 with a reason, never a 500."""
    from moxiehook.receive.server import ReceiverConfig, build_check, start_receiver

    auth = Auth(type="basic", username="u", password=PASSWORD) if "Basic" in str(headers) else \
        Auth(type="bearer", token=TOKEN)
    check = build_check(auth if "authorization" in headers else None,
                        SIGNING_SECRET if "webhook-signature" in headers else None)
    running = start_receiver(ReceiverConfig(port=0, check=check))
    try:
        stamp = str(int(time.time()))
        lines = ["POST /h HTTP/1.1", "Host: 127.0.0.1", "Content-Length: 2", "Connection: close",
                 "webhook-id: msg_1", f"webhook-timestamp: {stamp}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        raw = ("\r\n".join(lines) + "\r\n\r\n{}").encode("latin-1")
        with socket.create_connection(("127.0.0.1", running.port), timeout=5) as conn:
            conn.sendall(raw)
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 401") or answer.startswith(b"HTTP/1.0 401"), answer[:200]
    finally:
        running.stop()


# ---------------------------------------------------------------------------
# leaks in sending, the log, logs, replay and test

ENDPOINT_NAMES = ("basic", "bearer", "custom", "signed", "refs")


@pytest.fixture
def secret_hooks(config_path: Path, receiver, monkeypatch: pytest.MonkeyPatch) -> Path:
    from moxiehook.config.store import render_config, write_atomic

    config = secret_config({name: receiver.url(f"/{name}") for name in ENDPOINT_NAMES})
    config.settings.max_attempts = 2
    write_atomic(config_path, render_config(config), secret=True)
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    return config_path


def test_no_secret_in_any_output_of_a_full_session(cli, secret_hooks: Path, receiver,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Fire, fail, disable, skip, log, show, replay, test: search everything printed or written."""
    from conftest import Answer

    outputs: list[str] = []

    def run(*args: str, codes: tuple[int, ...] = (0, 1)) -> str:
        result = cli(*args)
        assert result.exit_code in codes, (args, result.exit_code, result.stderr)
        assert "Traceback" not in result.stderr
        outputs.append(f"$ {' '.join(args)}\n{result.stdout}\n{result.stderr}")
        return result.stdout

    run("fire", "ClientCreate", "--dry-run")
    run("fire", "ClientCreate", "--dry-run", "--json")
    run("fire", "ClientCreate")
    run("fire", "ClientCreate", "--json", "--count", "2")
    receiver.answer("/bearer", Answer(status=401, body="bad token"))  # → disabled, with a reason
    receiver.answer("/custom", Answer(status=503, body="busy"))  # → retried, failed
    run("fire", "ClientCreate", "--json")
    run("fire", "ClientCreate")  # bearer is now skipped
    run("endpoint", "status", "bearer")
    run("endpoint", "list", "--json")
    run("logs")
    run("logs", "--json", "--tail", "0")
    ids = [r["id"] for r in json.loads(run("logs", "--json", "--tail", "0")) if r.get("kind") == "delivery"]
    assert len(ids) >= 15
    for delivery_id in ids[:: max(1, len(ids) // 8)]:
        run("logs", "show", delivery_id)
        run("logs", "show", delivery_id, "--json")
    receiver.answer("/custom", Answer(status=200))
    receiver.answer("/bearer", Answer(status=200))
    run("replay", "--failed", "--dry-run")
    run("replay", "--failed", "--json")
    run("test", "signed", "--json")
    run("test", "bearer", "--enable")
    assert load_config(secret_hooks).endpoints["bearer"].enabled
    run("replay", "--skipped", "--json")
    # Errors: a missing variable, an unknown event, an unknown delivery id.
    monkeypatch.delenv("LEAK_TOKEN")
    run("fire", "ClientCreate", codes=(2,))
    run("logs", "show", "dlv_nope", codes=(2,))
    run("fire", "NoSuchEvent", codes=(2,))

    log_text = (secret_hooks.parent / "log.jsonl").read_text()
    everything = "\n".join(outputs) + log_text
    assert leaks(everything) == []

    # The control: the secrets did travel to the receiver, so the search can find them.
    sent = "\n".join(json.dumps(r.headers) for r in receiver.requests)
    for secret in (TOKEN, CUSTOM_VALUE, ENV_TOKEN, ENV_HEADER, *ENCODED):
        assert secret in sent, secret
    assert len(outputs) >= 30
    assert "webhook-signature" in sent  # signed: the signature is logged, the key never
    assert '"Authorization":"***"' in log_text.replace(" ", "")


def test_a_receiver_echoing_the_credentials_does_not_put_them_in_the_log(
    cli, secret_hooks: Path, receiver
) -> None:
    """Regression: an httpbin-style echo put the credentials into the logged response."""
    from conftest import Answer

    echoed = {"basic": f"Basic {ENCODED[0]} / {PASSWORD}", "bearer": f"Bearer {TOKEN} / {TOKEN}",
              "custom": CUSTOM_VALUE, "signed": f"{ENV_TOKEN} {ENV_HEADER} {SIGNING_SECRET}",
              "refs": f"{ENV_TOKEN} {ENV_HEADER}"}
    for name, text in echoed.items():
        receiver.answer(f"/{name}", Answer(status=200, body=json.dumps({"you sent": text}),
                                           headers={"X-Echo": text}))
    result = cli("fire", "ClientCreate", "--json")
    assert result.exit_code == 0, result.stderr
    log = (secret_hooks.parent / "log.jsonl").read_text()
    assert leaks(log + result.stdout) == []
    records = [json.loads(line) for line in log.splitlines()]
    assert len(records) == 5
    assert all("***" in r["response"]["body"] and "***" in r["response"]["headers"]["x-echo"] for r in records)


def test_fire_warns_when_credentials_would_travel_over_plain_http(cli, config_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T", "x")
    ops.add_endpoint(config_path, Endpoint(name="crm", auth=Auth(type="bearer", token="${T}"),
                                           mappings=[EventMapping("ClientCreate", "http://crm.example.com/hook")]))
    ops.add_endpoint(config_path, Endpoint(name="local", auth=Auth(type="bearer", token="${T}"),
                                           mappings=[EventMapping("ClientCreate", "http://127.0.0.1:9/hook")]))
    for extra in ((), ("--json",)):
        result = cli("fire", "ClientCreate", "--dry-run", *extra)  # a dry run: nothing leaves this machine
        assert result.exit_code == 0
        assert result.stderr.count("sends credentials over plain http://") == 1, result.stderr
        assert "endpoint 'crm' sends credentials over plain http:// to crm.example.com" in result.stderr
    json.loads(result.stdout)  # the warning stays on stderr


# ---------------------------------------------------------------------------
# TLS against a real HTTPS server on 127.0.0.1 with a self-signed certificate


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made by the openssl binary."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl binary is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@pytest.fixture
def https_server(self_signed: tuple[Path, Path]) -> Iterator[tuple[str, list[dict[str, str]]]]:
    received: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def _tls_config(config_path: Path, url: str, settings_verify: str = "", endpoint_verify: str = "") -> None:
    config_path.write_text(
        f'version = 1\n[settings]\nlog_file = "log.jsonl"\nmax_attempts = 1\ntimeout = 5.0\n{settings_verify}\n'
        f'[endpoints.tls]\nauth = {{ type = "bearer", token = "{TOKEN}" }}\n{endpoint_verify}\n'
        f'[[endpoints.tls.mappings]]\nevent = "ClientCreate"\nurl = "{url}"\n'
    )


def test_tls_is_verified_by_default_and_nothing_is_sent_to_an_untrusted_server(
    cli, config_path: Path, https_server: tuple[str, list[dict[str, str]]]
) -> None:
    url, received = https_server
    _tls_config(config_path, url)
    result = cli("fire", "ClientCreate", "--json")
    assert result.exit_code == 1, result.stderr
    [record] = [json.loads(line) for line in (config_path.parent / "log.jsonl").read_text().splitlines()]
    assert record["outcome"] == "failed"
    assert "certificate" in record["error"].lower(), record["error"]
    assert received == []  # the token never reached the impostor
    assert load_config(config_path).endpoints["tls"].enabled  # a TLS failure does not disable


def test_a_ca_bundle_makes_the_self_signed_server_trusted(
    cli, config_path: Path, https_server: tuple[str, list[dict[str, str]]], self_signed: tuple[Path, Path]
) -> None:
    url, received = https_server
    shutil.copy(self_signed[0], config_path.parent / "ca.pem")
    _tls_config(config_path, url, settings_verify='verify_tls = "ca.pem"')  # relative to the config
    result = cli("fire", "ClientCreate")
    assert result.exit_code == 0, result.stderr
    assert "verify_tls = false" not in result.stderr
    assert len(received) == 1 and received[0]["authorization"] == f"Bearer {TOKEN}"


def test_verify_tls_false_on_one_endpoint_sends_and_warns(
    cli, config_path: Path, https_server: tuple[str, list[dict[str, str]]]
) -> None:
    url, received = https_server
    _tls_config(config_path, url, endpoint_verify="verify_tls = false")
    result = cli("fire", "ClientCreate")
    assert result.exit_code == 0, result.stderr
    assert "endpoint 'tls' has verify_tls = false: TLS certificates are not checked" in result.stderr
    assert len(received) == 1
    assert leaks(result.stdout + result.stderr) == []


def test_a_missing_ca_bundle_is_a_config_error_and_nothing_is_sent(
    cli, config_path: Path, https_server: tuple[str, list[dict[str, str]]]
) -> None:
    url, received = https_server
    _tls_config(config_path, url, endpoint_verify='verify_tls = "nope/ca.pem"')
    result = cli("fire", "ClientCreate")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: ") and "nope/ca.pem" in result.stderr
    assert received == []


@pytest.mark.parametrize("bundle", ["not a certificate\n", ""])
def test_a_ca_bundle_holding_no_certificate_is_a_config_error_and_nothing_is_sent(
    cli, config_path: Path, https_server: tuple[str, list[dict[str, str]]], bundle: str
) -> None:
    """`verify_tls = "ca.pem"` names a file that exists but holds no certificate (a wrong file copied).

    Seen: a traceback ending in ``ssl.SSLError: [X509: NO_CERTIFICATE_OR_CRL_FOUND]`` from a
    sending thread. Should: one ``error:`` line naming the endpoint and the file, exit 2, nothing sent.
    """
    url, received = https_server
    (config_path.parent / "ca.pem").write_text(bundle)
    _tls_config(config_path, url, endpoint_verify='verify_tls = "ca.pem"')
    for command in (["fire", "ClientCreate"], ["test", "tls"]):
        result = cli(*command)
        assert result.exit_code == 2, (command, result.stderr)
        assert result.stderr.startswith("error: verify_tls of endpoint 'tls': ") and "ca.pem" in result.stderr
        assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert received == []


def test_the_sender_for_plain_http_urls_never_makes_a_tls_connection(
    https_server: tuple[str, list[dict[str, str]]], self_signed: tuple[Path, Path]
) -> None:
    """http:// URLs share a sender without TLS settings; were it ever handed an https:// URL,
    it refuses instead of connecting without a check."""
    from moxiehook.http import PLAIN_HTTP, uses_tls
    from moxiehook.send.delivery import WireSender

    url, received = https_server
    assert [uses_tls(u) for u in ("http://a/x", "HTTP://a/x", "https://a/x", "HTTPS://a/x", "ftp://a")] == [
        False, False, True, True, True]
    answer = WireSender(PLAIN_HTTP).post(url, {"Authorization": f"Bearer {TOKEN}"}, b"{}", 5.0)
    assert answer.status is None and "no TLS settings" in (answer.error or "")
    assert received == []
