"""Each package names what the rest of the code may use from it in one static ``__all__``.

A literal list (read here from the source, not computed) that tools and readers can see; every
name in it resolves, including the ones a package loads lazily (PEP 562: ``send``, ``testing``,
``catalog``, ``config``, ``http`` and ``locust`` load some modules on first use, where a
measurement showed a command would otherwise pay for them — see docs/performance.md), and every
lazily loaded name is in it.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "moxiehook"
PACKAGES = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))


def static_all(name: str) -> tuple[list[str], set[str]]:
    """The literal ``__all__`` of ``moxiehook.NAME`` and the keys of its lazy table (if any)."""
    tree = ast.parse((PACKAGE / name / "__init__.py").read_text(encoding="utf-8"))
    exported: list[str] | None = None
    lazy: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target = node.targets[0].id
            if target == "__all__":
                assert isinstance(node.value, ast.List), f"moxiehook.{name}.__all__ is not a literal list"
                exported = [ast.literal_eval(element) for element in node.value.elts]
            elif target in ("_EXPORTS", "_LAZY"):
                lazy = set(ast.literal_eval(node.value))
    assert exported is not None, f"moxiehook.{name} has no __all__"
    return exported, lazy


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_static_complete_and_resolves(name: str) -> None:
    exported, lazy = static_all(name)
    assert len(exported) == len(set(exported)), "a name listed twice"
    assert lazy <= set(exported), f"lazily loaded but not exported: {sorted(lazy - set(exported))}"
    if name == "locust":
        return  # resolving MoxieUser imports Locust itself (checked by tests/test_locust.py)
    module = importlib.import_module(f"moxiehook.{name}")
    missing = [export for export in exported if not hasattr(module, export)]
    assert missing == [], f"moxiehook.{name}.__all__ names what it does not have"
