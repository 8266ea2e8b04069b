"""File-system helpers shared by the config store, the delivery log and ``listen``'s ready file.

``atomic_write`` is the one way moxiehook replaces a file: whoever reads it (another command, a
script polling for it, a crash) sees the old content or the new one, never half of either.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

NEW_FILE_MODE = 0o644


class Discard(Exception):  # noqa: N818 - a signal, not an error
    """Raise it inside ``atomic_write``'s block to leave the file as it was (not an error)."""


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (not every filesystem allows syncing a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def temp_name_pattern(path: Path) -> str:
    """The glob of the temp files ``atomic_write`` makes beside ``path``."""
    return f".{path.name}.*.tmp"


def remove_stale_temp_files(path: Path) -> None:
    """Delete temp files that a killed writer left beside ``path``.

    Call it holding the lock that writers of ``path`` take: no live writer owns one then.
    """
    for stale in path.parent.glob(temp_name_pattern(path)):
        with contextlib.suppress(OSError):
            stale.unlink()


@contextlib.contextmanager
def atomic_write(path: Path, mode: int | None = None) -> Iterator[IO[bytes]]:
    """Replace ``path`` with what the block writes to the binary file it is given.

    The bytes go to a temp file in the same folder (so the rename cannot cross filesystems),
    which is flushed, given its mode, synced, and renamed over ``path``; then the folder is
    synced, so the rename survives a crash. ``mode``: the permission bits (0600 for a file
    holding secrets); None keeps the existing file's, or 0644 for a new file. A symlink is
    written through to its target (renaming onto the link would replace the link with a file).

    If the block raises, the temp file is removed and ``path`` is left as it was; ``Discard``
    does that without an error. ``OSError`` reaches the caller, who names the file in its words.
    """
    target = Path(os.path.realpath(path))
    if mode is None:
        try:
            mode = target.stat().st_mode & 0o777
        except OSError:
            mode = NEW_FILE_MODE
    import tempfile  # with shutil behind it: 2.5 ms that every command reading the config would pay

    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as temp:
            try:
                yield temp
            except Discard:
                return
            temp.flush()
            os.fchmod(temp.fileno(), mode)
            os.fsync(temp.fileno())
        os.replace(temp_name, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
    fsync_folder(target.parent)
