"""What the root callback hands every command: the global options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from moxiehook.config import Config, load_config, resolve_config_path


@dataclass
class CliState:
    """Global options, parsed once by the root callback."""

    config_option: Path | None = None

    @property
    def config_path(self) -> Path:
        return resolve_config_path(self.config_option)

    def load(self) -> Config:
        return load_config(self.config_path)


def state(ctx: typer.Context) -> CliState:
    """The ``CliState`` of this invocation (a bare one when run without the root)."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj
