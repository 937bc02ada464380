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

    def __call__(self, phase: str, done: int = 0, total: int = 0) -> None:
        if self._clock() - self._start < self._show_after:
            return
        with self._lock:
            self._shown = True
            self._stream.write(f"\r\x1b[K{_line(phase, done, total)}")
            self._stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._shown:
                self._stream.write("\r\x1b[K")
                self._stream.flush()


_WORDS = {"connecting": ("connecting to the daemon", ""), "listing": ("listing containers and images", ""),
          "inspecting": ("inspecting containers", ""), "registries": ("checking registries", " images")}


def _line(phase: str, done: int, total: int) -> str:
    words, unit = _WORDS.get(phase, (phase, ""))
    return f"{words}: {done}/{total}{unit}" if total else f"{words}…"
