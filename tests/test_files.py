"""``files.atomic_write``: the one way moxiehook replaces a file, on a real filesystem."""

from __future__ import annotations

import ast
import stat
from pathlib import Path

import pytest

import moxiehook
from moxiehook.files import Discard, atomic_write, remove_stale_temp_files


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def temp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_a_new_file_gets_0644_or_the_mode_asked(tmp_path: Path) -> None:
    plain, secret = tmp_path / "plain", tmp_path / "secret"
    with atomic_write(plain) as out:
        out.write(b"one\n")
    with atomic_write(secret, mode=0o600) as out:
        out.write(b"token\n")
    assert (plain.read_bytes(), mode_of(plain)) == (b"one\n", 0o644)
    assert (secret.read_bytes(), mode_of(secret)) == (b"token\n", 0o600)
    assert temp_files(tmp_path) == []


def test_the_existing_mode_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"old")
    path.chmod(0o640)
    with atomic_write(path) as out:
        out.write(b"new")
    assert (path.read_bytes(), mode_of(path)) == (b"new", 0o640)


def test_an_error_or_discard_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"old")
    inode = path.stat().st_ino
    with pytest.raises(RuntimeError), atomic_write(path) as out:
        out.write(b"half")
        raise RuntimeError("boom")
    with atomic_write(path) as out:
        out.write(b"never mind")
        raise Discard
    assert (path.read_bytes(), path.stat().st_ino) == (b"old", inode)
    assert temp_files(tmp_path) == []


def test_a_symlink_is_written_through_to_its_target(tmp_path: Path) -> None:
    target = tmp_path / "real" / "file"
    target.parent.mkdir()
    target.write_bytes(b"old")
    link = tmp_path / "link"
    link.symlink_to(target)
    with atomic_write(link) as out:
        out.write(b"new")
    assert link.is_symlink()
    assert target.read_bytes() == b"new"
    assert temp_files(target.parent) == [] and temp_files(tmp_path) == []


def test_a_place_that_cannot_be_written_is_an_oserror_for_the_caller_to_word(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"a file where a folder should be")
    with pytest.raises(OSError), atomic_write(blocker / "file") as out:
        out.write(b"new")
    assert blocker.read_bytes() == b"a file where a folder should be"


def test_stale_temp_files_are_removed(tmp_path: Path) -> None:
    path = tmp_path / "moxiehook.toml"
    (tmp_path / ".moxiehook.toml.abc123.tmp").write_bytes(b"left by a killed writer")
    (tmp_path / ".other.abc123.tmp").write_bytes(b"not ours")
    remove_stale_temp_files(path)
    assert temp_files(tmp_path) == [".other.abc123.tmp"]


# Files still replacing a file their own way. The ready file of `listen` is switched to
# `atomic_write` separately (its module belongs to the receiver's work); then this set is empty.
NOT_YET = {"receive/server.py"}


def test_atomic_write_is_the_only_way_a_file_is_replaced() -> None:
    package = Path(moxiehook.__file__).parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        relative = str(path.relative_to(package))
        if relative == "files.py" or relative in NOT_YET:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("replace", "rename", "mkstemp") and \
                    isinstance(node.value, ast.Name) and node.value.id in ("os", "tempfile"):
                offenders.append(f"{relative}:{node.lineno} {node.value.id}.{node.attr}")
    assert offenders == []
