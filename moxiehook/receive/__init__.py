"""The other side of the wire: ``listen``, a local receiver that checks auth and signatures.

Other packages import from here, not from the inner modules.
"""

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
    "Check", "ReceivedRequest", "ReceiverConfig", "RunningReceiver", "build_check",
    "check_for_endpoint", "start_receiver",
]
