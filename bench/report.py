"""What the run prints: the machine it ran on and the final table of figures."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

from bench.benchmarks import Figure

COLUMNS = ("name", "moxiehook", "comparison", "ratio", "target", "result")


def machine() -> list[str]:
    """CPU, cores, load, Python and httpx versions: what a reader needs to weigh the figures."""
    return [
        f"cpu: {_cpu_model()}, {os.cpu_count()} cores",
        f"python: {platform.python_version()} ({platform.python_implementation()}), "
        f"httpx {_version('httpx')}, typer {_version('typer')}",
        f"load average: {load_average()}",
    ]


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min)"


def cpu_ticks() -> list[int]:
    """The machine's CPU time so far, per state (/proc/stat); empty where there is none."""
    try:
        with open("/proc/stat") as stat:
            return [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return []


def busy_and_stolen(before: list[int], after: list[int]) -> str:
    """How busy the machine was between two ``cpu_ticks()``, and how much the hypervisor took.

    On a virtual machine, "steal" is time a core was ready to run but the host gave the
    CPU to someone else: the main source of noise that the load average does not show.
    """
    if len(before) < 8 or len(after) < 8:
        return "unknown"
    delta = [b - a for a, b in zip(before, after, strict=False)]
    total = sum(delta[:8]) or 1  # user nice system idle iowait irq softirq steal
    idle = delta[3] + delta[4]
    return f"{(total - idle) / total:.0%} busy, {delta[7] / total:.0%} stolen by the hypervisor"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def ratio_text(ratio: float | None) -> str:
    """Three significant digits: 0.797× must not print as a 0.80× that seems to meet 0.8×."""
    return "—" if ratio is None else f"{ratio:.3g}×"


def figure_line(figure: Figure) -> str:
    """One figure as printed while the run goes on."""
    ratio = ratio_text(figure.ratio)
    notes = "".join(f"\n    {note}" for note in figure.notes)
    return (f"  {figure.name}: moxiehook {figure.moxiehook} vs {figure.comparison} → "
            f"{ratio} (target {figure.target or '—'}) {figure.verdict}{notes}")


def notes(outcomes: dict[str, Figure | str]) -> list[str]:
    """The notes of every figure (repeats, CPU times, sizes), one line each, under the table."""
    return [f"{name}: {note}" for name, outcome in outcomes.items() if isinstance(outcome, Figure)
            for note in outcome.notes]


def table(outcomes: dict[str, Figure | str]) -> str:
    """The final table in plain aligned columns; a benchmark that failed shows why."""
    rows = [COLUMNS]
    for name, outcome in outcomes.items():
        if isinstance(outcome, str):
            rows.append((name, outcome, "", "", "", "ERROR"))
            continue
        ratio = ratio_text(outcome.ratio)
        target = "—" if outcome.target is None else str(outcome.target)
        rows.append((name, outcome.moxiehook, outcome.comparison, ratio, target, outcome.verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
