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


class Timer:
    """Stands in for threading.Timer: fired by the test, never by time."""

    made: list["Timer"] = []

    def __init__(self, seconds, callback):
        self.seconds, self.callback, self.started, self.cancelled, self.joined = seconds, callback, False, False, False
        Timer.made.append(self)

    def start(self):
        self.started = True

    def cancel(self):
        self.cancelled = True

    def join(self):
        self.joined = True


def test_a_long_phase_without_calls_is_shown_once_the_moment_has_passed():
    stream, clock, Timer.made = io.StringIO(), Clock(), []
    progress = TerminalProgress(stream, clock=clock, timer=Timer)
    progress("connecting")
    clock.now += 0.1
    progress("listing")  # then the daemon takes seconds to answer: no further call
    (timer,) = Timer.made
    assert timer.started and timer.seconds == 0.5 and stream.getvalue() == ""
    timer.callback()
    assert stream.getvalue() == "\r\x1b[Klisting containers and images…"
    progress.close()
    assert timer.cancelled and timer.joined and stream.getvalue().endswith("\r\x1b[K")


def test_a_scan_done_before_the_timer_fires_prints_nothing_and_stops_the_timer():
    stream, clock, Timer.made = io.StringIO(), Clock(), []
    progress = TerminalProgress(stream, clock=clock, timer=Timer)
    progress("connecting")
    progress.close()
    Timer.made[0].callback()  # a timer that fires late anyway
    assert stream.getvalue() == "" and Timer.made[0].cancelled and Timer.made[0].joined


def test_inspecting_counts_calls_and_registries_count_images():
    stream, clock = io.StringIO(), Clock()
    progress = TerminalProgress(stream, clock=clock)
    clock.now += 1
    progress("inspecting", 3, 29)
    assert stream.getvalue().endswith("inspecting containers: 3/29")
    progress("registries", 14, 60)
    assert stream.getvalue().endswith("checking registries: 14/60 images")


def test_a_fleet_shows_endpoints_listed_unreachable_and_images_checked_on_one_line():
    stream, clock = io.StringIO(), Clock()
    progress = TerminalProgress(stream, clock=clock)
    clock.now += 2
    for phase, done, total in [("endpoints", 0, 40), ("endpoints", 12, 40), ("unreachable", 1, 40),
                               ("registries", 30, 55)]:
        progress(phase, done, total)
    progress.close()
    last = stream.getvalue().split("\r\x1b[K")[-2]
    assert last == "endpoints: 12/40 listed, 1 unreachable; images: 30/55 checked"
