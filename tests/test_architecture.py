"""Layering rules, checked on the source so modules added later are covered too.

- The floor plan (docs/architecture.md): packages grouped by capability, imports pointing one way,
  cli → inspect/testing/receive/scenario → send → config/log/catalog/http → errors/ids, with no cycle
  between packages; another package is used through its ``__init__``, never its inner modules.
- The core (everything in moxiehook/ outside cli/) imports neither typer nor rich.
- httpx is imported only by the modules that send (send/delivery.py, dispatch.py) and those that
  deliver into an app in-process (testing/inprocess.py, testing/fixture.py, testing/scenarios.py:
  ``moxie.scenario``, for its responses' type); the wire (http/) uses h11 alone, and no module
  outside http/ imports h11 or httptools.
- Locust and gevent are imported by moxiehook/locust/user.py only (a locustfile's import).
- A config-only command does not import httpx at all, so it starts fast; nor does loading the
  pytest plugin, which pytest does in every test session wherever moxiehook is installed.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import moxiehook

PACKAGE = Path(moxiehook.__file__).parent
SENDING_MODULES = {"send/delivery.py", "send/dispatch.py",
                   "testing/inprocess.py", "testing/fixture.py", "testing/scenarios.py"}


def imported_roots(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports, at any depth in the file."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            roots.add(node.args[0].value.split(".")[0])  # type: ignore[attr-defined]
    return roots


def _is_dynamic_import(node: ast.Call) -> bool:
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    return (
        name in ("import_module", "__import__")
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def package_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


CORE = [p for p in package_modules() if "cli" not in p.relative_to(PACKAGE).parts]


# The floor plan: a package may import from packages of a lower or equal rank, never a higher one.
RANK = {"errors": 0, "ids": 0, "suggest": 0, "lazy": 0, "files": 0, "config": 1, "log": 1, "catalog": 1, "http": 1,
        "send": 2, "receive": 3, "scenario": 3, "testing": 3, "inspect": 3, "cli": 4, "locust": 4}
LOOSE_MODULES_AT_MOST = 5


def package_of(path: Path) -> str:
    """``config`` for moxiehook/config/store.py, ``errors`` for moxiehook/errors.py."""
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def moxiehook_imports(path: Path) -> list[tuple[str, str]]:
    """(imported package, full module name) for every ``moxiehook.…`` import in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "moxiehook" and len(parts) > 1:
                found.append((parts[1], name))
    return found


LAYERED = [p for p in package_modules() if package_of(p) not in ("__init__", "__main__")]


def test_every_module_lives_in_a_known_room() -> None:
    assert {package_of(p) for p in LAYERED} <= set(RANK)
    loose = [p.name for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")]
    assert len(loose) <= LOOSE_MODULES_AT_MOST, loose


@pytest.mark.parametrize("path", LAYERED, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_the_floor_plan(path: Path) -> None:
    own = package_of(path)
    for target, module in moxiehook_imports(path):
        if target == own or target in ("__init__", "__version__"):
            continue
        assert target in RANK, f"{module}: not a package of the floor plan"
        assert RANK[target] <= RANK[own], f"{own} (rank {RANK[own]}) imports {module} (rank {RANK[target]})"
        assert module.count(".") == 1, f"{module}: import it from moxiehook.{target}, not its inner module"


def test_no_cycle_between_packages() -> None:
    graph: dict[str, set[str]] = {}
    for path in LAYERED:
        own = package_of(path)
        graph.setdefault(own, set()).update(t for t, _ in moxiehook_imports(path) if t != own and t in RANK)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))

    assert [p for p in graph if reaches(p, p, set())] == []


def test_the_floor_plan_check_can_fail(tmp_path: Path) -> None:
    """The checks above see a wrong-way import and an inner-module import."""
    bad = tmp_path / "bad.py"
    bad.write_text("from moxiehook.cli.render import echo\nimport moxiehook.send.dispatch\n")
    assert moxiehook_imports(bad) == [("cli", "moxiehook.cli.render"), ("send", "moxiehook.send.dispatch")]


def test_the_scan_sees_the_modules() -> None:
    names = {str(p.relative_to(PACKAGE)) for p in CORE}
    assert {"config/model.py", "config/store.py", "config/edits.py"} <= names
    assert "typer" in imported_roots(PACKAGE / "cli" / "__init__.py")  # the parser does find imports


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_imports_neither_typer_nor_rich(path: Path) -> None:
    assert not imported_roots(path) & {"typer", "rich", "click"}


@pytest.mark.parametrize("path", package_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_sending_modules_import_httpx(path: Path) -> None:
    if str(path.relative_to(PACKAGE)) in SENDING_MODULES:
        return
    assert "httpx" not in imported_roots(path)


@pytest.mark.parametrize("path", package_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_locust_user_imports_locust(path: Path) -> None:
    """Locust and gevent (which monkey-patches the interpreter) are loaded by locustfiles only."""
    if str(path.relative_to(PACKAGE)) == "locust/user.py":
        assert {"locust"} <= imported_roots(path)
        return
    assert not imported_roots(path) & {"locust", "gevent", "geventhttpclient"}


@pytest.mark.parametrize("path", package_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_wire_imports_the_http_parser(path: Path) -> None:
    """One place reads HTTP/1.1 messages: http/, through h11 (httpx's own use of it aside)."""
    if package_of(path) == "http":
        return
    assert not imported_roots(path) & {"h11", "httptools"}


def test_the_wire_reads_http_with_h11() -> None:
    assert "h11" in imported_roots(PACKAGE / "http" / "client.py")
    assert "h11" in imported_roots(PACKAGE / "http" / "chunked.py")


CHECK_IMPORTS = """
import json, sys
from moxiehook.cli import main
sys.argv = ["moxiehook", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
HEAVY = ("httpx", "rich", "anyio", "httpcore")
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in HEAVY)), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [("endpoint", "list"), ("endpoint", "status", "crm"), ("map", "list", "--json"), ("config", "path")],
    ids=" ".join,
)
def test_config_only_commands_do_not_import_httpx(config_path: Path, args: tuple[str, ...]) -> None:
    config_path.write_text(
        config_path.read_text() + '\n[endpoints.crm]\n[[endpoints.crm.mappings]]\n'
        'event = "ClientCreate"\nurl = "https://e.com"\n'
    )
    result = subprocess.run(
        [sys.executable, "-c", CHECK_IMPORTS, "--config", str(config_path), *args],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()  # the command did its job
    loaded = json.loads(result.stderr.strip().splitlines()[-1])
    assert [name for name in loaded if name.split(".")[0] in ("httpx", "httpcore", "anyio")] == []
    # piped output needs no Rich either
    assert [name for name in loaded if name.startswith("rich")] == []


LOAD_PLUGIN = """
import json, sys
import moxiehook.testing.plugin
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in
                        ("httpx", "httpcore", "anyio", "rich", "typer", "click", "moxiehook"))))
"""


def test_loading_the_pytest_plugin_imports_nothing_heavy() -> None:
    """pytest imports the plugin in every session of every project: it must cost nothing until used."""
    result = subprocess.run([sys.executable, "-c", LOAD_PLUGIN], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["moxiehook", "moxiehook.lazy", "moxiehook.testing", "moxiehook.testing.plugin"]


@pytest.mark.parametrize("path", package_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_inspector_imports_jsonschema_and_nothing_imports_playwright(path: Path) -> None:
    """The inspector's schema verdict loads jsonschema on its first check; the CLI never pays for it."""
    roots = imported_roots(path)
    assert "playwright" not in roots
    if str(path.relative_to(PACKAGE)) != "inspect/analysis.py":
        assert "jsonschema" not in roots
