"""Retry as a layer: a Transport that sends a request again after a temporary failure.

    attempt (each with what the deadline leaves as its time limit)
    → 2xx-4xx (not 429): the answer, whatever it is
    → 5xx, or a connection reset or refused: wait a capped, jittered backoff, try again
    → 429 with a Retry-After that fits (under the cap, and leaving the deadline room
      for the request after it): wait that long, try again; otherwise the 429 is the answer
    → TLS failures, bodies over the cap and timeouts are not retried: the next attempt
      would meet the same certificate or body, and a timeout has spent the deadline's share
A failure still there after the last attempt is returned (a status) or raised (an error),
for the caller to turn into its typed error. One policy serves the ping, the token
requests and the manifest requests.
"""
from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Callable

from .clock import Clock, Deadline, SystemClock
from .errors import RegistryError, RegistryTimeoutError
from .status import retry_after
from .transport import Request, Response, Transport


def full_jitter(cap: float) -> float:
    return random.uniform(0, cap)  # nosec B311 # spreads retries, not a secret


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with jitter: attempt n waits jitter(min(cap, base * 2**n))."""

    attempts: int = 3
    base: float = 0.25
    cap: float = 2.0
    max_retry_after: float = 60.0  # a longer pause asked for by a 429 is answered with the 429 at once
    jitter: Callable[[float], float] = full_jitter

    def delay(self, attempt: int) -> float:
        return self.jitter(min(self.cap, self.base * 2 ** attempt))


class RetryTransport:
    def __init__(self, inner: Transport, *, backoff: Backoff = Backoff(), clock: Clock | None = None,
                 deadline: Deadline | None = None):
        self._inner = inner
        self._backoff = backoff
        self._clock = clock or SystemClock()
        self._deadline = deadline or Deadline(self._clock, None)

    def round_trip(self, request: Request) -> Response:
        for attempt in range(self._backoff.attempts):
            last = attempt == self._backoff.attempts - 1
            if self._deadline.expired():
                raise RegistryTimeoutError(f"{request.operation or request.method}: scan deadline reached")
            try:
                response = self._inner.round_trip(self._limited(request))
            except RegistryTimeoutError:
                raise
            except RegistryError as exc:
                if last or not exc.temporary or not self._wait(self._backoff.delay(attempt)):
                    raise
                continue
            if last or not self._retry_after_pause(response, attempt):
                return response
        raise AssertionError("unreachable")

    def _retry_after_pause(self, response: Response, attempt: int) -> bool:
        """Whether the response is worth another attempt, after the pause (taken here) it calls for."""
        if response.status == 429:
            seconds = retry_after(response)
            return seconds is not None and seconds <= self._backoff.max_retry_after and self._wait(seconds)
        return response.status >= 500 and self._wait(self._backoff.delay(attempt))

    def _limited(self, request: Request) -> Request:
        """The request with a time limit no later than the deadline."""
        left = self._deadline.remaining()
        if left is None or (request.timeout is not None and request.timeout <= left):
            return request
        return dataclasses.replace(request, timeout=left)

    def _wait(self, seconds: float) -> bool:
        """Sleep if the deadline leaves room for the wait and a request after it."""
        remaining = self._deadline.remaining()
        if remaining is not None and seconds >= remaining * 0.8:
            return False
        self._clock.sleep(seconds)
        return True
