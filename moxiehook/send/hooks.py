"""``settings.on_disable``: the command run when a delivery run disables an endpoint.

Moxie "sends a push notification advising that your endpoint requires
attention"; this is its counterpart: any program (a desktop notifier, ``curl``
to a chat webhook, ``ntfy``) run with what happened in its environment.

- An argv array, no shell: nothing in a reason or URL is ever interpreted.
- Environment: ours, minus every variable the config refers to through ``${…}``
  (those hold credentials), plus ``MOXIEHOOK_ENDPOINT``, ``MOXIEHOOK_REASON``,
  ``MOXIEHOOK_STATUS``, ``MOXIEHOOK_URL`` and ``MOXIEHOOK_CONFIG``.
- No stdin; its output is copied to our stderr (stdout stays for results and ``--json``)
  through a pipe of ours, read until the hook exits: a process the hook leaves running
  never holds our stderr open past the run (``fire … 2>&1 | tee`` ends with fire).
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
import select
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
        self._output: dict[int, _HookOutput] = {}  # by pid: the copy of each hook's output to our stderr

    def start(self, config: Config, config_path: Path, endpoint: str, reason: str, status: int | None,
              url: str) -> str | None:
        """Start the hook for one disabled endpoint; a warning when it cannot be started, else None."""
        argv = config.settings.on_disable
        if not argv:
            return None
        where = f"settings.on_disable ({argv[0]})"
        env = hook_environment(config, config_path, endpoint, reason, status, url)
        read_fd, write_fd = os.pipe()
        try:
            # Its output goes through our pipe to our stderr; a new session, so a kill reaches all it started.
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=write_fd, stderr=write_fd, env=env,
                                       start_new_session=True)
        except OSError as exc:
            os.close(read_fd)
            return f"{where} could not be started: {exc.strerror or exc}"
        finally:
            os.close(write_fd)
        with self._lock:
            self._output[process.pid] = _HookOutput(read_fd)
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
            with self._lock:
                output = self._output.pop(process.pid)
            output.finish(max(0.0, (deadline or 0) - time.monotonic()), stop)
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
            with self._lock:
                output = self._output.pop(process.pid, None)
            if output is not None:
                output.finish(0.0)


class _HookOutput:
    """Copies one hook's output (a pipe) to our stderr until the hook has exited and the pipe is drained.

    The copy stops there even if the pipe is still open (held by a process the hook left
    running), and closes our end: nothing the hook started can keep our stderr open.
    """

    POLL_S = 0.05

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._exited = threading.Event()
        self._thread = threading.Thread(target=self._copy, name="on_disable output", daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        try:
            while True:
                ready, _, _ = select.select([self._fd], [], [], self.POLL_S)
                if not ready:
                    if self._exited.is_set():  # exited, and nothing more is waiting in the pipe
                        return
                    continue
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    return
                with contextlib.suppress(OSError):  # our stderr closed: the hook's output is dropped
                    while chunk:
                        chunk = chunk[os.write(2, chunk):]
        finally:
            os.close(self._fd)

    def finish(self, budget: float, stop: threading.Event | None = None) -> None:
        """The hook has exited: copy what it left in the pipe (at most ``budget`` s more, less if ``stop`` is set)."""
        self._exited.set()
        end = time.monotonic() + budget
        while self._thread.is_alive() and not (stop is not None and stop.is_set()):
            left = end - time.monotonic()
            if left <= 0:
                return
            self._thread.join(min(left, self.POLL_S))


def run_on_disable(config: Config, config_path: Path, endpoint: str, reason: str, status: int | None,
                   url: str, timeout: float = HOOK_TIMEOUT) -> str | None:
    """Run ``settings.on_disable`` for one disabled endpoint and wait for it; a warning, or None when it went well."""
    hooks = OnDisableHooks(timeout)
    problem = hooks.start(config, config_path, endpoint, reason, status, url)
    if problem is not None:
        return problem
    warnings = hooks.wait()
    return warnings[0] if warnings else None
