"""The terminal progress line: silent for quick scans, one rewritten line for slow ones, cleared at the end."""
import io

from handler.progress import TerminalProgress


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_quick_scan_prints_nothing():
    stream, clock = io.StringIO(), Clock()
    progress = TerminalProgress(stream, clock=clock)
    progress("registries", 1, 3)
    progress.close()
    assert stream.getvalue() == ""


def test_a_slow_scan_rewrites_one_line_and_clears_it():
    stream, clock = io.StringIO(), Clock()
    progress = TerminalProgress(stream, clock=clock)
    clock.now += 2
    progress("registries", 1, 3)
    progress("registries", 3, 3)
    progress.close()
    text = stream.getvalue()
    assert "\n" not in text and "1/3" in text and "3/3" in text
    assert text.endswith("\r\x1b[K")
