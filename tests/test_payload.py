"""--data, --set and --count payload handling (no network)."""

from __future__ import annotations

import io
import json
import re
import types
from pathlib import Path

import pytest

from moxiehook.catalog import payload
from moxiehook.errors import DataError, UsageError


def test_read_data_from_file_and_stdin(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('{"name": "Zoë"}', encoding="utf-8")
    assert payload.read_data(str(path)) == {"name": "Zoë"}
    assert payload.read_data("-", stdin=io.BytesIO(b"[1, 2]")) == [1, 2]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file"), (b"{not json", "not valid JSON"), (b"\xff\xfe{}", "not UTF-8")],
)
def test_read_data_errors(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "p.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        payload.read_data(str(path))


@pytest.mark.parametrize(
    ("text", "path", "value"),
    [
        ("name=Acme", ("name",), "Acme"),
        ("hourlyAmount=90.5", ("hourlyAmount",), 90.5),
        ("archive=true", ("archive",), True),
        ('name="42"', ("name",), "42"),
        ("a.b.c=null", ("a", "b", "c"), None),
        ("note=x=y", ("note",), "x=y"),
        ("empty=", ("empty",), ""),
        ("contacts[0].email=a@b.example", ("contacts", 0, "email"), "a@b.example"),
        ("contacts.0.email=a@b.example", ("contacts", "0", "email"), "a@b.example"),
        ("matrix[1][2]=7", ("matrix", 1, 2), 7),
        ("tags[3]=x", ("tags", 3), "x"),
    ],
)
def test_parse_assignment(text: str, path: tuple[str | int, ...], value: object) -> None:
    assert payload.parse_assignment(text) == (path, value, text)


@pytest.mark.parametrize("text", ["name", "a..b=1", "=1", "contacts[x].email=1", "contacts[0.email=1", "a[-1]=1",
                                  "a]=1"])
def test_parse_assignment_rejects(text: str) -> None:
    with pytest.raises(UsageError, match=re.escape(repr(text))):
        payload.parse_assignment(text)


def test_apply_overrides_creates_intermediate_objects() -> None:
    body = {"paymentTerms": {"paymentDays": 30}, "name": "A"}
    result = payload.apply_overrides(body, ["paymentTerms.paymentDays=15", "meta.source.kind=ci", "name=B"])
    assert result == {"paymentTerms": {"paymentDays": 15}, "meta": {"source": {"kind": "ci"}}, "name": "B"}


def test_apply_overrides_reaches_into_arrays_both_ways_and_leaves_the_input_as_it_was() -> None:
    body = {"contacts": [{"email": "a"}, {"email": "b", "tags": ["x", "y"]}], "meta": {"0": "zero"}}
    before = json.dumps(body)
    result = payload.apply_overrides(body, ["contacts[0].email=first", "contacts.1.email=second",
                                            "contacts[1].tags[1]=z", "meta.0=key", "contacts[1].new=true"])
    assert result == {"contacts": [{"email": "first"}, {"email": "second", "tags": ["x", "z"], "new": True}],
                      "meta": {"0": "key"}}
    assert json.dumps(body) == before  # only the containers on the paths were copied
    assert result["contacts"] is not body["contacts"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name.first=B", "name is a string, not an object"),
        ("contacts[2].email=x", "contacts[2] is past the end (the array has 2 elements)"),
        ("contacts.2.email=x", "contacts.2 is past the end (the array has 2 elements)"),
        ("contacts[0].tags[0]=x", "contacts[0].tags[0] is past the end (the array has 0 elements)"),
        ("contacts.email=x", "contacts is an array, not an object"),
        ("contacts[0][0]=x", "contacts[0] is an object, not an array"),
        ("name[0]=x", "name is a string, not an array"),
        ("client.name=x", "client is null, not an object: set the whole value instead (--set 'client={...}')"),
        ("missing[0].email=x", "missing is not in the payload, so it has no elements"),
        ("missing.0.email=x", "missing is not in the payload, so it has no elements"),
        ("count.x=1", "count is a number, not an object"),
    ],
)
def test_a_path_that_does_not_fit_is_an_error_naming_it(text: str, message: str) -> None:
    body = {"name": "A", "client": None, "count": 3, "contacts": [{"email": "a", "tags": []}, {"email": "b"}]}
    before = json.dumps(body)
    with pytest.raises(payload.PathError) as info:
        payload.apply_overrides(body, ["name=changed first", text])
    assert str(info.value) == f"--set {text!r}: {message}"
    assert info.value.exit_code == 2
    assert info.value.too_short is ("past the end" in message)
    assert json.dumps(body) == before  # unchanged, also by the assignment before the bad one
    assert '"contacts[' not in json.dumps(body) and "missing" not in body  # never a new odd key


@pytest.mark.parametrize(("body", "text"), [({"name": "A"}, "name.first=B"), ([1], "a=1")])
def test_apply_overrides_through_a_non_object(body: object, text: str) -> None:
    with pytest.raises(DataError):
        payload.apply_overrides(body, [text])
    assert body in ({"name": "A"}, [1])  # unchanged


def test_copies_are_lazy_with_fresh_ids_of_the_same_shape() -> None:
    source = {"id": "6543a1f2c9e77b2d4f1a0b3c", "name": "A"}
    made = payload.copies(source, 1000)
    assert isinstance(made, types.GeneratorType)
    bodies = list(made)
    ids = [b["id"] for b in bodies]
    assert len(set(ids)) == 1000 and source["id"] not in ids
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in ids)
    assert all(b["name"] == "A" for b in bodies)
    assert source["id"] == "6543a1f2c9e77b2d4f1a0b3c"  # the original is untouched


def test_copies_use_ulids_for_other_ids_and_keep_a_single_payload() -> None:
    ids = [b["id"] for b in payload.copies({"id": 7}, 3)]
    assert len(set(ids)) == 3 and all(re.fullmatch(r"[0-9A-Z]{26}", i) for i in ids)
    single = {"id": "keep"}
    assert list(payload.copies(single, 1)) == [{"id": "keep"}]
    assert list(payload.copies([1, 2], 2)) == [[1, 2], [1, 2]]  # no id: sent as given


def test_copies_reject_a_count_below_one() -> None:
    with pytest.raises(UsageError):
        next(payload.copies({}, 0))
