"""What the root callback hands every command: the global options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from moxiehook.config import Config, Settings, load_config, resolve_config_path


@dataclass
class CliState:
    """Global options, parsed once by the root callback."""

    config_option: Path | None = None

    @property
    def config_path(self) -> Path:
        return resolve_config_path(self.config_option)

    def load(self) -> Config:
        return load_config(self.config_path)

    @property
    def has_config(self) -> bool:
        """Whether a config file is there (a dangling symlink counts: loading it names the problem)."""
        path = self.config_path
        return path.exists() or path.is_symlink()

    def load_or_defaults(self) -> Config:
        """The config, or the defaults when there is no config file at all.

        For the commands that work without one: ``listen`` (and its relay) and the
        readers of the log it writes (``logs``, ``logs show``, ``logs prune``,
        ``replay``). Without a config file the log is ``moxiehook-log.jsonl``
        beside where the config would be, ``./moxiehook-log.jsonl`` by default;
        ``log_path`` gives that path either way, so the relay's writer and the
        readers always agree on one file. A config file that is there but broken
        is still an error.
        """
        return self.load() if self.has_config else Config(settings=Settings())

    def log_path(self) -> Path:
        """The delivery log this invocation uses, with or without a config file."""
        return self.load_or_defaults().log_path(self.config_path)


def state(ctx: typer.Context) -> CliState:
    """The ``CliState`` of this invocation (a bare one when run without the root)."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj
