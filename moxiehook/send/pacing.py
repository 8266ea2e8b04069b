"""How many sending threads a run uses: one at first, more only while deliveries wait on the network.

Python runs one thread at a time. Against a fast receiver one sending thread
keeps the interpreter busy, and more threads only queue for it: on 2 cores,
``fire --count 2000`` at the default concurrency of 8 took 1.3–1.6× as long as
with one thread (measured when the senders still shared one connection pool,
whose lock they also queued for; each now has its own client). Against a slow
receiver (50 ms) a delivery is ~97% waiting, and only many deliveries in flight
reach what the receiver can take. So a run starts one sender and adds more
while the senders measure that the interpreter sits idle, never more than the
concurrency asked for:

- after each delivery, its wall time and the CPU time of its thread are summed;
  once the sums cover about ``WINDOW_S`` of sending, the share of time the
  interpreter was busy is ``senders × CPU / wall``. Below ``GROW_BELOW`` the run
  grows at once to the number of senders that would keep it ``TARGET_BUSY``;
- a delivery that hangs tells nothing until it ends, so a watchdog adds one
  sender each ``STALL_S`` in which no delivery ended: a hanging endpoint never
  holds up the others for long.

Senders are never removed: more than needed costs some speed, never a delivery.
"""

from __future__ import annotations

import math
import os
import threading

GROW_BELOW = 0.7  # busy share under which senders are added
TARGET_BUSY = 0.9  # busy share the added senders aim at
WINDOW_S = 0.02  # seconds of delivery time (per sender) judged at once: many fast deliveries, or one slow
STALL_S = 0.02  # a watchdog period without any delivery ending adds a sender


# Open files a run needs besides its connections: stdio, the log and its lock
# files, the config and its lock, a CA bundle being read, a pipe or two.
RESERVED_FDS = 16
# Each sender may keep two connections open: one for http://, one for https:// URLs.
FDS_PER_SENDER = 2


def fit_open_files(wanted: int) -> tuple[int, int | None]:
    """The concurrency the open-file limit (``ulimit -n``) allows, up to ``wanted``; and that limit.

    A sender beyond the limit would fail every delivery it starts with "too many
    open files". The soft limit is first raised toward the hard one (as the Go
    runtime does); only what the hard limit cannot cover is cut. The limit
    returned is None when there is none.
    """
    import resource  # only sending commands get here

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted, None
    needed = _open_files() + RESERVED_FDS + FDS_PER_SENDER * wanted
    if needed > soft:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    room = (soft - _open_files() - RESERVED_FDS) // FDS_PER_SENDER
    return max(1, min(wanted, room)), soft


def _open_files() -> int:
    """How many files this process has open now (0 where the system does not say)."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder))
        except OSError:
            continue
    return 0


class Pacer:
    """Counts senders and decides when to add some; safe to call from every sender."""

    def __init__(self, limit: int, senders: int = 1) -> None:
        self.limit = limit  # the concurrency asked for
        self.senders = senders  # started so far
        self._lock = threading.Lock()
        self._wall = 0.0
        self._cpu = 0.0
        self._ended = 0  # deliveries ended so far
        self._ended_at_last_check = 0

    def observe(self, wall: float, cpu: float) -> int:
        """Record a delivery that took ``wall`` seconds, ``cpu`` of them on its thread's CPU.

        Returns how many senders to start now (usually 0).
        """
        with self._lock:
            self._ended += 1
            if self.senders >= self.limit:
                return 0
            self._wall += wall
            self._cpu += cpu
            if self._wall < WINDOW_S * self.senders:
                return 0
            busy = self.senders * self._cpu / self._wall
            self._wall = self._cpu = 0.0
            if busy >= GROW_BELOW:
                return 0
            wanted = min(self.limit, math.ceil(self.senders * TARGET_BUSY / max(busy, 1e-6)))
            return self._grow(wanted)

    def stalled(self) -> int:
        """Called every ``STALL_S`` by the watchdog: one more sender if no delivery ended since."""
        with self._lock:
            nothing_ended = self._ended == self._ended_at_last_check
            self._ended_at_last_check = self._ended
            if not nothing_ended or self.senders >= self.limit:
                return 0
            return self._grow(self.senders + 1)

    def _grow(self, wanted: int) -> int:
        added = max(0, wanted - self.senders)
        self.senders += added
        return added
