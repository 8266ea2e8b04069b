"""Everything that makes requests.

- ``delivery``: one delivery: the request builder, attempts, and ``classify()`` (SPEC §5).
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
    "LoadReport": "load",
    "LoadRun": "load",
    "MIN_REDACTED": "delivery",
    "RunOptions": "dispatch",
    "RunSummary": "dispatch",
    "Sender": "delivery",
    "check_load": "load",
    "SignatureMismatch": "signing",
    "judge_answer": "delivery",
    "prepare_endpoint": "delivery",
    "redact_text": "delivery",
    "request_headers": "delivery",
    "run_load": "load",
    "secret_bytes": "signing",
    "status_text": "delivery",
    "tls_context": "delivery",
    "verify": "signing",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from moxiehook.send.delivery import (
        MIN_REDACTED,
        Answer,
        Delivery,
        HttpxSender,
        Sender,
        judge_answer,
        prepare_endpoint,
        redact_text,
        request_headers,
        status_text,
        tls_context,
    )
    from moxiehook.send.dispatch import Interrupt, Job, RunOptions, RunSummary
    from moxiehook.send.load import LoadReport, LoadRun, check_load, run_load
    from moxiehook.send.signing import SignatureMismatch, secret_bytes, verify


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
