"""Pacer: how many sending threads a run uses (one, more only while deliveries wait)."""

from __future__ import annotations

from pathlib import Path

from moxiehook.config import store
from moxiehook.log.records import DeliveryRecord
from moxiehook.send import dispatch
from moxiehook.send.pacing import WINDOW_S, Pacer
from tests.conftest import Answer, Receiver


def test_deliveries_that_keep_the_interpreter_busy_add_no_sender() -> None:
    pacer = Pacer(limit=8)
    for _ in range(1000):  # 0.5 ms each, 90% of it on the CPU: a fast receiver
        assert pacer.observe(0.0005, 0.00045) == 0
    assert pacer.senders == 1


def test_deliveries_that_wait_on_the_network_grow_the_senders_up_to_the_limit() -> None:
    pacer = Pacer(limit=32)
    added = pacer.observe(0.050, 0.001)  # one 50 ms delivery fills the window: 2% busy
    assert added > 1 and pacer.senders == 1 + added
    for _ in range(200):
        pacer.observe(0.050, 0.001)
    assert pacer.senders == 32  # never more than the concurrency asked for
    assert pacer.observe(0.050, 0.001) == 0


def test_a_short_window_is_not_judged() -> None:
    pacer = Pacer(limit=8)
    assert pacer.observe(WINDOW_S / 4, 0.0) == 0  # all waiting, but too little time to judge
    assert pacer.senders == 1


def test_the_watchdog_adds_one_sender_only_when_no_delivery_ended() -> None:
    pacer = Pacer(limit=3)
    assert pacer.stalled() == 1  # nothing ended yet: a hanging first delivery
    pacer.observe(0.001, 0.001)
    assert pacer.stalled() == 0  # something ended since the last check
    assert pacer.stalled() == 1
    assert pacer.stalled() == 0 and pacer.senders == 3  # at the limit


def test_a_hanging_endpoint_does_not_hold_up_the_others(config_path: Path, receiver: Receiver) -> None:
    """The first job's answer takes 1 s; the other 20 are sent and logged before it ends."""
    # 1 s: well inside the config's 2 s timeout, so the slow delivery is delivered, not retried.
    receiver.answer("/slow", Answer(status=200, delay=1.0))
    config_path.write_text(config_path.read_text() + (
        '[endpoints.slow]\n[[endpoints.slow.mappings]]\nevent = "ClientCreate"\nurl = "URL/slow"\n'
        '[endpoints.fast]\n[[endpoints.fast.mappings]]\nevent = "ClientCreate"\nurl = "URL/fast"\n'
    ).replace("URL", receiver.url("")))
    config = store.load_config(config_path)
    jobs = [dispatch.Job("slow", "ClientCreate", receiver.url("/slow"), {}, "evt_0")]
    jobs += [dispatch.Job("fast", "ClientCreate", receiver.url("/fast"), {"n": n}, f"evt_{n}") for n in range(1, 21)]
    order: list[str] = []

    def on_record(record: DeliveryRecord) -> None:
        order.append(record.endpoint)

    summary = dispatch.run_jobs(config_path, config, jobs, dispatch.RunOptions(concurrency=4, on_record=on_record))
    assert summary.delivered == 21 and summary.exit_code == 0
    assert order == ["fast"] * 20 + ["slow"]
