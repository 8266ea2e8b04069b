"""moxiehook.catalog.varied: seeded varied copies, each different, all valid under the schema."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from moxiehook import catalog
from moxiehook.catalog import PathError
from moxiehook.catalog.vary import MAX_ELEMENTS

OBJECTS = sorted({event.object_key: event.name for event in catalog.EVENTS}.items())


def copies(name: str, seed: int = 1, n: int = 200, assignments: list[str] = ()) -> list[Any]:
    parsed = [catalog.parse_assignment(text) for text in assignments]
    stream = catalog.varied(catalog.sample(name), seed, parsed, schema=catalog.schema(name))
    return list(itertools.islice(stream, n))


def leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in leaves(item)]
    return [value]


def arrays(value: Any) -> list[list[Any]]:
    if isinstance(value, dict):
        return [a for item in value.values() for a in arrays(item)]
    if isinstance(value, list):
        return [value, *(a for item in value for a in arrays(item))]
    return []


@pytest.mark.parametrize(("object_key", "name"), OBJECTS, ids=[key for key, _ in OBJECTS])
def test_200_copies_all_validate_and_are_nearly_all_different(object_key: str, name: str) -> None:
    made = copies(name)
    validator = Draft202012Validator(catalog.schema(name), format_checker=Draft202012Validator.FORMAT_CHECKER)
    for body in made:
        assert not list(validator.iter_errors(body)), body
    bodies = {json.dumps(body, sort_keys=True) for body in made}
    assert len(bodies) >= 0.9 * len(made)
    # Not only the ids: the copies differ once ids are left out too.
    without_ids = {json.dumps({k: v for k, v in body.items() if k != "id"}, sort_keys=True) for body in made}
    assert len(without_ids) >= 0.9 * len(made)


@pytest.mark.parametrize(("object_key", "name"), OBJECTS, ids=[key for key, _ in OBJECTS])
def test_copies_carry_non_ascii_text_and_nulls(object_key: str, name: str) -> None:
    found = [leaf for body in copies(name) for leaf in leaves(body)]
    assert any(isinstance(leaf, str) and not leaf.isascii() for leaf in found)
    assert any(leaf is None for leaf in found)


def test_copies_carry_what_breaks_receivers() -> None:
    """Empty and longer arrays, long and empty strings, boundary numbers and times, awkward text."""
    made = copies("ClientCreate") + copies("DeliverableCreate")
    found = [leaf for body in made for leaf in leaves(body)]
    strings = [leaf for leaf in found if isinstance(leaf, str)]
    assert {len(body["contacts"]) for body in made[:200]} >= {0, 1, 2, MAX_ELEMENTS}
    assert max(len(a) for body in made for a in arrays(body)) == MAX_ELEMENTS
    assert max(map(len, strings)) >= 1000 and "" in strings
    assert any("\n" in s for s in strings) and any('"' in s for s in strings) and any("<script>" in s for s in strings)
    assert {0, 2**31 - 1, 2**53 - 1} <= {leaf for leaf in found if type(leaf) is int}
    assert any(s.startswith(("1970-", "2038-")) for s in strings)


def test_fields_null_in_moxies_sample_stay_null_mostly_and_take_a_value_their_name_suggests() -> None:
    roles = [contact["role"] for body in copies("ClientCreate") for contact in body["contacts"]]
    assert roles.count(None) > len(roles) / 2
    assert any(isinstance(role, str) for role in roles)
    dates = [body["lastInvoiceRunDate"] for body in copies("ClientCreate")]
    assert None in dates and any(isinstance(d, str) and d.endswith("Z") for d in dates)
    # A null field whose name says nothing about its value (an object, perhaps) stays null.
    assert {json.dumps(body["client"]) for body in copies("FormCompleted")} == {"null"}


def test_enum_like_fields_keep_moxies_value_or_a_known_alternative() -> None:
    made = copies("ClientCreate")
    assert {body["clientType"] for body in made} <= {"Client", "Prospect"}
    assert {body["currency"] for body in made} <= {"USD", "EUR", "GBP", "AUD", "CAD", "JPY", "CHF", "NZD", "BRL"}
    assert {body["paymentTerms"]["depositType"] for body in made} == {"Percentage"}


def test_the_same_seed_gives_the_same_copies() -> None:
    assert copies("OpportunityCreate", seed=42) == copies("OpportunityCreate", seed=42)
    assert copies("OpportunityCreate", seed=42) != copies("OpportunityCreate", seed=43)


def test_a_set_value_wins_and_a_too_short_array_is_drawn_again() -> None:
    made = copies("ClientCreate", assignments=["contacts[3].email=fourth@example.com", "name=Fixed"])
    assert all(body["contacts"][3]["email"] == "fourth@example.com" and body["name"] == "Fixed" for body in made)
    assert all(len(body["contacts"]) >= 4 for body in made)
    validator = Draft202012Validator(catalog.schema("ClientCreate"))
    assert all(validator.is_valid(body) for body in made)


def test_indexes_into_several_arrays_at_their_longest_fit_every_copy_of_a_long_run() -> None:
    """A run never fails half-way: only drawn values long enough for the indexes are mixed."""
    sample = catalog.sample("DeliverableCreate")
    filled = [key for key, value in sample.items() if isinstance(value, list) and value]
    assert len(filled) >= 3
    last = MAX_ELEMENTS - 1
    made = copies("DeliverableCreate", n=2000, assignments=[f"{key}[{last}]=1" for key in filled])
    assert all(body[key][last] == 1 for body in made for key in filled)
    assert len({json.dumps(body) for body in made}) == 2000


def test_copies_keep_the_samples_field_order() -> None:
    assert all(list(body) == list(catalog.sample("InvoiceSent")) for body in copies("InvoiceSent", n=20))


def test_an_index_no_copy_reaches_and_a_path_that_never_fits_are_errors() -> None:
    with pytest.raises(PathError, match=r"contacts\[5\] is past the end of the array in each of 200 varied"):
        copies("ClientCreate", n=1, assignments=["contacts[5].email=x"])
    with pytest.raises(PathError, match="name is a string, not an object"):
        copies("ClientCreate", n=1, assignments=["name.first=x"])


def test_the_sample_itself_is_left_as_it_was() -> None:
    sample = catalog.sample("ClientCreate")
    before = json.dumps(sample)
    list(itertools.islice(catalog.varied(sample, 1, [catalog.parse_assignment("contacts[0].email=x")]), 50))
    assert json.dumps(sample) == before


def test_vary_is_loaded_only_when_used() -> None:
    """``events``, ``fire`` without --vary and importing the catalog never import the generator."""
    code = ("import sys; from moxiehook import catalog; catalog.schema('ClientCreate'); "
            "print('moxiehook.catalog.vary' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
