"""Lazy package exports (PEP 562), shared by the packages whose modules are costly to import.

``send`` (the HTTP client), ``testing`` (httpx, loaded into every pytest session
by the plugin) and ``catalog`` (the payload generator) name their exports in
``__init__.py`` but import the defining module only when a name is first used,
so a command or test session that never uses them does not pay for them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, exports: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``exports`` maps a name to its inner module.

    The value found is stored in ``namespace`` (the package's globals), so each
    name is looked up once.
    """

    def __getattr__(name: str) -> Any:
        try:
            module = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    return __getattr__
