"""Rendering helpers: JSON on stdout, Rich tables, warnings and errors on stderr.

Rich is imported lazily, inside the functions that draw with it, so that
commands printing a word or a JSON document start as fast as possible.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from collections.abc import Iterable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from rich.console import Console

# Wide enough that a piped table does not wrap URLs; a terminal uses its own width.
PIPE_WIDTH = 240


class OutputError(Exception):
    """Writing to stdout failed (a full disk, a closed pipe, a closed stdout); carries the OSError."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror or str(error))
        self.error = error


class GuardedOutput:
    """stdout, with every write error turned into an ``OutputError``.

    An ``OSError`` from a write could otherwise not be told apart from any
    other; tagged, the one handler in ``moxiehook.cli`` can say "cannot write
    the output" and exit quietly on a closed pipe. Everything else is passed
    through to the real stream (Rich and click write through it too).
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except OSError as exc:
            raise OutputError(exc) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise OutputError(exc) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class ClosedOutput(GuardedOutput):
    """What stdout is when the process started with it closed (``moxiehook … >&-``): Python
    gives None, which would be an AttributeError at the first write. Writing fails here as an
    ``OutputError``; a command that writes nothing to stdout is unaffected."""

    def __init__(self) -> None:
        super().__init__(None)

    def write(self, text: str) -> int:
        raise OutputError(OSError(errno.EBADF, "stdout is closed"))

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OutputError(OSError(errno.EBADF, "stdout is closed"))


@cache
def stdout_console() -> Console:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else PIPE_WIDTH, highlight=False)


@cache
def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, width=None if sys.stderr.isatty() else PIPE_WIDTH, highlight=False)


# C0 and C1 control characters, DEL, and the Unicode controls that reorder or break lines
# (bidi overrides and isolates, line/paragraph separators): a terminal acts on them.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_control(text: str, keep_newlines: bool = False) -> str:
    """``text`` with every control character shown as ``\\x1b``-style text, never acted on.

    Text that came from the network (a sender's headers, path and body) or from
    a user (an ``endpoint disable --reason``) could otherwise move the cursor,
    recolour or clear the terminal, or fake a line of output. ``keep_newlines``
    keeps ``\\n`` (a pretty-printed body spans lines); everything else is escaped.
    """
    pattern = _CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL
    return pattern.sub(_escaped, text) if pattern.search(text) else text


def echo(text: str = "") -> None:
    """A plain line on stdout."""
    sys.stdout.write(text + "\n")


def print_json(data: Any) -> None:
    """One JSON document on stdout (the whole of stdout with ``--json``)."""
    import json  # imported on use: table and plain-text commands start faster without it

    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def _styled(label: str, style: str, message: str) -> str:
    """The label in colour on a terminal, unless NO_COLOR is set (https://no-color.org), as Rich does."""
    if sys.stderr.isatty() and not os.environ.get("NO_COLOR"):
        return f"\x1b[{style}m{label}\x1b[0m {message}"
    return f"{label} {message}"


def print_error(message: str) -> None:
    """The one line an error gets: ``error: …`` on stderr."""
    sys.stderr.write(_styled("error:", "1;31", message) + "\n")


def warn(message: str) -> None:
    """A ``warning: …`` line on stderr."""
    sys.stderr.write(_styled("warning:", "33", message) + "\n")


def info(message: str) -> None:
    """Progress or context for a person, on stderr so stdout stays for results."""
    sys.stderr.write(message + "\n")


class Styled(NamedTuple):
    """A table cell with a Rich style (used only when drawing for a terminal)."""

    text: str
    style: str

    def __str__(self) -> str:
        return self.text


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], squeeze: Sequence[str] = ()) -> None:
    """A table on stdout: drawn with Rich on a terminal, plain aligned columns when piped.

    Piped output stays greppable and cut-able (like ``docker ps``), and the
    command does not pay for importing Rich when no person is looking. On a
    terminal, the ``squeeze`` columns (long free text) are cut with an ellipsis
    instead of wrapping, so each record keeps one line.
    """
    cells = [["" if cell is None else cell for cell in row] for row in rows]
    if sys.stdout.isatty():
        _print_rich_table(columns, cells, squeeze)
        return
    table = [list(columns), *[[str(cell) for cell in row] for row in cells]]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    for row in table:
        line = "  ".join(text.ljust(width) for text, width in zip(row, widths))
        sys.stdout.write(line.rstrip() + "\n")


def _print_rich_table(columns: Sequence[str], rows: list[list[Any]], squeeze: Sequence[str] = ()) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(show_edge=False, header_style="bold", pad_edge=False)
    for column in columns:
        # A squeezed column may narrow (Rich narrows wrappable columns first); its cells are one line.
        table.add_column(column, overflow="fold", no_wrap=bool(squeeze) and column not in squeeze)
    cut = [column in squeeze for column in columns]
    for row in rows:
        table.add_row(*(
            Text(str(cell), no_wrap=True, overflow="ellipsis") if one_line
            else Text(cell.text, style=cell.style) if isinstance(cell, Styled) else Text(str(cell))
            for cell, one_line in zip(row, cut)
        ))
    stdout_console().print(table)


def state_text(enabled: bool) -> Styled:
    """``enabled`` in green or ``disabled`` in red, for tables."""
    return Styled("enabled", "green") if enabled else Styled("disabled", "red")
