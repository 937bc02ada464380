"""Can an update step still finish in time? Its worst-case duration reserved against a Deadline.

A step is started (pre-update hook, stop, rename aside) only when everything that starting it commits
the run to ends before the deadline; once started, a step is always finished or rolled back, so the
check is made before its first touch and never again. What a step may need:
    stop   its pre-update hook's timeout + its stop timeout + STEP_MARGIN
    start  the verify limit (the health timeout with a health check, else the settle time)
           + its post-update hook's timeout + STEP_MARGIN
Two orders:
    rolling   one step at a time, stop then start, before the next: its stop + its start must fit
    default   every stop, of every level, comes before any start; so a step is stopped only if the
              end of the latest stop admitted (its own included), then the whole start phase of
              every step admitted so far (its own included), fit in what is left. The start phase
              runs level after level, a level's starts side by side on `concurrency` threads:
              ceil(n / concurrency) × its longest start bounds a level (a thread busy to that
              time has finished that many starts). A reservation is never given back (a step
              whose hook or stop fails keeps it): the bound only errs on the safe side.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from .clock import Clock, Deadline

# Seconds per phase of a step for its Engine API calls around the waits: stop (the kill after the
# stop timeout) and rename; or create, connect, inspect, events, start and remove (a rollback:
# remove, rename, start). They took about 0.5 s a step on the loaded 2-core test machine at no
# delay and about 1 s at a 50 ms round trip (docs/update.md, "Measured": 20 rolling updates, each
# with a one-second health check, in 30.8 s and 43.8 s); 3 s keeps a slow daemon from turning
# into an abandoned step.
STEP_MARGIN = 3.0


@dataclass(frozen=True)
class StepNeed:
    """The most a step may take, in seconds, from its pre-update hook to its post-update hook."""

    stop: float
    start: float


class TimeBox:
    """The run's time limit (None: none) and the reservations of the steps admitted so far."""

    def __init__(self, clock: Clock, seconds: float | None, *, concurrency: int = 1):
        self._clock = clock
        self._deadline = Deadline(clock, seconds)
        self._concurrency = max(1, concurrency)
        self._lock = threading.Lock()  # the stops of one level are admitted side by side
        self._stops_end: float | None = None  # monotonic time by which every admitted stop has ended
        self._starts: dict[int, list[float]] = {}  # level → the start needs admitted in it

    def admit_alone(self, need: StepNeed) -> str | None:
        """Rolling: None when the step's stop and start fit in what is left; else why not."""
        left = self._deadline.remaining()
        if left is None or need.stop + need.start <= left:
            return None
        return _shortfall(need.stop + need.start, left)

    def admit_before_starts(self, need: StepNeed, level: int) -> str | None:
        """Default order: None (and the step's share reserved) when its stop, the latest stop and then
        every admitted start fit in what is left; else why not."""
        with self._lock:
            left = self._deadline.remaining()
            if left is None:
                return None
            now = self._clock.monotonic()
            stops_end = max(self._stops_end or now, now + need.stop)
            starts = {**self._starts, level: [*self._starts.get(level, ()), need.start]}
            needed = stops_end - now + self._start_phase(starts)
            if needed > left:
                return _shortfall(needed, left, " with the starts still to come")
            self._stops_end, self._starts = stops_end, starts
            return None

    def _start_phase(self, starts: dict[int, list[float]]) -> float:
        return sum(math.ceil(len(needs) / self._concurrency) * max(needs) for needs in starts.values())


def _shortfall(needed: float, left: float, what: str = "") -> str:
    return f"needs up to {needed:.1f} s{what}; {left:.1f} s left of the time limit"
