"""Forcing callers to overlap in a single-flight call, without sleeping and hoping."""
from __future__ import annotations

import threading
import time
from typing import Callable

from engine.singleflight import SingleFlight


class Held:
    """A call that holds until released, telling when it has started; it counts its calls."""

    def __init__(self, outcome: Callable[[], object]):
        self.outcome = outcome
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, *args):
        self.calls += 1
        self.entered.set()
        assert self.release.wait(5), "never released"
        return self.outcome()


def overlapping(flight: SingleFlight, key, held: Held, caller: Callable[[], object], count: int) -> list:
    """Run `count` callers: the first one's call is held until all the others wait on it (through
    flight, for key); then release it. Returns each caller's result or exception."""
    results: list = []

    def run() -> None:
        try:
            results.append(caller())
        except Exception as exc:  # noqa: BLE001 - the test compares what each caller got
            results.append(exc)

    threads = [threading.Thread(target=run, daemon=True)]
    threads[0].start()
    assert held.entered.wait(5)
    threads += [threading.Thread(target=run, daemon=True) for _ in range(count - 1)]
    for thread in threads[1:]:
        thread.start()
    ends = time.monotonic() + 5
    while flight.waiting(key) < count - 1:
        assert time.monotonic() < ends, f"{flight.waiting(key)} of {count - 1} callers joined"
        threading.Event().wait(0.001)
    held.release.set()
    for thread in threads:
        thread.join(5)
    return results
