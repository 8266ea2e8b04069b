"""run_jobs: streaming, bounded in-flight jobs, summaries; plan_fire; exit codes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from moxiehook.config import store
from moxiehook.errors import NotFoundError
from moxiehook.log.records import DeliveryRecord
from moxiehook.send import dispatch
from tests.conftest import Receiver

ENDPOINTS = """
[endpoints.a]
[[endpoints.a.mappings]]
event = "ClientCreate"
url = "URL/a"
[endpoints.b]
enabled = false
disabled_reason = "gone"
[[endpoints.b.mappings]]
event = "ClientCreate"
url = "URL/b"
"""


@pytest.fixture
def setup(config_path: Path, receiver: Receiver) -> tuple[Path, Receiver]:
    config_path.write_text(config_path.read_text() + ENDPOINTS.replace("URL", receiver.url("")))
    return config_path, receiver


def test_plan_fire(setup: tuple[Path, Receiver]) -> None:
    config = store.load_config(setup[0])
    assert [(e.name, m.url.rsplit("/", 1)[1]) for e, m in dispatch.plan_fire(config, "ClientCreate", None)] == [
        ("a", "a"), ("b", "b")]
    assert [e.name for e, _ in dispatch.plan_fire(config, "ClientCreate", ["b", "b"])] == ["b"]
    assert dispatch.plan_fire(config, "ClientDelete", None) == []
    with pytest.raises(NotFoundError):
        dispatch.plan_fire(config, "ClientCreate", ["zzz"])


def test_jobs_are_taken_lazily_with_a_bounded_number_in_flight(setup: tuple[Path, Receiver]) -> None:
    config_path, receiver = setup
    config = store.load_config(config_path)
    lock = threading.Lock()
    counts = {"taken": 0, "done": 0, "most_ahead": 0}

    def jobs() -> Iterator[dispatch.Job]:
        for n in range(60):
            with lock:
                counts["taken"] += 1
                counts["most_ahead"] = max(counts["most_ahead"], counts["taken"] - counts["done"])
            yield dispatch.Job("a", "ClientCreate", receiver.url("/a"), {"n": n}, f"evt_{n}")

    def on_record(record: DeliveryRecord) -> None:
        with lock:
            counts["done"] += 1

    summary = dispatch.run_jobs(config_path, config, jobs(), dispatch.RunOptions(concurrency=3, on_record=on_record))
    assert (summary.delivered, summary.failed, summary.skipped) == (60, 0, 0)
    assert summary.records == [] and summary.exit_code == 0
    assert counts["most_ahead"] <= 2 * 3
    assert sorted(r.json()["n"] for r in receiver.requests) == list(range(60))


def test_already_disabled_endpoints_are_skipped_and_named(setup: tuple[Path, Receiver]) -> None:
    config_path, receiver = setup
    config = store.load_config(config_path)
    plan = dispatch.plan_fire(config, "ClientCreate", None)
    summary = dispatch.run_jobs(config_path, config, dispatch.fire_jobs(plan, "ClientCreate", [{"x": 1}]),
                                dispatch.RunOptions(concurrency=2, keep_records=True))
    assert (summary.delivered, summary.skipped, summary.exit_code) == (1, 1, 0)
    assert summary.already_disabled == {"b": "gone"}
    skipped = next(r for r in summary.records if r.outcome == "skipped")
    assert skipped.endpoint == "b" and "gone" in (skipped.error or "")
    assert receiver.requests_to("/b") == []
    lines = (config_path.parent / "log.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["outcome"] for line in lines) == ["delivered", "skipped"]


def test_include_disabled_sends_to_a_disabled_endpoint(setup: tuple[Path, Receiver]) -> None:
    config_path, receiver = setup
    config = store.load_config(config_path)
    jobs = [dispatch.Job("b", "ClientCreate", receiver.url("/b"), {}, "evt_1", mode="test")]
    summary = dispatch.run_jobs(config_path, config, jobs, dispatch.RunOptions(concurrency=1, include_disabled=True))
    assert summary.delivered == 1 and len(receiver.requests_to("/b")) == 1


@pytest.mark.parametrize(
    ("delivered", "failed", "skipped", "disabled", "code"),
    [(3, 0, 0, [], 0), (3, 0, 2, [], 0), (2, 1, 0, [], 1), (0, 1, 0, [("a", "r")], 1), (0, 0, 5, [], 3),
     (0, 0, 0, [], 3)],
)
def test_summary_exit_code(delivered: int, failed: int, skipped: int, disabled: list, code: int) -> None:
    summary = dispatch.RunSummary(delivered=delivered, failed=failed, skipped=skipped, disabled=disabled)
    assert summary.exit_code == code


def test_preview_masks_and_sends_nothing(setup: tuple[Path, Receiver], monkeypatch: pytest.MonkeyPatch) -> None:
    config_path, receiver = setup
    text = config_path.read_text().replace(
        "[endpoints.a]\n", '[endpoints.a]\nauth = { type = "bearer", token = "${T}" }\n')
    config_path.write_text(text)
    monkeypatch.setenv("T", "hidden-value")
    config = store.load_config(config_path)
    job = dispatch.Job("a", "ClientCreate", receiver.url("/a"), {"k": 1}, "evt_1")
    shown = list(dispatch.preview_jobs(config, [job]))
    assert shown == [{"method": "POST", "url": receiver.url("/a"), "body": {"k": 1}, "headers": {
        "Content-Type": "application/json", "User-Agent": shown[0]["headers"]["User-Agent"],
        "X-Event-Origin": "withmoxie.com", "X-Event-Type": "ClientCreate", "Authorization": "***"}}]
    assert receiver.requests == []
