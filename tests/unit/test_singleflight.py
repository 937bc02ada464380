"""Single-flight: callers that overlap share one call; the overlap is forced, not hoped for."""
import threading

import pytest

from engine.singleflight import SingleFlight
from tests.unit.overlap import Held, overlapping

CALLERS = 8


def test_overlapping_callers_share_one_call_and_its_result():
    flight, held = SingleFlight(), Held(lambda: "value")
    results = overlapping(flight, "k", held, lambda: flight.do("k", held), CALLERS)
    assert held.calls == 1 and results == ["value"] * CALLERS


def test_overlapping_callers_share_one_call_and_its_exception():
    error = ValueError("broke")

    def fail():
        raise error

    flight, held = SingleFlight(), Held(fail)
    results = overlapping(flight, "k", held, lambda: flight.do("k", held), CALLERS)
    assert held.calls == 1 and results == [error] * CALLERS


def test_without_memo_a_later_caller_calls_again():
    flight, calls = SingleFlight(), []
    for _ in range(2):
        flight.do("k", lambda: calls.append(1))
    assert len(calls) == 2


def test_with_memo_the_outcome_stays_including_an_error():
    flight, calls = SingleFlight(memo=True), []

    def fail():
        calls.append(1)
        raise ValueError("no")

    for _ in range(3):
        with pytest.raises(ValueError):
            flight.do("k", fail)
    assert len(calls) == 1
    assert flight.do("other", lambda: 5) == 5


def test_a_running_call_does_not_hold_up_another_key():
    flight, held = SingleFlight(), Held(lambda: "slow")
    thread = threading.Thread(target=lambda: flight.do("slow", held), daemon=True)
    thread.start()
    assert held.entered.wait(5)
    assert flight.do("quick", lambda: "done") == "done"  # would hang if a lock spanned the call
    held.release.set()
    thread.join(5)
