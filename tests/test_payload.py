"""--data, --set and --count payload handling (no network)."""

from __future__ import annotations

import io
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
        ("name=Acme", ["name"], "Acme"),
        ("hourlyAmount=90.5", ["hourlyAmount"], 90.5),
        ("archive=true", ["archive"], True),
        ('name="42"', ["name"], "42"),
        ("a.b.c=null", ["a", "b", "c"], None),
        ("note=x=y", ["note"], "x=y"),
        ("empty=", ["empty"], ""),
    ],
)
def test_parse_assignment(text: str, path: list[str], value: object) -> None:
    assert payload.parse_assignment(text) == (path, value)


@pytest.mark.parametrize("text", ["name", "a..b=1", "=1"])
def test_parse_assignment_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        payload.parse_assignment(text)


def test_apply_overrides_creates_intermediate_objects() -> None:
    body = {"paymentTerms": {"paymentDays": 30}, "name": "A"}
    result = payload.apply_overrides(body, ["paymentTerms.paymentDays=15", "meta.source.kind=ci", "name=B"])
    assert result == {"paymentTerms": {"paymentDays": 15}, "meta": {"source": {"kind": "ci"}}, "name": "B"}


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
