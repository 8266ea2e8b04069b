"""The one exception hierarchy of moxiehook.

Core modules raise these and never print or exit; the CLI's single handler
(``MoxiehookGroup.invoke`` in ``moxiehook.cli``) turns them into one
``error: …`` line on stderr and the error's ``exit_code``: 0 done, 1 a delivery
failed (or an endpoint was disabled), 2 usage or config error, 3 nothing was sent,
130 interrupted.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOTHING_SENT = 3
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report a process that SIGINT ended


class MoxiehookError(Exception):
    """Base class of every error moxiehook reports to its user."""

    exit_code: int = EXIT_USAGE


class UsageError(MoxiehookError):
    """A command was called with options that do not make sense together."""


class ConfigError(MoxiehookError):
    """The config file is unreadable, malformed or fails validation."""


class ValidationError(ConfigError):
    """A value (from the file or from an option) breaks a config rule."""


class NotFoundError(MoxiehookError):
    """An endpoint, mapping, event or log record named by the user does not exist."""


class AlreadyExistsError(MoxiehookError):
    """The user asked to create something that already exists."""


class MissingVariableError(ConfigError):
    """A ``${NAME}`` reference names an environment variable that is not set."""

    def __init__(self, name: str, where: str = "") -> None:
        self.name = name
        suffix = f" (used in {where})" if where else ""
        super().__init__(f"environment variable {name} is not set{suffix}")


class DataError(MoxiehookError):
    """A payload given with ``--data`` or ``--set`` cannot be read or parsed."""


class StorageError(MoxiehookError):
    """A file moxiehook must read or write (config, log, lock) is not accessible."""


class NothingSentError(MoxiehookError):
    """No enabled mapping matched, so nothing was sent (exit 3 so CI notices)."""

    exit_code = EXIT_NOTHING_SENT
