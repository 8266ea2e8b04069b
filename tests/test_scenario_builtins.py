"""The five built-in scenarios: valid under their events' schemas (checked by ``jsonschema``, a
well-kept validator, beside moxiehook's own check), with and without ``--vary`` for 100 seeds,
and each keeping one object's ids from its first step to its last."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from moxiehook import catalog
from moxiehook import scenario as scn
from moxiehook.scenario.validate import check

BUILTINS = ["agreement-signing", "client-lifecycle", "meeting-lifecycle", "project-to-payment", "task-workflow"]
SEEDS = range(100)
VALIDATORS: dict[str, jsonschema.Draft202012Validator] = {}


def validator(event: str) -> jsonschema.Draft202012Validator:
    if event not in VALIDATORS:
        VALIDATORS[event] = jsonschema.Draft202012Validator(catalog.schema(event))
    return VALIDATORS[event]


def steps(name: str, seed: int, vary: bool) -> dict[str, Any]:
    rendered = scn.render(scn.builtin(name), seed=seed, vary=vary)
    return {item.step.name: item.payload for item in rendered.steps}


def test_the_built_ins_are_the_five_named() -> None:
    assert scn.builtin_names() == BUILTINS
    assert scn.builtin("project-to-payment").step_names() == ["client", "project", "invoice", "payment"]


@pytest.mark.parametrize("vary", [False, True], ids=["sample", "varied"])
@pytest.mark.parametrize("name", BUILTINS)
def test_every_step_is_valid_for_100_seeds_and_both_validators_agree(name: str, vary: bool) -> None:
    for seed in SEEDS:
        rendered = scn.render(scn.builtin(name), seed=seed, vary=vary)
        ours = {check.name: check for check in scn.validate(rendered)}
        for item in rendered.steps:
            errors = [f"{e.json_path}: {e.message}" for e in validator(item.step.event).iter_errors(item.payload)]
            assert errors == [], (name, seed, item.step.name, errors[:3])
            assert ours[item.step.name].checked and ours[item.step.name].problems == ()
            json.dumps(item.payload, allow_nan=False)  # strict JSON


def test_the_cli_validates_them_with_and_without_vary(cli: Any) -> None:
    for name in BUILTINS:
        for args in ((), ("--vary", "--seed", "11")):
            result = cli("scenario", "validate", name, *args)
            assert result.exit_code == 0, result.stderr


def test_our_check_finds_what_jsonschema_finds() -> None:
    """Differential: broken payloads get a verdict from both, and the same one."""
    base = catalog.sample("InvoiceSent")
    broken = [
        {**base, "total": "4500"}, {**base, "total": 1.5}, {**base, "total": True}, {**base, "id": "XYZ"},
        {**base, "dateSent": "2026-1-1"}, {k: v for k, v in base.items() if k != "clientId"},
        {**base, "payments": [{**base["payments"][0], "amount": None}]}, {**base, "clientInfo": []}, [], "x",
        {**base, "total": 4500.0},
    ]
    schema = catalog.schema("InvoiceSent")
    for payload in broken:
        theirs = sorted(e.json_path for e in validator("InvoiceSent").iter_errors(payload))
        mine = check(schema, payload)
        assert bool(theirs) == bool(mine), (payload if not isinstance(payload, dict) else list(payload)[:3],
                                            theirs, mine)


@pytest.mark.parametrize("vary", [False, True], ids=["sample", "varied"])
def test_ids_hold_across_steps(vary: bool) -> None:
    for seed in range(0, 100, 7):
        c = steps("client-lifecycle", seed, vary)
        assert c["create"]["id"] == c["update"]["id"] == c["delete"]["id"]
        assert c["create"]["contacts"][0]["clientId"] == c["update"]["contacts"][0]["clientId"] == c["create"]["id"]

        p = steps("project-to-payment", seed, vary)
        client_id = p["client"]["id"]
        assert p["project"]["clientId"] == p["project"]["client"]["id"] == client_id
        assert p["invoice"]["clientId"] == p["invoice"]["clientInfo"]["id"] == p["payment"]["clientId"] == client_id
        assert p["payment"]["id"] == p["invoice"]["id"] != client_id
        invoice, payment = p["invoice"], p["payment"]
        assert invoice["total"] == invoice["subTotal"] == invoice["amountDue"] == 4500 == 150 * 30
        assert invoice["paymentTotal"] == 0 and invoice["payments"] == []
        assert payment["paymentTotal"] == payment["total"] == invoice["total"] and payment["amountDue"] == 0
        assert payment["payments"][0]["amount"] == invoice["total"]
        assert p["project"]["feeSchedule"]["amount"] == 150

        m = steps("meeting-lifecycle", seed, vary)
        assert m["scheduled"]["id"] == m["updated"]["id"] == m["cancelled"]["id"]
        assert m["scheduled"]["meetingId"] == m["updated"]["meetingId"] == m["cancelled"]["meetingId"]
        assert m["cancelled"]["meetingStatus"] == "Cancelled"

        a = steps("agreement-signing", seed, vary)
        assert a["sent"]["id"] == a["viewed"]["id"] == a["signed"]["id"]
        assert a["sent"]["client"]["id"] == a["viewed"]["client"]["id"] == a["signed"]["client"]["id"]

        t = steps("task-workflow", seed, vary)
        assert t["create"]["id"] == t["update"]["id"] == t["approval"]["id"]
        assert t["create"]["projectId"] == t["update"]["projectId"] == t["approval"]["projectId"]
        assert t["approval"]["project"]["id"] == t["create"]["projectId"]
        assert t["approval"]["clientId"] == t["create"]["clientId"] == t["create"]["client"]["id"]


def test_the_same_seed_renders_the_same_story_and_another_seed_another() -> None:
    for name in BUILTINS:
        for vary in (False, True):
            assert steps(name, 3, vary) == steps(name, 3, vary)
            assert steps(name, 3, vary) != steps(name, 4, vary)
