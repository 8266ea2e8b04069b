"""Rendering helpers: JSON on stdout, Rich tables, warnings and errors on stderr.

Rich is imported lazily, inside the functions that draw with it, so that
commands printing a word or a JSON document start as fast as possible.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sys
from collections.abc import Iterable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import typer

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


# How the hints this invocation prints start: with the --config it was given, so a command
# copied from a hint reads the same config and log as the command that printed it.
_command_prefix = "moxiehook"


def set_config_option(config: os.PathLike[str] | str | None) -> None:
    """Remember ``--config`` as given (``None``: not given) for ``command``; the root callback calls it."""
    import shlex

    global _command_prefix
    _command_prefix = "moxiehook" if config is None else f"moxiehook --config {shlex.quote(str(config))}"


def command(rest: str) -> str:
    """``moxiehook REST`` as a hint prints it: ``moxiehook --config PATH REST`` when ``--config`` was given."""
    return f"{_command_prefix} {rest}"


# Whether an app was imported in-process (--app): its threads and atexit hooks may print after the run.
_app_loaded = False


def mark_app_loaded() -> None:
    """Note that an app was imported into this process (``--app``), for ``app_output_off_stdout``."""
    global _app_loaded
    _app_loaded = True


def app_output_off_stdout() -> None:
    """Once the command is done, send what an imported app still prints to stderr, not after the results.

    An app's background thread or atexit hook may print after the ``--json``
    document was closed; descriptor 1 and ``sys.stdout`` then point at stderr for
    the rest of the process. Does nothing when no app was imported.
    """
    if not _app_loaded:
        return
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stdout.flush()
        os.dup2(sys.stderr.fileno(), 1)
    sys.stdout = sys.stderr


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
    """The one line an error gets: ``error: …`` on stderr.

    Control characters are spelled out (``\\x1b``): an error quotes what the user typed or a file
    holds (a scenario's reference, a config key), and must neither act on the terminal nor fake a
    second line.
    """
    sys.stderr.write(_styled("error:", "1;31", _fold(escape_control(message), len("error: "))) + "\n")


def warn(message: str) -> None:
    """A ``warning: …`` line on stderr."""
    sys.stderr.write(_styled("warning:", "33", _fold(message, len("warning: "))) + "\n")


def info(message: str) -> None:
    """Progress or context for a person, on stderr so stdout stays for results."""
    sys.stderr.write(_fold(message) + "\n")


def _fold(message: str, taken: int = 0) -> str:
    """``message`` folded at spaces to the terminal's width when stderr is one (``taken``: columns a
    label already uses on its first line), each continuation indented two more than its line.

    A terminal would wrap a long message mid-word (a URL, a reason); a pipe or a file gets it as
    one line per line, for ``grep``.
    """
    if not sys.stderr.isatty():
        return message
    import shutil
    import textwrap

    width = shutil.get_terminal_size().columns
    folded: list[str] = []
    for number, line in enumerate(message.split("\n")):
        indent = line[:len(line) - len(line.lstrip(" "))]
        lead = taken if number == 0 else 0
        if len(line) + lead <= width:
            folded.append(line)
            continue
        wrapped = textwrap.wrap(line, width, initial_indent="x" * lead, subsequent_indent=indent + "  ",
                                break_long_words=False, break_on_hyphens=False)
        if wrapped and lead:
            wrapped[0] = wrapped[0][lead:]
        folded.extend(wrapped or [line])
    return "\n".join(folded)


class Styled(NamedTuple):
    """A table cell with a Rich style (used only when drawing for a terminal)."""

    text: str
    style: str

    def __str__(self) -> str:
        return self.text


class Column(NamedTuple):
    """A table column, and how it gives way on a narrow terminal.

    ``shrink``: ``"end"`` cuts the text with ``…`` at its end, ``"middle"`` in its
    middle (a URL keeps its scheme, host and port whole, and the end of its path),
    ``""`` never (ids, times: they must stay whole to be read or copied).
    ``min_width``: how narrow a shrinking column may get. ``drop``: when even the
    narrowest widths do not fit, columns are left out, the lowest ``drop`` first;
    None: never left out. ``extra``: shown only when no column has to be shortened
    for it. ``widest``: for rows printed one at a time (``RowStream``), the most cells
    a value of this column takes (a column that never shrinks must hold any value).
    """

    name: str
    shrink: str = "end"
    min_width: int = 8
    drop: int | None = None
    extra: bool = False
    widest: int | None = None


GAP = 2  # spaces between two columns
TableCell = Any  # a str (or anything str() shows) or a Styled


def print_table(columns: Sequence[str | Column], rows: Iterable[Sequence[TableCell]], wide: bool = False,
                header: bool = True) -> None:
    """A table on stdout, one line per row.

    On a terminal it fits the terminal's width: long cells are shortened
    (``…``), less important columns left out, never a wrapped line, so that
    every row stays one line and its id can be copied. ``wide``, or stdout not
    being a terminal (a pipe, a file), prints every column in full: plain
    aligned columns, easy to ``grep``, ``awk`` or ``cut``. Control characters
    (text that came from the network) are shown escaped, never sent raw.
    """
    specs = [column if isinstance(column, Column) else Column(column) for column in columns]
    table = [[_cell(cell) for cell in row] for row in rows]
    tty = sys.stdout.isatty()
    width = stdout_console().width if tty and not wide else None
    shown, widths = fit_columns(specs, table, width, header)
    lines = [_line([Styled(specs[i].name, "bold") for i in shown], widths, specs, shown)] if header else []
    lines += [_line([row[i] for i in shown], widths, specs, shown) for row in table]
    _write_lines(lines, tty, width)


class RowStream:
    """Rows printed one at a time as they come (``logs --follow``), lined up with each other.

    A table is fitted to its rows once they are all known; a followed log has no end to
    fit to. So the layout is fixed up front from each column's ``widest`` value and the
    terminal's width, and every row is padded or shortened to it, the same way as a table's.
    """

    def __init__(self, columns: Sequence[str | Column], wide: bool = False) -> None:
        self.specs = [column if isinstance(column, Column) else Column(column) for column in columns]
        self.tty = sys.stdout.isatty()
        width = stdout_console().width if self.tty and not wide else None
        typical = [[Styled("x" * (spec.widest or spec.min_width), "") for spec in self.specs]]
        self.shown, self.widths = fit_columns(self.specs, typical, width, header=False)
        self.width = width
        self.wide = wide

    def print(self, row: Sequence[TableCell]) -> None:
        cells = [_cell(cell) for cell in row]
        if self.width is not None:
            line = _line([cells[i] for i in self.shown], self.widths, self.specs, self.shown)
        else:  # in full: a value longer than its column pushes the rest along, never cut
            widths = {i: max(self.widths[i], cell_width(cells[i].text)) for i in self.shown}
            line = _line([cells[i] for i in self.shown], widths, self.specs, self.shown)
        _write_lines([line], self.tty, self.width)


def _write_lines(lines: list[list[tuple[str, str]]], tty: bool, width: int | None) -> None:
    """Table lines on stdout: plain text through a pipe, styled (and never wrapped) on a terminal."""
    if not tty:
        for line in lines:
            sys.stdout.write("".join(text for text, _ in line).rstrip() + "\n")
        return
    from rich.text import Text

    console = stdout_console()
    for line in lines:
        text = Text()
        for piece, style in line:
            text.append(piece, style=style)
        text.rstrip()
        if width is None:  # --wide: each line written whole (the terminal may wrap it)
            console.print(text, soft_wrap=True)
        else:  # fitted to `width`: cut there should a cell be miscounted, never at a width read later
            text.truncate(width, overflow="crop")  # (the terminal resized since: Rich would cut the id off)
            console.print(text, soft_wrap=True)


def _cell(value: TableCell) -> Styled:
    if isinstance(value, Styled):
        return Styled(visible(value.text), value.style)
    return Styled(visible("" if value is None else str(value)), "")


WideOption = Annotated[
    bool, typer.Option("--wide", "-w", help="Every column in full (no shortened values, whole ids and dates).")
]


def visible(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b``), so no terminal ever acts on them."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _line(cells: list[Styled], widths: dict[int, int], specs: list[Column],
          shown: list[int]) -> list[tuple[str, str]]:
    pieces: list[tuple[str, str]] = []
    for position, (index, cell) in enumerate(zip(shown, cells, strict=True)):
        text = shorten(cell.text, widths[index], specs[index].shrink)
        last = position == len(shown) - 1
        pad = "" if last else " " * (widths[index] - cell_width(text) + GAP)
        pieces.append((text, cell.style))
        pieces.append((pad, ""))
    return pieces


def fit_columns(specs: list[Column], table: list[list[Styled]], width: int | None,
                header: bool = True) -> tuple[list[int], dict[int, int]]:
    """Which columns to show and how wide, for a line of at most ``width`` cells (None: no limit)."""
    natural = {i: max([cell_width(spec.name) if header else 0] + [cell_width(row[i].text) for row in table])
               for i, spec in enumerate(specs)}
    shown = list(range(len(specs)))
    if width is None:
        return shown, natural

    def narrowest(i: int) -> int:
        spec = specs[i]
        least = max(spec.min_width, cell_width(spec.name) if header else 0)
        return natural[i] if not spec.shrink else min(natural[i], least)

    def total(widths: Iterable[int]) -> int:
        return sum(widths) + GAP * (len(shown) - 1)

    if total(natural[i] for i in shown) > width:
        shown = [i for i in shown if not specs[i].extra]
    while total(narrowest(i) for i in shown) > width:
        droppable = [i for i in shown if specs[i].drop is not None]
        if not droppable:
            break
        shown.remove(min(droppable, key=lambda i: specs[i].drop or 0))
    widths = {i: narrowest(i) for i in shown}
    # Still too wide with every column that may go gone: the shortened columns give up cells
    # below their minimum, one at a time, rather than the line being cropped at its end,
    # where it would cut the id (two cut ids may look the same and name neither).
    while total(widths.values()) > width:
        giving = [i for i in shown if specs[i].shrink and widths[i] > 1]
        if not giving:
            break
        widest = max(giving, key=lambda i: widths[i])
        widths[widest] -= 1
    left = width - total(widths.values())
    # What is left goes to the shortened columns, each up to its natural width: first to the
    # columns never left out (an event name whole beats a longer error), then in equal
    # shares to the others.
    for rank in (True, False):
        while left > 0:
            hungry = [i for i in shown if (specs[i].drop is None) == rank and widths[i] < natural[i]]
            if not hungry:
                break
            share = max(1, left // len(hungry))
            for i in hungry:
                grow = min(share, natural[i] - widths[i], left)
                widths[i] += grow
                left -= grow
    return shown, widths


def cell_width(text: str) -> int:
    """Terminal cells ``text`` takes (a CJK character takes two)."""
    if text.isascii():
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


def shorten(text: str, width: int, how: str = "end") -> str:
    """``text`` cut to ``width`` cells with ``…``: at its end, or in its middle (``how="middle"``)."""
    if cell_width(text) <= width or not how:
        return text
    if width <= 1:
        return "…"[:width]
    if how == "middle":
        origin = _URL_ORIGIN.match(text)
        if origin and cell_width(origin.group()) + 2 <= width:
            # A URL: scheme, host and port stay whole (they say where it goes), then the path's end.
            head = origin.group()
            return f"{head}…{_take(text[len(head):][::-1], width - cell_width(head) - 1)[::-1]}"
        head = _take(text, (width - 1) // 2 + (width - 1) % 2)
        tail = _take(text[::-1], (width - 1) // 2)[::-1]
        return f"{head}…{tail}"
    return _take(text, width - 1) + "…"


_URL_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s]+")


def _take(text: str, width: int) -> str:
    """The longest start of ``text`` that fits in ``width`` cells."""
    taken, used = [], 0
    for ch in text:
        size = cell_width(ch)
        if used + size > width:
            break
        taken.append(ch)
        used += size
    return "".join(taken)


def state_text(enabled: bool) -> Styled:
    """``enabled`` in green or ``disabled`` in red, for tables."""
    return Styled("enabled", "green") if enabled else Styled("disabled", "red")
