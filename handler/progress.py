"""A one-line progress indicator on a terminal, shown only when a scan takes more than a moment.

A fleet of one shows its phase ("listing containers and images…", "checking registries: 3/10
images"); a larger fleet shows the run at once: "endpoints: 12/40 listed, 1 unreachable; images:
30/55 checked".

A phase may last long without a call (a slow daemon listing is one call), so the line does not
wait for the next call: a timer shows the latest phase once the scan has taken ``show_after``
seconds. ``close()`` stops that timer, so nothing outlives the scan.
"""
from __future__ import annotations

import threading
import time

SHOW_AFTER = 0.5  # seconds: a quick scan should print nothing but its report


class TerminalProgress:
    def __init__(self, stream, *, show_after: float = SHOW_AFTER, clock=time.monotonic, timer=threading.Timer):
        self._stream = stream
        self._clock = clock
        self._start = clock()
        self._show_after = show_after
        self._make_timer = timer
        self._timer = None
        self._latest: tuple[str, int, int] | None = None
        self._fleet: dict[str, tuple[int, int]] = {}  # endpoints, unreachable, registries: (done, in all)
        self._shown = self._closed = False
        self._lock = threading.Lock()

    def __call__(self, phase: str, done: int = 0, total: int = 0) -> None:
        with self._lock:
            self._latest = (phase, done, total)
            if phase in ("endpoints", "unreachable", "registries"):
                self._fleet[phase] = (done, total)
            waited = self._clock() - self._start
            if waited >= self._show_after:
                self._show()
            elif self._timer is None and not self._closed:
                self._timer = self._make_timer(self._show_after - waited, self._show_latest)
                self._timer.daemon = True
                self._timer.start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            timer, self._timer = self._timer, None
            if self._shown:
                self._stream.write("\r\x1b[K")
                self._stream.flush()
        if timer is not None:
            timer.cancel()
            timer.join()

    def _show_latest(self) -> None:
        with self._lock:
            if not self._closed:
                self._show()

    def _show(self) -> None:
        self._shown = True
        line = _fleet_line(self._fleet) if "endpoints" in self._fleet else _line(*self._latest)
        self._stream.write(f"\r\x1b[K{line}")
        self._stream.flush()


_WORDS = {"connecting": ("connecting to the daemon", ""), "listing": ("listing containers and images", ""),
          "inspecting": ("inspecting containers", ""), "registries": ("checking registries", " images")}


def _line(phase: str, done: int, total: int) -> str:
    words, unit = _WORDS.get(phase, (phase, ""))
    return f"{words}: {done}/{total}{unit}" if total else f"{words}…"


def _fleet_line(counts: dict[str, tuple[int, int]]) -> str:
    listed, endpoints = counts["endpoints"]
    unreachable, _ = counts.get("unreachable", (0, 0))
    checked, images = counts.get("registries", (0, 0))
    return (f"endpoints: {listed}/{endpoints} listed, {unreachable} unreachable; "
            f"images: {checked}/{images} checked")
