"""``logs prune``: drop old records, atomically, under the writers' lock."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from moxiehook.errors import StorageError, UsageError
from moxiehook.files import Discard, atomic_write, remove_stale_temp_files
from moxiehook.log.reading import entries_backward, lines_forward, parse_entry
from moxiehook.log.records import exclusive, lock_path, open_log
from moxiehook.log.times import record_time


@dataclass(frozen=True)
class PruneResult:
    """What ``prune`` did: records dropped and kept, other lines kept, the log's size before and after."""

    dropped: int
    kept: int
    other_lines: int
    bytes_before: int
    bytes_after: int


def prune(path: Path, keep: int | None = None, before: datetime | None = None, empty_ok: bool = False) -> PruneResult:
    """Drop old records: all but the newest ``keep``, and/or those logged before ``before``.

    ``keep=0`` empties the log, which ``logs --tail 0`` (meaning "all") makes easy to type by
    mistake: it is refused unless ``empty_ok`` (``--yes``).

    Made under the log's lock, the one every writer takes for each append, so
    no record is appended meanwhile (writers wait, then append to the new file:
    see ``LogWriter``). The kept lines are copied whole, as they are, into a
    temp file beside the log, which is synced and renamed over it: a reader or
    a crash sees the old log or the new one, never a mix. A symlinked log is
    pruned where it points; the link stays. Lines that are not
    records (a torn write, a hand edit) are kept, for a person to look at;
    blank lines are dropped. Nothing is rewritten when nothing is dropped.
    """
    if keep is None and before is None:
        raise UsageError("say what to drop: --keep N (the newest N records stay), --before WHEN, or both")
    if keep is not None and keep < 0:
        raise UsageError(f"--keep must be 0 or more, got {keep}")
    if keep == 0 and not empty_ok:
        raise UsageError(f"--keep 0 drops every record of {path}: add --yes to empty the log")
    handle = open_log(path)  # a FIFO or a folder is refused here, before any lock or temp file
    if handle is None:
        return PruneResult(0, 0, 0, 0, 0)
    handle.close()
    with exclusive(lock_path(path)):
        handle = open_log(path)
        if handle is None:
            return PruneResult(0, 0, 0, 0, 0)
        with handle:
            return _prune_locked(path, handle, keep, before)


def _prune_locked(path: Path, handle: IO[bytes], keep: int | None, before: datetime | None) -> PruneResult:
    status = os.fstat(handle.fileno())
    size = status.st_size
    keep_from = 0  # records before this offset are beyond the newest `keep`
    if keep is not None:
        keep_from = size
        for count, entry in enumerate(entries_backward(path, lambda line: True), start=1):
            if count > keep:
                break
            keep_from = entry.offset
        else:
            keep_from = 0 if keep else size
    target = Path(os.path.realpath(path))
    remove_stale_temp_files(target)  # left by a prune that was killed
    dropped = kept = other = 0
    written = size
    try:
        with atomic_write(target, mode=status.st_mode & 0o777) as out:
            for offset, line in lines_forward(handle, 0, end=size):
                if not line.strip():
                    continue
                parsed = parse_entry(line, offset)
                if parsed is None:
                    other += 1
                elif offset < keep_from or (before is not None and _logged_before(parsed.data, before)):
                    dropped += 1
                    continue
                else:
                    kept += 1
                out.write(line)
            if not dropped:
                raise Discard
            written = out.tell()
    except OSError as exc:
        raise StorageError(f"cannot prune the delivery log {path}: {exc.strerror}") from None
    return PruneResult(dropped, kept, other, size, written)


def _logged_before(data: dict[str, Any], moment: datetime) -> bool:
    at = record_time(data)
    return at is not None and at < moment
