"""What a MoxieUser sends and what ``moxiehook locustfile`` writes, checked without Locust.

``moxiehook.locust.plan`` and ``writer`` import neither Locust nor gevent, so their rules are
tested here in-process; tests/test_locust.py runs them under real Locust processes.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

from moxiehook import catalog
from moxiehook.errors import ConfigError, MissingVariableError, NotFoundError, UsageError
from moxiehook.http import AttemptTimeout, TransportError
from moxiehook.locust.plan import Stream, failure, make_plan, no_answer, user_seed
from moxiehook.locust.writer import locustfile_text

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

CONFIG = f"""\
version = 1

[settings]
timeout = 3.5

[endpoints.crm]
auth = {{ type = "bearer", token = "${{PLAN_TOKEN}}" }}
signing_secret = "{SECRET}"
timeout = 1.5

[[endpoints.crm.mappings]]
event = "ClientCreate"
url = "http://127.0.0.1:9/a"

[[endpoints.crm.mappings]]
event = "ClientCreate"
url = "http://127.0.0.1:9/b"

[endpoints.ops]
verify_tls = false

[[endpoints.ops.mappings]]
event = "ClientCreate"
url = "https://127.0.0.1:9/c"

[[endpoints.ops.mappings]]
event = "InvoiceSent"
url = "https://127.0.0.1:9/i"

[endpoints.old]
enabled = false
disabled_reason = "HTTP 410 Gone from POST http://127.0.0.1:9/old"

[[endpoints.old.mappings]]
event = "ClientCreate"
url = "http://127.0.0.1:9/old"

[[endpoints.old.mappings]]
event = "ProjectCreate"
url = "http://127.0.0.1:9/old"
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PLAN_TOKEN", "tok")
    path = tmp_path / "moxiehook.toml"
    path.write_text(CONFIG)
    return path


def test_an_event_goes_to_every_enabled_mapping_in_turn_and_skips_disabled_endpoints(config: Path) -> None:
    plan = make_plan(["ClientCreate"])  # the config found as the CLI finds it: ./moxiehook.toml
    assert plan.config_path == config
    assert plan.skipped == ("'old' (HTTP 410 Gone from POST http://127.0.0.1:9/old)",)
    stream = Stream(plan, 1)
    urls = [stream.next_delivery()[0].url for _ in range(6)]
    assert urls == ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b", "https://127.0.0.1:9/c"] * 2
    assert plan.host == "http://127.0.0.1:9"


def test_each_endpoint_keeps_its_own_timeout_tls_and_headers(config: Path) -> None:
    plan = make_plan(["ClientCreate"], config=str(config))
    crm, ops = plan.endpoints["crm"], plan.endpoints["ops"]
    assert (crm.timeout, crm.verify, ops.timeout, ops.verify) == (1.5, True, 3.5, False)
    assert crm.headers["Authorization"] == "Bearer tok" and "Authorization" not in ops.headers


def test_only_the_named_endpoint(config: Path) -> None:
    plan = make_plan({"ClientCreate": 1, "InvoiceSent": 1}, endpoint="ops")
    assert {event: [t.url for t in targets] for event, targets in plan.targets.items()} == {
        "ClientCreate": ["https://127.0.0.1:9/c"], "InvoiceSent": ["https://127.0.0.1:9/i"]}


def test_weights_choose_the_events(config: Path) -> None:
    plan = make_plan({"ClientCreate": 3, "InvoiceSent": 1})
    stream = Stream(plan, 5)
    events = [stream.next_event() for _ in range(4000)]
    assert 0.7 < events.count("ClientCreate") / len(events) < 0.8


def test_each_delivery_is_built_as_fire_builds_it(config: Path) -> None:
    """Body: the catalog's sample with a fresh id (as fire --count); a fresh evt_ id; signed headers."""
    from standardwebhooks.webhooks import Webhook

    from moxiehook.send import request_headers

    plan = make_plan(["ClientCreate"], endpoint="crm")
    stream = Stream(plan, 1)
    sample = catalog.sample("ClientCreate")
    seen = set()
    for _ in range(3):
        target, delivery = stream.next_delivery()
        assert {**delivery.body, "id": sample["id"]} == sample and delivery.body["id"] != sample["id"]
        assert delivery.event_id.startswith("evt_") and delivery.event_id not in seen
        seen.add(delivery.event_id)
        headers, _ = request_headers(target.endpoint, delivery)
        assert headers["X-Event-Type"] == "ClientCreate"
        assert Webhook(SECRET).verify(delivery.body_bytes, headers) == delivery.body


def test_a_seed_gives_every_user_and_worker_its_own_reproducible_stream(config: Path) -> None:
    for vary in (False, True):
        plan = make_plan(["ClientCreate", "InvoiceSent"], endpoint="ops", vary=vary, seed=42)

        def bodies(worker: int, user: int, plan=plan) -> list[object]:
            stream = Stream(plan, user_seed(42, worker, user))
            return [stream.next_delivery()[1].body for _ in range(20)]

        assert bodies(0, 0) == bodies(0, 0)  # reproducible
        ids = [b["id"] for w in range(3) for u in range(3) for b in bodies(w, u)]  # type: ignore[index]
        assert len(set(ids)) == len(ids)  # no two users on any worker send the same body
    assert user_seed(1, 0, 1) != user_seed(1, 1, 0) != user_seed(2, 1, 0)
    assert user_seed(None, 0, 0) != user_seed(None, 0, 0)  # unseeded: fresh randomness


def test_varied_bodies_are_valid_under_the_schema(config: Path) -> None:
    import jsonschema

    plan = make_plan(["InvoiceSent"], vary=True)
    stream = Stream(plan, 3)
    bodies = [stream.next_delivery()[1].body for _ in range(30)]
    for body in bodies:
        jsonschema.validate(body, catalog.schema("InvoiceSent"))
    assert len({repr(b) for b in bodies}) == len(bodies)


@pytest.mark.parametrize(("settings", "error", "message"), [
    ({"events": []}, UsageError, "events is empty"),
    ({"events": "ClientCreate"}, UsageError, "a list of event types or a dict of weights"),
    ({"events": {"ClientCreate": 0}}, UsageError, "weight of ClientCreate must be a positive number"),
    ({"events": {"ClientCreate": math.nan}}, UsageError, "positive number"),
    ({"events": {"ClientCreate": True}}, UsageError, "positive number"),
    ({"events": ["ClientCreat"]}, NotFoundError, "unknown event 'ClientCreat'"),
    ({"events": ["ProjectCreate"]}, ConfigError, "ProjectCreate is mapped only on disabled endpoint 'old'"),
    ({"events": ["InvoiceSent"], "endpoint": "crm"}, ConfigError, "InvoiceSent is not mapped on endpoint 'crm'"),
    ({"events": ["ClientCreate"], "endpoint": "nope"}, NotFoundError, "nope"),
    ({"events": ["ClientCreate"], "seed": True}, UsageError, "seed must be a whole number"),
    ({"events": ["ClientCreate"], "vary": "yes"}, UsageError, "vary must be True or False"),
    ({"events": ["ClientCreate"], "config": "missing.toml"}, ConfigError, "missing.toml"),
])
def test_a_wrong_setting_is_one_clear_error(config: Path, settings: dict[str, object], error: type[Exception],
                                            message: str) -> None:
    with pytest.raises(error, match=None) as caught:
        make_plan(**settings)
    assert message in str(caught.value)


def test_a_missing_variable_stops_before_anything_is_sent(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLAN_TOKEN")
    with pytest.raises(MissingVariableError, match="PLAN_TOKEN"):
        make_plan(["ClientCreate"])
    make_plan(["ClientCreate"], endpoint="ops")  # an endpoint that does not use it is fine


def test_a_ca_bundle_without_a_certificate_stops_before_anything_is_sent(config: Path) -> None:
    """`verify_tls = "ca.pem"` names a file that exists but holds no certificate: one config error."""
    (config.parent / "ca.pem").write_text("not a certificate\n")
    config.write_text(config.read_text().replace("verify_tls = false", 'verify_tls = "ca.pem"'))
    with pytest.raises(ConfigError, match=r"verify_tls of endpoint 'ops': .*ca\.pem holds no CA certificate"):
        make_plan(["InvoiceSent"])
    assert make_plan(["ClientCreate"], endpoint="crm").tls == {}  # http:// only: no TLS context is loaded


def test_answers_are_judged_in_fires_words(config: Path) -> None:
    target = make_plan(["ClientCreate"], endpoint="crm").targets["ClientCreate"][0]
    disable_on = frozenset({401, 403, 404, 405, 410})
    assert failure(204, target, disable_on) is None
    assert failure(404, target, disable_on) == (
        "HTTP 404 Not Found from POST http://127.0.0.1:9/a: Moxie would disable endpoint 'crm' "
        "(reported only; the config is not changed)")
    # Nothing the receiver picks per answer (a Location) goes into the text Locust groups by.
    assert failure(301, target, disable_on) == "HTTP 301 Moved Permanently (redirects are not followed)"
    assert failure(503, target, disable_on) == "HTTP 503 Service Unavailable"
    assert failure(418, target, frozenset({418})).endswith(  # type: ignore[union-attr]
        "Moxie would disable endpoint 'crm' (reported only; the config is not changed)")
    # No answer at all, in fire's words (moxiehook's client raises these).
    assert no_answer(AttemptTimeout("the attempt's time is up"), 1.5) == "timeout: no answer within 1.5 s"
    assert no_answer(TransportError("connection refused"), 1.5) == "connection error: connection refused"


# ---------------------------------------------------------------------------
# moxiehook locustfile


def test_the_locustfile_is_python_naming_what_was_asked() -> None:
    text = locustfile_text(["ClientCreate", "InvoiceSent"], "crm", True, Path("/srv/x.toml"))
    tree = ast.parse(text)
    user = next(node for node in tree.body if isinstance(node, ast.ClassDef))
    values = {t.targets[0].id: ast.literal_eval(t.value) for t in user.body  # type: ignore[attr-defined]
              if isinstance(t, ast.Assign) and not isinstance(t.value, ast.Call)}
    assert values == {"events": {"ClientCreate": 1, "InvoiceSent": 1}, "endpoint": "crm", "vary": True,
                      "config": "/srv/x.toml"}


def test_whatever_a_name_holds_it_stays_a_string() -> None:
    odd = 'x"""\nimport os\n"'
    text = locustfile_text(["ClientCreate"], odd, False, Path(f"/tmp/{odd}"))
    tree = ast.parse(text)
    assert not any(isinstance(n, ast.Import) and n.names[0].name == "os" for n in ast.walk(tree))
    assert f"endpoint = {odd!r}" not in text and odd in [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]


def test_locustfile_prints_to_stdout_and_writes_with_o(cli, config_path: Path, receiver) -> None:
    config_path.write_text(CONFIG)
    result = cli("locustfile")
    assert result.exit_code == 0, result.stderr
    assert 'events = {"ClientCreate": 1, "InvoiceSent": 1}' in result.stdout  # ProjectCreate: only on 'old'
    assert 'config = ' in result.stdout  # --config was given (by the fixture): named in the file
    result = cli("locustfile", "InvoiceSent", "--endpoint", "ops", "--vary", "-o", "lf.py")
    assert result.exit_code == 0 and result.stdout == ""
    text = Path("lf.py").read_text()
    assert 'events = {"InvoiceSent": 1}' in text and 'endpoint = "ops"' in text and "vary = True" in text
    compile(text, "lf.py", "exec")


@pytest.mark.parametrize(("args", "match"), [
    (("ClientCreat",), "unknown event 'ClientCreat'"),
    (("ProjectCreate",), "ProjectCreate is mapped only on disabled endpoint 'old'"),
    (("InvoiceSent", "--endpoint", "crm"), "InvoiceSent is not mapped on endpoint 'crm'"),
    (("--endpoint", "old"), "endpoint 'old' is disabled"),
    (("--endpoint", "nope"), "nope"),
    (("-o", "."), "-o .: that is a folder; name a file, e.g. -o locustfile.py"),
])
def test_locustfile_refuses_what_would_fail_at_the_first_user(rejected, config_path: Path, args: tuple[str, ...],
                                                              match: str) -> None:
    config_path.write_text(CONFIG)
    rejected("locustfile", *args, match=match)


def test_locustfile_leaves_out_events_outside_the_catalog_and_says_so(cli, config_path: Path) -> None:
    config_path.write_text(CONFIG + '\n[[endpoints.crm.mappings]]\nevent = "MyOwnEvent"\nurl = "http://127.0.0.1:9/m"\n')
    result = cli("locustfile")
    assert result.exit_code == 0
    assert "MyOwnEvent" not in result.stdout
    assert result.stderr.startswith("warning: MyOwnEvent is mapped but not in the catalog")


def test_locustfile_without_a_mapped_event(rejected) -> None:
    rejected("locustfile", match="no event of the catalog is mapped on any enabled endpoint")


# ---------------------------------------------------------------------------
# the examples of docs/load.md


def docs_user_classes() -> list[dict[str, object]]:
    """Each MoxieUser subclass in docs/load.md's Python examples: its literal settings."""
    text = (Path(__file__).parent.parent / "docs" / "load.md").read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]
    found = []
    for block in blocks:
        for node in ast.parse(block).body:
            if isinstance(node, ast.ClassDef) and [b.id for b in node.bases] == ["MoxieUser"]:  # type: ignore[attr-defined]
                found.append({t.targets[0].id: ast.literal_eval(t.value) for t in node.body  # type: ignore[attr-defined]
                              if isinstance(t, ast.Assign) and not isinstance(t.value, ast.Call)})
    return found


def test_the_docs_locustfiles_are_valid_users(config: Path) -> None:
    config.write_text(CONFIG + '\n[[endpoints.crm.mappings]]\nevent = "InvoiceSent"\nurl = "http://127.0.0.1:9/i"\n')
    users = docs_user_classes()
    assert len(users) == 2
    for settings in users:
        make_plan(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [None, 9])
def test_every_events_bytes_are_what_encode_body_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       seed: int | None) -> None:
    """Copies of the sample are spliced into its encoding once made: byte for byte encode_body's."""
    from moxiehook.log import encode_body

    mappings = "".join(f'[[endpoints.all.mappings]]\nevent = "{e.name}"\nurl = "http://127.0.0.1:9/x"\n\n'
                       for e in catalog.EVENTS)
    (tmp_path / "moxiehook.toml").write_text(f"version = 1\n\n[endpoints.all]\n\n{mappings}")
    for vary in (False, True):
        plan = make_plan([e.name for e in catalog.EVENTS], vary=vary, seed=seed)
        stream = Stream(plan, 4)
        for event in plan.events:
            for _ in range(3):
                _, delivery = stream.next_delivery(event)
                assert delivery.body_bytes == encode_body(delivery.body)
