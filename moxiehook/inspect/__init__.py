"""The inspector: a local web page and JSON API over what ``listen`` received and the log holds.

- ``runner``: start and stop it (``moxiehook ui``, ``listen --ui``), history and log following.
- ``app``: its small HTTP app: the page, the API, the event stream, the Host/Origin/token guard.
- ``store``: the capped in-memory list and its live subscribers.
- ``analysis``: JSON errors with their position, the schema verdict and drift, diffs, exports.
- ``replay``: replay and edit-and-replay through the same sending code as ``replay``.
- ``static/``: the page (HTML, JS, CSS) as package data: no network, no build step.

Other packages import from here, not from the inner modules.
"""

from moxiehook.inspect.replay import ReplayTarget
from moxiehook.inspect.runner import InspectorConfig, RunningInspector, is_loopback, start_inspector

__all__ = ["InspectorConfig", "ReplayTarget", "RunningInspector", "is_loopback", "start_inspector"]
