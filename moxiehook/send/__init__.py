"""Everything that makes requests.

- ``delivery``: one delivery: the request builder, attempts, and ``classify()`` (what an answer
  means: delivered, retried, or the endpoint disabled).
- ``dispatch``: many deliveries: plan, run concurrently, disable endpoints on the fly.
- ``load``: load runs (``fire --rate R --duration T``): the open-model schedule and its report.
- ``pacing``: how many sending threads. The wire itself (keep-alive sockets, TLS, proxies,
  per-attempt deadlines) is ``moxiehook.http``.
- ``signing``: Standard Webhooks signatures (also used by ``listen`` to verify).

Other packages import from here, not from the inner modules. The names are
resolved lazily (PEP 562): a command that sends nothing (``listen`` verifying a
signature) must not pay for loading the sending modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from moxiehook.lazy import lazy_getattr

# name -> the inner module that defines it
_EXPORTS = {
    "Answer": "delivery",
    "Delivery": "delivery",
    "HttpxSender": "delivery",
    "Interrupt": "dispatch",
    "Job": "dispatch",
    "LoadLimits": "load",
    "LoadReport": "load",
    "LoadRun": "load",
    "MIN_REDACTED": "delivery",
    "READ_LIMIT": "delivery",
    "RunOptions": "dispatch",
    "RunSummary": "dispatch",
    "Sender": "delivery",
    "check_load": "load",
    "fire_jobs": "dispatch",
    "plan_fire": "dispatch",
    "preview_jobs": "dispatch",
    "run_jobs": "dispatch",
    "SignatureMismatch": "signing",
    "judge_answer": "delivery",
    "judge_load": "load",
    "load_exit_code": "load",
    "prepare_endpoint": "delivery",
    "redact_text": "delivery",
    "request_headers": "delivery",
    "run_load": "load",
    "secret_bytes": "signing",
    "status_text": "delivery",
    "tls_context": "delivery",
    "verify": "signing",
    "verify_setting": "delivery",
    "PreparedEndpoint": "delivery",
}

__all__ = [
    "Answer", "Delivery", "HttpxSender", "Interrupt", "Job", "LoadLimits", "LoadReport", "LoadRun", "MIN_REDACTED",
    "PreparedEndpoint", "READ_LIMIT", "RunOptions", "RunSummary", "Sender", "SignatureMismatch", "check_load",
    "fire_jobs", "judge_answer", "judge_load", "load_exit_code", "plan_fire", "prepare_endpoint", "preview_jobs",
    "redact_text", "request_headers", "run_jobs", "run_load", "secret_bytes", "status_text", "tls_context",
    "verify", "verify_setting",
]  # fmt: skip

if TYPE_CHECKING:
    from moxiehook.send.delivery import (
        MIN_REDACTED,
        READ_LIMIT,
        Answer,
        Delivery,
        HttpxSender,
        PreparedEndpoint,
        Sender,
        judge_answer,
        prepare_endpoint,
        redact_text,
        request_headers,
        status_text,
        tls_context,
        verify_setting,
    )
    from moxiehook.send.dispatch import (
        Interrupt,
        Job,
        RunOptions,
        RunSummary,
        fire_jobs,
        plan_fire,
        preview_jobs,
        run_jobs,
    )
    from moxiehook.send.load import LoadLimits, LoadReport, LoadRun, check_load, judge_load, load_exit_code, run_load
    from moxiehook.send.signing import SignatureMismatch, secret_bytes, verify


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
