"""Time as a collaborator: code asks a Clock, tests pass a fake one."""
from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (wall time: token expiry is compared with issued_at)."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never goes back (deadlines, durations)."""

    def sleep(self, seconds: float) -> None:
        """Wait; a fake clock just moves on."""


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock that moves only when told to; for tests and simulations."""

    def __init__(self, start: float = 1_700_000_000.0):
        self._now = start
        self._mono = 0.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._mono += seconds


class Deadline:
    """A point on a clock's monotonic scale after which work is abandoned."""

    def __init__(self, clock: Clock, seconds: float | None):
        self._clock = clock
        self._at = None if seconds is None else clock.monotonic() + seconds

    def remaining(self) -> float | None:
        """Seconds left, never negative; None when there is no deadline."""
        if self._at is None:
            return None
        return max(0.0, self._at - self._clock.monotonic())

    def expired(self) -> bool:
        remaining = self.remaining()
        return remaining is not None and remaining <= 0.0

    def cap(self, seconds: float) -> float:
        """The smaller of a per-operation limit and what is left of the deadline."""
        remaining = self.remaining()
        return seconds if remaining is None else min(seconds, remaining)

