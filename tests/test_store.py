"""The config file on disk: discovery, reading, locked atomic updates, file modes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from moxiehook.config import store
from moxiehook.config.model import Auth, Config, Endpoint, EventMapping, resolve_relative
from moxiehook.config.store import (
    create_config,
    load_config,
    render_config,
    resolve_config_path,
    update_config,
    write_atomic,
)
from moxiehook.errors import ConfigError, NotFoundError, StorageError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def add_endpoint(auth: Auth):
    def change(config: Config) -> None:
        config.endpoints["crm"] = Endpoint(name="crm", auth=auth, mappings=[EventMapping("ClientCreate", "https://e.com")])

    return change


# --------------------------------------------------------------------------
# discovery


def test_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_config_path() == tmp_path / "moxiehook.toml"
    monkeypatch.setenv("MOXIEHOOK_CONFIG", "from-env.toml")
    assert resolve_config_path() == tmp_path / "from-env.toml"
    assert resolve_config_path("given.toml") == tmp_path / "given.toml"
    assert resolve_config_path("~/x.toml") == Path.home() / "x.toml"


def test_relative_paths_are_relative_to_the_config_folder(tmp_path: Path) -> None:
    config = tmp_path / "sub" / "moxiehook.toml"
    assert resolve_relative(config, "log.jsonl") == tmp_path / "sub" / "log.jsonl"
    assert resolve_relative(config, "/var/log/x.jsonl") == Path("/var/log/x.jsonl")


# --------------------------------------------------------------------------
# reading


def test_malformed_toml_names_file_line_and_column(config_path: Path) -> None:
    config_path.write_text('version = 1\n\n[settings]\norigin "x"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(config_path)
    message = str(caught.value)
    assert str(config_path) in message
    assert "line 4" in message and "column" in message


def test_validation_error_names_the_file(config_path: Path) -> None:
    config_path.write_text("version = 1\ncolour = 'red'\n")
    with pytest.raises(ConfigError, match=rf"{config_path}: colour: unknown key"):
        load_config(config_path)


@pytest.mark.parametrize("kind", ["missing", "directory", "not-utf8", "parent-is-a-file"])
def test_unreadable_config_is_a_config_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "moxiehook.toml"
    if kind == "directory":
        path.mkdir()
    elif kind == "not-utf8":
        path.write_bytes(b"version = 1\norigin = '\xff\xfe'\n")
    elif kind == "parent-is-a-file":
        (tmp_path / "file").write_text("")
        path = tmp_path / "file" / "moxiehook.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in str(caught.value)


# --------------------------------------------------------------------------
# writing


def test_round_trip_through_the_file(config_path: Path) -> None:
    update_config(config_path, add_endpoint(Auth(type="basic", username="u", password="${P}")))
    first = load_config(config_path)
    update_config(config_path, lambda config: None)
    assert load_config(config_path) == first
    assert first.endpoints["crm"].auth.password == "${P}"  # stored verbatim, never expanded
    assert "${P}" in config_path.read_text()


def test_literal_secret_makes_the_file_0600(config_path: Path) -> None:
    config_path.chmod(0o644)
    update_config(config_path, add_endpoint(Auth(type="bearer", token="s3cret")))
    assert mode(config_path) == 0o600


def test_references_only_keep_the_files_mode(config_path: Path) -> None:
    config_path.chmod(0o640)
    update_config(config_path, add_endpoint(Auth(type="bearer", token="${TOKEN}")))
    assert mode(config_path) == 0o640


def test_new_file_without_secrets_is_0644(tmp_path: Path) -> None:
    path = tmp_path / "new.toml"
    write_atomic(path, "version = 1\n")
    assert mode(path) == 0o644
    write_atomic(path, "version = 1\n", secret=True)
    assert mode(path) == 0o600


def test_failed_change_leaves_the_file_untouched(config_path: Path) -> None:
    before = config_path.read_bytes()

    def change(config: Config) -> None:
        config.settings.timeout = 5.0
        raise NotFoundError("nope")

    with pytest.raises(NotFoundError):
        update_config(config_path, change)
    assert config_path.read_bytes() == before


def test_change_that_breaks_validation_is_not_written(config_path: Path) -> None:
    before = config_path.read_bytes()

    def change(config: Config) -> None:
        config.settings.concurrency = 0

    with pytest.raises(Exception, match="settings.concurrency"):
        update_config(config_path, change)
    assert config_path.read_bytes() == before


def test_failed_rename_leaves_the_old_file_and_no_temp_file(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = config_path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "replace", broken_replace)
    with pytest.raises(StorageError, match="cannot write .*No space left"):
        update_config(config_path, lambda config: None)
    assert config_path.read_bytes() == before
    assert sorted(p.name for p in config_path.parent.iterdir()) == ["moxiehook.toml", "moxiehook.toml.lock"]


def test_write_into_a_path_below_a_file_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StorageError):
        write_atomic(tmp_path / "file" / "moxiehook.toml", "version = 1\n")


def test_update_of_a_missing_config_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no config file"):
        update_config(tmp_path / "moxiehook.toml", lambda config: None)
    assert list(tmp_path.iterdir()) == []  # not even a lock file


def test_update_rereads_the_file_inside_the_lock(config_path: Path) -> None:
    """A change made by someone else between two of our writes is kept."""
    update_config(config_path, add_endpoint(Auth()))
    text = config_path.read_text().replace('origin = "withmoxie.com"', 'origin = "edited.example"')
    config_path.write_text(text)
    update_config(config_path, lambda config: config.endpoints["crm"].mappings.append(EventMapping("ClientUpdate", "https://e.com")))
    config = load_config(config_path)
    assert config.settings.origin == "edited.example"
    assert [m.event for m in config.endpoints["crm"].mappings] == ["ClientCreate", "ClientUpdate"]


def test_render_refuses_an_invalid_config() -> None:
    config = Config(endpoints={"crm": Endpoint(name="crm", auth=Auth(type="bearer"))})
    with pytest.raises(Exception, match="auth.token"):
        render_config(config)


# --------------------------------------------------------------------------
# create (init)


def test_create_refuses_to_overwrite_without_force(config_path: Path) -> None:
    before = config_path.read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        create_config(config_path, "version = 1\n")
    assert config_path.read_bytes() == before
    create_config(config_path, "version = 1\n", force=True)
    assert config_path.read_text() == "version = 1\n"


def test_create_refuses_invalid_text(tmp_path: Path) -> None:
    path = tmp_path / "moxiehook.toml"
    with pytest.raises(ConfigError):
        create_config(path, "version = 2\n")
    assert not path.exists()


def test_lock_is_exclusive(config_path: Path) -> None:
    """While one holder has the lock, a non-blocking attempt fails."""
    import fcntl

    with store.exclusive_lock(config_path):
        fd = os.open(store.lock_path(config_path), os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


def test_the_sample_survives_a_save(config_path: Path) -> None:
    import moxiehook

    config_path.write_bytes((Path(moxiehook.__file__).parent / "sample-config.toml").read_bytes())
    original = load_config(config_path)
    update_config(config_path, lambda config: None)
    assert load_config(config_path) == original


def test_an_edit_removes_temp_files_a_killed_writer_left(config_path: Path) -> None:
    stale = config_path.parent / f".{config_path.name}.abc123.tmp"
    stale.write_text("half a config")
    unrelated = config_path.parent / ".other.toml.abc123.tmp"
    unrelated.write_text("not ours")

    update_config(config_path, lambda config: None)

    assert not stale.exists()
    assert unrelated.exists()
