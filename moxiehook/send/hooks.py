"""``settings.on_disable``: the command run when a delivery run disables an endpoint.

Moxie "sends a push notification advising that your endpoint requires
attention"; this is its counterpart: any program (a desktop notifier, ``curl``
to a chat webhook, ``ntfy``) run with what happened in its environment.

- An argv array, no shell: nothing in a reason or URL is ever interpreted.
- Environment: ours, minus every variable the config refers to through ``${…}``
  (those hold credentials), plus ``MOXIEHOOK_ENDPOINT``, ``MOXIEHOOK_REASON``,
  ``MOXIEHOOK_STATUS``, ``MOXIEHOOK_URL`` and ``MOXIEHOOK_CONFIG``.
- No stdin; its output goes to our stderr (stdout stays for results and ``--json``).
- Started as soon as the endpoint is disabled and left running (``OnDisableHooks``):
  deliveries go on meanwhile, and the hooks of several endpoints run side by side.
- At most ``HOOK_TIMEOUT`` seconds in all for a run, from the first hook's start,
  waited for at the run's end: a CI job does not end before its notification is
  out. Past that, or at Ctrl-C, each hook's whole process group is killed.
- A hook that is missing, fails or times out is one warning, returned to the
  caller; it never changes the run's outcome or exit code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from moxiehook.config import Config, references

HOOK_TIMEOUT = 10.0  # seconds


def referenced_variables(config: Config) -> set[str]:
    """Every environment variable the config's ``${…}`` references name (auth, headers, signing)."""
    names: set[str] = set()
    for endpoint in config.endpoints.values():
        values = [*endpoint.auth.values().values(), *endpoint.headers.values(), endpoint.signing_secret]
        for value in values:
            if value:
                names.update(references(value))
    return names


def hook_environment(config: Config, config_path: Path, endpoint: str, reason: str, status: int | None,
                     url: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The hook's environment: ours without the config's secrets, plus what happened."""
    base = dict(os.environ if environ is None else environ)
    for name in referenced_variables(config):
        base.pop(name, None)
    base.update({
        "MOXIEHOOK_ENDPOINT": endpoint,
        "MOXIEHOOK_REASON": reason,
        "MOXIEHOOK_STATUS": "" if status is None else str(status),
        "MOXIEHOOK_URL": url,
        "MOXIEHOOK_CONFIG": str(config_path),
    })
    return base


class OnDisableHooks:
    """The ``on_disable`` hooks of one run: started at once, running side by side, ended within a budget.

    ``start`` spawns a hook and returns (the sending thread goes on at once);
    ``wait`` (at the run's end) waits for them all until ``budget`` seconds after
    the first one started, then kills the process groups of those left; a set
    ``stop`` event (Ctrl-C) kills them at once. Thread-safe.
    """

    POLL_S = 0.05  # how often ``wait`` looks at ``stop``: Ctrl-C ends the wait within about this long

    def __init__(self, budget: float = HOOK_TIMEOUT) -> None:
        self.budget = budget
        self._lock = threading.Lock()
        self._running: list[tuple[subprocess.Popen[bytes], str, str]] = []  # (process, where, endpoint)
        self._deadline: float | None = None

    def start(self, config: Config, config_path: Path, endpoint: str, reason: str, status: int | None,
              url: str) -> str | None:
        """Start the hook for one disabled endpoint; a warning when it cannot be started, else None."""
        argv = config.settings.on_disable
        if not argv:
            return None
        where = f"settings.on_disable ({argv[0]})"
        env = hook_environment(config, config_path, endpoint, reason, status, url)
        try:
            # stdout=2: the hook's output joins our stderr; a new session, so a kill reaches all it started.
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=2, env=env, start_new_session=True)
        except OSError as exc:
            return f"{where} could not be started: {exc.strerror or exc}"
        with self._lock:
            if self._deadline is None:
                self._deadline = time.monotonic() + self.budget
            self._running.append((process, where, endpoint))
        return None

    def wait(self, stop: threading.Event | None = None) -> list[str]:
        """Wait for every hook started (until the budget is spent, or ``stop`` is set); one warning per problem."""
        warnings: list[str] = []
        while True:
            with self._lock:
                running, deadline = list(self._running), self._deadline
            if not running:
                return warnings
            process, where, endpoint = running[0]
            left = (deadline or 0) - time.monotonic()
            if stop is not None and stop.is_set():
                self.kill()
                warnings.extend(f"{w} was stopped (Ctrl-C)" for _, w, _ in running)
                return warnings
            if left <= 0:
                self.kill()
                warnings.extend(f"{w} did not finish within {self.budget:g} s and was stopped"
                                for _, w, _ in running)
                return warnings
            try:
                code = process.wait(timeout=min(left, self.POLL_S) if stop is not None else left)
            except subprocess.TimeoutExpired:
                continue
            with self._lock:
                self._running.remove((process, where, endpoint))
            if code != 0:
                how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                warnings.append(f"{where} {how} (endpoint '{endpoint}' is disabled all the same)")

    def kill(self) -> None:
        """Kill every hook still running, with what it started (its process group), and reap it."""
        with self._lock:
            running, self._running = self._running, []
        for process, _, _ in running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        for process, _, _ in running:
            process.wait()


def run_on_disable(config: Config, config_path: Path, endpoint: str, reason: str, status: int | None,
                   url: str, timeout: float = HOOK_TIMEOUT) -> str | None:
    """Run ``settings.on_disable`` for one disabled endpoint and wait for it; a warning, or None when it went well."""
    hooks = OnDisableHooks(timeout)
    problem = hooks.start(config, config_path, endpoint, reason, status, url)
    if problem is not None:
        return problem
    warnings = hooks.wait()
    return warnings[0] if warnings else None
