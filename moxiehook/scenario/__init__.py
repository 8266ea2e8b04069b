"""Scenarios: related Moxie events fired in order, their payloads referring to each other.

- ``model``: the TOML format, parsed and checked (``Scenario``, ``Step``, ``ScenarioError``).
- ``refs``: ``${STEP:PATH}``, ``${vars:NAME}``, ``${oid}``, ``${now}`` inside values.
- ``render``: every step's payload as it will be sent, before anything is sent.
- ``validate``: rendered payloads against their events' schemas.
- ``run``: delivering the steps through ``moxiehook.send``, as ``fire`` does.
- ``library``: built-in scenarios (package data) and ``./scenarios/*.toml``.
- ``fromlog``: logged deliveries turned into a scenario.

Other packages import from here, not from the inner modules.
"""

from moxiehook.scenario.fromlog import FromLog, from_records
from moxiehook.scenario.library import Listed, builtin, builtin_names, find_scenario, list_scenarios
from moxiehook.scenario.model import MAX_DELAY_S, Scenario, ScenarioError, Step, load_scenario, parse_scenario
from moxiehook.scenario.render import Rendered, RenderedStep, StepOverride, override, parse_override, render
from moxiehook.scenario.run import MODE, ScenarioRun, StepResult, plan, run_scenario
from moxiehook.scenario.validate import StepCheck, validate

__all__ = [
    "MAX_DELAY_S", "MODE", "FromLog", "Listed", "Rendered", "RenderedStep", "Scenario", "ScenarioError",
    "ScenarioRun", "Step", "StepCheck", "StepOverride", "StepResult", "builtin", "builtin_names",
    "find_scenario", "from_records", "list_scenarios", "load_scenario", "override", "parse_override",
    "parse_scenario", "plan", "render", "run_scenario", "validate",
]
