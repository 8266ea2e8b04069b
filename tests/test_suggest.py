"""Tests for moxiehook.suggest: one way of saying "did you mean …?"."""

from __future__ import annotations

import pytest

from moxiehook.suggest import closest, did_you_mean

EVENTS = ["ClientCreate", "ClientUpdate", "ClientDelete", "InvoiceSent", "PaymentReceived"]


@pytest.mark.parametrize(
    ("typed", "meant"),
    [("ClientCreat", "ClientCreate"), ("clientcreate", "ClientCreate"), ("CLIENTUPDATE", "ClientUpdate"),
     ("InvoiceSnet", "InvoiceSent"), ("PaymentRecieved", "PaymentReceived")],
)
def test_a_typo_or_case_slip_finds_its_name(typed: str, meant: str) -> None:
    assert closest(typed, EVENTS) == meant


@pytest.mark.parametrize("typed", ["Nothing", "MyOwnEvent", "x", "ClientCreate"])
def test_an_unrelated_or_exact_name_gets_no_suggestion(typed: str) -> None:
    assert closest(typed, EVENTS) is None
    assert did_you_mean(typed, EVENTS) == ""


def test_the_suffix_reads_as_a_question() -> None:
    assert did_you_mean("ClientCreat", EVENTS) == " (did you mean ClientCreate?)"
    assert did_you_mean("mien", ["mine", "crm"], quote=True) == " (did you mean 'mine'?)"
