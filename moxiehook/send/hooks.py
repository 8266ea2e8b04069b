"""``settings.on_disable``: the command run when a delivery run disables an endpoint (SPEC §3).

Moxie "sends a push notification advising that your endpoint requires
attention"; this is its counterpart: any program (a desktop notifier, ``curl``
to a chat webhook, ``ntfy``) run with what happened in its environment.

- An argv array, no shell: nothing in a reason or URL is ever interpreted.
- Environment: ours, minus every variable the config refers to through ``${…}``
  (those hold credentials), plus ``MOXIEHOOK_ENDPOINT``, ``MOXIEHOOK_REASON``,
  ``MOXIEHOOK_STATUS``, ``MOXIEHOOK_URL`` and ``MOXIEHOOK_CONFIG``.
- No stdin; its output goes to our stderr (stdout stays for results and ``--json``).
- At most ``HOOK_TIMEOUT`` seconds, waited for: a CI job does not end before its
  notification is out. Past that, the hook's whole process group is killed.
- A hook that is missing, fails or times out is one warning, returned to the
  caller; it never changes the run's outcome or exit code.
"""

from __future__ import annotations

import os
import signal
import subprocess
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


def run_on_disable(config: Config, config_path: Path, endpoint: str, reason: str, status: int | None,
                   url: str, timeout: float = HOOK_TIMEOUT) -> str | None:
    """Run ``settings.on_disable`` for one disabled endpoint; return a warning, or None when it went well."""
    argv = config.settings.on_disable
    if not argv:
        return None
    where = f"settings.on_disable ({argv[0]})"
    env = hook_environment(config, config_path, endpoint, reason, status, url)
    try:
        # stdout=2: the hook's output joins our stderr; a new session, so a timeout kills all it started.
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=2, env=env, start_new_session=True)
    except OSError as exc:
        return f"{where} could not be started: {exc.strerror or exc}"
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        return f"{where} did not finish within {timeout:g} s and was stopped"
    if code != 0:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        return f"{where} {how} (endpoint '{endpoint}' is disabled all the same)"
    return None
