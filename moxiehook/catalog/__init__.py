"""Moxie's events: the catalog of event types, their sample payloads, and payload building.

- ``events``: the event types, the object each carries, and its sample.
- ``payload``: ``--data``, ``--set`` and the fresh-id copies of ``--count``.

Other packages import from here, not from the inner modules. Stdlib only.
"""
