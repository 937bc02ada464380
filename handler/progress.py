"""A one-line progress indicator on a terminal, shown only when a scan takes more than a moment."""
from __future__ import annotations

import threading
import time

SHOW_AFTER = 0.5  # seconds: a quick scan should print nothing but its report


class TerminalProgress:
    def __init__(self, stream, *, show_after: float = SHOW_AFTER, clock=time.monotonic):
        self._stream = stream
        self._clock = clock
        self._start = clock()
        self._show_after = show_after
        self._shown = False
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int) -> None:
        if self._clock() - self._start < self._show_after:
            return
        with self._lock:
            self._shown = True
            self._stream.write(f"\r\x1b[Kchecking registries: {done}/{total} images")
            self._stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._shown:
                self._stream.write("\r\x1b[K")
                self._stream.flush()
