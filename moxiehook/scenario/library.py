"""Where scenarios come from: the built-in ones (package data) and ``*.toml`` in ``./scenarios/``.

``find_scenario(NAME_OR_FILE)`` reads, in this order: a path to an existing file (or any
argument ending in ``.toml``, which must then exist); ``./scenarios/NAME.toml`` (so a team can
keep its own stories, and a copy of a built-in there is the one used); a built-in. Any other
name is exit 2 with the closest known one.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from moxiehook.scenario.model import Scenario, ScenarioError, load_scenario, parse_scenario, shorten
from moxiehook.suggest import did_you_mean

LOCAL_FOLDER = Path("scenarios")
BUILTIN = "built-in"


@dataclass(frozen=True)
class Listed:
    """One scenario ``scenario list`` shows: its name, where it is, and how it reads (or why it does not)."""

    name: str
    source: str  # "built-in" or the file's path
    description: str
    steps: int
    error: str | None = None  # a local file that does not parse is listed with its error


def builtin_names() -> list[str]:
    folder = resources.files("moxiehook.scenario") / "builtin"
    return sorted(item.name[: -len(".toml")] for item in folder.iterdir() if item.name.endswith(".toml"))


def builtin(name: str) -> Scenario:
    """The built-in scenario ``name``."""
    item = resources.files("moxiehook.scenario") / "builtin" / f"{name}.toml"
    if not item.is_file():
        raise ScenarioError(f"no built-in scenario {name!r}{did_you_mean(name, builtin_names(), quote=True)}")
    return parse_scenario(item.read_bytes(), f"{name} (built-in)", None, name)


def local_files(folder: Path = LOCAL_FOLDER) -> list[Path]:
    try:
        return sorted(p for p in folder.glob("*.toml") if p.is_file())
    except OSError:
        return []


def find_scenario(name_or_path: str | Path, folder: Path = LOCAL_FOLDER) -> Scenario:
    """The scenario a user named: a file, ``./scenarios/NAME.toml``, or a built-in."""
    text = str(name_or_path)
    path = Path(text)
    if isinstance(name_or_path, Path) or text.endswith(".toml") or _is_file(path) or "/" in text:
        try:
            return load_scenario(path)
        except ScenarioError:
            stem = path.stem if path.suffix == ".toml" and "/" not in text else ""
            if stem and not _exists(path) and (stem in builtin_names() or _is_file(folder / f"{stem}.toml")):
                where = "a built-in" if stem in builtin_names() else f"in {folder}/"
                raise ScenarioError(f"no scenario file at {shorten(text)} (did you mean {stem!r}, {where}?)") from None
            raise
    local = folder / f"{text}.toml"
    if _is_file(local):
        return load_scenario(local)
    if text in builtin_names():
        return builtin(text)
    known = [*builtin_names(), *(p.stem for p in local_files(folder))]
    raise ScenarioError(f"no scenario {shorten(text)!r}{did_you_mean(text, known, quote=True)}: not a file, not in "
                        f"{folder}/, not built in (see: moxiehook scenario list)")


def _exists(path: Path) -> bool:
    try:
        return path.exists() or path.is_symlink()
    except OSError:
        return False


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False where the name cannot be a file at all (too long for the system)."""
    try:
        return path.is_file()
    except OSError:
        return False


def list_scenarios(folder: Path = LOCAL_FOLDER) -> list[Listed]:
    """The built-in scenarios, then those in ``folder``; a local one shadows the built-in of its name."""
    listed: dict[str, Listed] = {}
    for name in builtin_names():
        scenario = builtin(name)
        listed[name] = Listed(name, BUILTIN, scenario.description, len(scenario.steps))
    for path in local_files(folder):
        try:
            scenario = load_scenario(path)
            listed[path.stem] = Listed(path.stem, str(path), scenario.description, len(scenario.steps))
        except ScenarioError as exc:
            listed[path.stem] = Listed(path.stem, str(path), "", 0, str(exc))
    return list(listed.values())
