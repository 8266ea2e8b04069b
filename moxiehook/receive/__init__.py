"""The other side of the wire: ``listen``, a local receiver that checks auth and signatures.

- ``server``: the HTTP server, the auth/signature check, ``--save``, ``--ready-file``.
- ``forward``: ``--forward-to``: relay checked requests to an app and log them as deliveries.

Other packages import from here, not from the inner modules.
"""

from moxiehook.receive.forward import (
    DEFAULT_ENDPOINT,
    FORWARD_CONCURRENCY,
    ForwardConfig,
    Forwarded,
    Forwarder,
    check_forward_url,
    is_self_forward,
    relayed_url_problem,
)
from moxiehook.receive.server import (
    Check,
    ReceivedRequest,
    ReceiverConfig,
    RunningReceiver,
    build_check,
    check_for_endpoint,
    start_receiver,
)

__all__ = [
    "DEFAULT_ENDPOINT", "FORWARD_CONCURRENCY", "Check", "ForwardConfig", "Forwarded", "Forwarder",
    "ReceivedRequest", "ReceiverConfig", "RunningReceiver", "build_check", "check_for_endpoint",
    "check_forward_url", "is_self_forward", "relayed_url_problem", "start_receiver",
]
