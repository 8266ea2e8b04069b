"""Layering rules, checked on the source so modules added later are covered too.

- The core (everything in moxiehook/ outside cli/) imports neither typer nor rich.
- httpx is imported only by the modules that send (delivery.py, dispatch.py, transport.py).
- A config-only command does not import httpx at all, so it starts fast.
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
SENDING_MODULES = {"send/delivery.py", "send/dispatch.py", "send/transport.py"}


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


CHECK_IMPORTS = """
import json, sys
from moxiehook.cli import main
sys.argv = ["moxiehook", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in ("httpx", "rich", "anyio", "httpcore"))), file=sys.stderr)
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
