"""Keyed single-flight: concurrent callers of one key share one call's outcome.

The first caller of a key runs the call; callers that arrive while it runs wait for it
and get its result, or its exception raised again. No lock is held while the call runs,
so a call may do network I/O or run a subprocess without stalling other keys.

With ``memo=True`` the outcome stays: later callers of the key get it without a call
(a credential helper's answer, a registry's ping). Without it, the next caller after
the outcome calls again (a cache in front decides whether that is needed).
"""
from __future__ import annotations

import threading
from typing import Callable, Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Call(Generic[V]):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: V | None = None
        self.error: BaseException | None = None
        self.waiters = 0

    def outcome(self) -> V:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


class SingleFlight(Generic[K, V]):
    def __init__(self, *, memo: bool = False):
        self._memo = memo
        self._lock = threading.Lock()
        self._calls: dict[K, _Call[V]] = {}

    def do(self, key: K, call: Callable[[], V]) -> V:
        """call's result for key, calling it only if no call for key is running (or memoised)."""
        with self._lock:
            running = self._calls.get(key)
            if running is None:
                mine = self._calls[key] = _Call()
            else:
                running.waiters += 1
        if running is not None:
            running.done.wait()
            return running.outcome()
        try:
            mine.value = call()
        except BaseException as exc:  # noqa: BLE001 - handed to every waiter, then raised here too
            mine.error = exc
        finally:
            if not self._memo:
                with self._lock:
                    del self._calls[key]
            mine.done.set()
        return mine.outcome()

    def waiting(self, key: K) -> int:
        """How many callers have joined the running call for key (tests force overlap with it)."""
        with self._lock:
            call = self._calls.get(key)
            return call.waiters if call is not None and not call.done.is_set() else 0
