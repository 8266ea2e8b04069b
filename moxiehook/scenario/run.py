"""Running a rendered scenario: each step delivered exactly as ``fire`` delivers an event.

Every step goes to every mapping of its event on the chosen endpoints through the one delivery
engine (``moxiehook.send``'s ``run_jobs``: the one request builder, auth, custom headers,
signing, retries, disabling, the log), one delivery at a time so the receiver sees the story in
order. Its records carry ``mode = "scenario"`` (``"app"`` when delivered in-process with ``--app``)
and ``"scenario": {"name", "run", "step"}``.

A step succeeds when every delivery of it was delivered (2xx), or, with ``expect.status``, when
every answer's status is one of those: ``expect`` alone decides (a step expecting 409 succeeds
on a 409). A step that fails stops the run: each later step's deliveries are logged as
``skipped``, their error naming the failed step, and the run exits 1, unless the failed step
says ``continue_on_failure = true`` (the run still exits 1). A step whose deliveries were all
skipped (its endpoints disabled) is a failed step too: the story is broken there.

``plan`` finds every step's mappings before anything is sent, so a step with none is exit 3
naming it, and nothing at all went out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moxiehook import ids
from moxiehook.config import Config, Endpoint, EventMapping
from moxiehook.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_NOTHING_SENT, EXIT_OK, NothingSentError
from moxiehook.log import DeliveryRecord
from moxiehook.scenario.render import Rendered, RenderedStep
from moxiehook.send import Job, RunOptions, RunSummary, plan_fire, run_jobs

MODE = "scenario"
APP_MODE = "app"  # a delivery made in-process (--app): replay must keep it in-process, never send it to its URL

Plan = list[tuple[Endpoint, EventMapping]]
Wait = Callable[[float], bool]  # waits up to N seconds; True when the run was asked to stop meanwhile


@dataclass
class StepResult:
    """One step of one run: its outcome (``delivered``, ``failed`` or ``skipped``) and its records."""

    name: str
    event: str
    outcome: str = "skipped"
    error: str | None = None
    records: list[DeliveryRecord] = field(default_factory=list)
    left_out: bool = False  # named by --skip: neither sent nor logged
    judged: bool = False

    @property
    def broken(self) -> bool:
        """The story broke here: the step failed, was stopped by a failure, or could not be sent."""
        return self.outcome != "delivered" and not self.left_out

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "event": self.event, "outcome": self.outcome, "error": self.error,
                "deliveries": [record.to_dict() for record in self.records]}


@dataclass
class ScenarioRun:
    """What one run of a scenario did; ``exit_code`` as for ``fire``, decided by the steps."""

    scenario: str
    run: str
    seed: int
    vary: bool
    steps: list[StepResult]
    summary: RunSummary = field(default_factory=RunSummary)

    @property
    def exit_code(self) -> int:
        if self.summary.interrupted:
            return EXIT_INTERRUPTED
        if self.summary.delivered + self.summary.failed == 0:
            return EXIT_NOTHING_SENT
        if self.summary.disabled or any(step.broken for step in self.steps):
            return EXIT_FAILED
        return EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "run": self.run, "seed": self.seed, "vary": self.vary,
                "exit_code": self.exit_code, "steps": [step.to_dict() for step in self.steps]}


def plan(config: Config, rendered: Rendered, endpoints: Sequence[str] | None) -> dict[str, Plan]:
    """Each step's (endpoint, mapping) pairs; ``NothingSentError`` (exit 3) naming a step that has none."""
    plans: dict[str, Plan] = {}
    for item in rendered.steps:
        found = plan_fire(config, item.step.event, list(endpoints) if endpoints else None)
        if not found:
            where = f" on endpoint(s) {', '.join(endpoints)}" if endpoints else ""
            raise NothingSentError(f"step {item.step.name!r}: no mapping for {item.step.event}{where}; nothing "
                                   f"was sent (see: moxiehook map list)")
        plans[item.step.name] = found
    return plans


def run_scenario(config_path: Path, config: Config, rendered: Rendered, plans: dict[str, Plan],
                 options: RunOptions, wait: Wait | None = None, in_process: bool = False) -> ScenarioRun:
    """Deliver the steps in order (see the module's docstring); every record is logged as it ends.

    ``in_process``: ``options.sender`` delivers into an app (``--app``). Those records say
    ``mode = "app"`` (with their ``scenario`` field), as ``fire --app``'s do: their URL never saw
    the request, and a replay must not send it there.
    """
    run_id = "scn_" + ids.ulid()
    results = {item.step.name: StepResult(item.step.name, item.step.event) for item in rendered.steps}
    result = ScenarioRun(rendered.scenario.name, run_id, rendered.seed, rendered.vary, [])
    for step in rendered.scenario.steps:
        if step.name in rendered.left_out:
            result.steps.append(StepResult(step.name, step.event, "skipped", "left out by --skip", left_out=True))
        else:
            result.steps.append(results[step.name])
    current: list[tuple[StepResult, RenderedStep]] = []
    previous = options.on_record

    def on_record(record: DeliveryRecord) -> None:
        if current:
            current[0][0].records.append(record)
        if previous is not None:
            previous(record)

    stop = options.interrupt.requested if options.interrupt is not None else threading.Event()
    jobs = _jobs(rendered, plans, results, current, run_id, wait or stop.wait, APP_MODE if in_process else MODE)
    options.on_record = on_record
    options.concurrency = 1  # in order: the receiver sees step N's deliveries before step N+1's
    try:
        result.summary = run_jobs(config_path, config, jobs, options)
    finally:
        options.on_record = previous
    if current:
        _judge(*current[0])
    for outcome in result.steps:
        if not outcome.judged and not outcome.left_out and outcome.error is None:
            outcome.error = "not started: the run was interrupted"
    return result


def _jobs(rendered: Rendered, plans: dict[str, Plan], results: dict[str, StepResult],
          current: list[tuple[StepResult, RenderedStep]], run_id: str, wait: Wait, mode: str) -> Iterator[Job]:
    """The run's jobs, step after step; each step is judged before the next step's jobs are made.

    ``run_jobs`` with one sending thread takes a job, sends and logs it, then takes the next: so
    when this generator is asked for step N+1's first job, every record of step N is in.
    """
    stopped_by: str | None = None
    for item in rendered.steps:
        if current:
            before, before_item = current[0]
            if not _judge(before, before_item) and not before_item.step.continue_on_failure and stopped_by is None:
                stopped_by = f"step {before.name!r} failed ({before.error}): the scenario stopped there"
        result = results[item.step.name]
        current[:] = [(result, item)]
        if stopped_by is not None:
            result.error, result.judged = stopped_by, True
        elif item.step.delay and wait(item.step.delay):
            current.clear()
            return  # Ctrl-C during the delay: this step and the later ones are not started
        event_id = ids.event_id()
        scenario = {"name": rendered.scenario.name, "run": run_id, "step": item.step.name}
        for endpoint, mapping in plans[item.step.name]:
            yield Job(endpoint.name, item.step.event, mapping.url, item.payload, event_id, mode,
                      scenario=scenario, skip=stopped_by)


def _judge(result: StepResult, item: RenderedStep) -> bool:
    """Set ``result.outcome`` from its records (once); True when the step succeeded."""
    if result.judged:
        return result.outcome == "delivered"
    result.judged = True
    sent = [r for r in result.records if r.outcome != "skipped"]
    if not sent:
        reasons = sorted({r.error for r in result.records if r.error})
        result.outcome, result.error = "skipped", "; ".join(reasons) or "nothing was sent"
        return False
    expect = item.step.expect
    if expect is not None:
        wrong = [r for r in sent if r.status not in expect]
        if wrong:
            shown = " or ".join(str(s) for s in expect)
            answer = f"HTTP {wrong[0].status}" if wrong[0].status is not None else wrong[0].error
            result.error = f"{wrong[0].url} answered {answer}, expected {shown}"
    else:
        bad = [r for r in sent if r.outcome != "delivered"]
        if bad:
            result.error = f"{bad[0].url}: {bad[0].error or bad[0].outcome}"
    if result.error is None and len(sent) < len(result.records):
        result.error = f"{len(result.records) - len(sent)} of its deliveries skipped: endpoint disabled"
        result.outcome = "failed"
        return False
    result.outcome = "failed" if result.error else "delivered"
    return result.error is None
