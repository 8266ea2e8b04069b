"""The config file on disk: where it is, reading it, and safe updates.

Every write is a read-modify-write made under an exclusive ``flock`` on a
sibling lock file (``moxiehook.toml.lock``). The file is re-read inside the
lock, so two commands editing at once never lose each other's change, and
written atomically (temp file in the same folder, fsync, rename), so a crash
leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from moxiehook.config.model import Config, config_to_dict, parse_config
from moxiehook.errors import ConfigError, StorageError, ValidationError
from moxiehook.files import atomic_write, remove_stale_temp_files

ENV_VAR = "MOXIEHOOK_CONFIG"
DEFAULT_NAME = "moxiehook.toml"
SECRET_MODE = 0o600

T = TypeVar("T")


def resolve_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--config`` > ``$MOXIEHOOK_CONFIG`` > ``./moxiehook.toml``, made absolute."""
    chosen = explicit or os.environ.get(ENV_VAR) or DEFAULT_NAME
    return Path(chosen).expanduser().absolute()


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``'s sibling lock file.

    The lock file is never deleted: removing it would let a waiting process
    lock a file that a newcomer no longer sees.
    """
    try:
        fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StorageError(f"cannot lock {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def parse_config_text(text: str, source: Path | str) -> Config:
    """Parse TOML text into a validated ``Config``; errors name ``source``."""
    try:
        data = tomllib.loads(text)
    except ValueError as exc:
        # A TOMLDecodeError (a ValueError; its message already says "(at line L,
        # column C)"), or an integer literal longer than int() accepts (4300 digits).
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively: a few
        # hundred levels exhaust the stack. No real config nests that deep.
        raise ConfigError(f"{source}: invalid TOML: arrays or tables nested too deeply") from None
    try:
        return parse_config(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def real_config_path(path: Path, writing: bool = False) -> Path:
    """The file a config read or write really touches: through symlinks, to their target.

    A write replaces the file by a rename; renaming onto a symlink would replace
    the link with a regular file, and the real file would silently stop getting
    edits. So writes go to the target, and the lock is taken beside the target
    (two links to one file share it). Anything at the target that is not a
    regular file (a FIFO, a device such as ``/dev/null``, a folder, a socket) is
    refused, never read (a FIFO would block) and never replaced.
    """
    error, verb = (StorageError, "write") if writing else (ConfigError, "read")
    real = Path(os.path.realpath(path))
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        return real
    except OSError as exc:
        raise error(f"cannot {verb} {path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise error(
            f"cannot {verb} {path}: it is {_file_kind(mode)}, not a regular file "
            "(moxiehook keeps its config only in a regular file; pass another --config)"
        )
    return real


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


def read_text(path: Path) -> str:
    real = real_config_path(path)
    try:
        # utf-8-sig: a byte order mark (Windows Notepad saves one) is not TOML; it is dropped.
        return real.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            f"no config file at {path} (create one with: moxiehook init, or pass --config)"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def load_config(path: Path) -> Config:
    """Read and validate the config at ``path``."""
    return parse_config_text(read_text(path), path)


def render_config(config: Config) -> str:
    """The TOML text of ``config``, validated by a round trip first."""
    import tomli_w  # only commands that write need it: keep it out of read-only start-up

    data = config_to_dict(config)
    parse_config(data)  # an edit the loader would reject raises here, before any write
    return tomli_w.dumps(data)


def update_config(path: Path, change: Callable[[Config], T],
                  commit: Callable[[Callable[[], None]], None] | None = None) -> T:
    """Apply ``change`` to the current config and save it, under the lock.

    ``change`` mutates the ``Config`` it is given and may return a value,
    which is returned. If it raises, or the result does not validate, the
    file is left exactly as it was. ``commit``, when given, is handed the
    write (still under the lock, after validation) and must call it: it can
    do something first that the write depends on, and undo it if the write
    fails (``endpoint enable``/``disable`` log their record that way).
    """
    # Fail on a missing or unreadable config before taking the lock, so a
    # command run in the wrong folder leaves no stray lock file behind.
    read_text(path)
    real = real_config_path(path)
    with exclusive_lock(real):
        config = parse_config_text(read_text(real), path)
        result = change(config)
        text = render_config(config)
        remove_stale_temp_files(real)
        secret = config.has_literal_secret()

        def write() -> None:
            write_atomic(real, text, secret=secret)

        if commit is None:
            write()
        else:
            commit(write)
    return result


def create_config(path: Path, text: str, force: bool = False) -> None:
    """Write a new config file (``init``); refuses to overwrite unless ``force``."""
    config = parse_config_text(text, path)
    real = real_config_path(path, writing=True)
    with exclusive_lock(real):
        if real.exists() and not force:
            raise ConfigError(f"{path} already exists (use --force to overwrite it)")
        write_atomic(real, text, secret=config.has_literal_secret())


def write_atomic(path: Path, text: str, secret: bool = False) -> None:
    """Replace ``path`` with ``text`` through ``files.atomic_write`` (temp file, fsync, rename).

    The mode is 0600 when the text holds a literal secret; otherwise the
    existing file's mode is kept (0644 for a new file). A symlink is written
    through to its target; what is not a regular file is refused.
    """
    path = real_config_path(path, writing=True)
    try:
        with atomic_write(path, mode=SECRET_MODE if secret else None) as out:
            out.write(text.encode("utf-8"))
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror}") from None
