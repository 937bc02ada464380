"""The retry layer around a table transport: what is sent again, how long it waits, and when it stops."""
import pytest

from engine.clock import Deadline, FakeClock
from engine.errors import RegistryTimeoutError, TLSError, TransportError
from engine.retry import Backoff, RetryTransport
from engine.transport import Request
from tests.unit.fakes import TablePools

URL = "https://reg.example/v2/a/manifests/1"


class SleepLog(FakeClock):
    def __init__(self):
        super().__init__()
        self.slept = []

    def sleep(self, seconds):
        self.slept.append(seconds)
        super().sleep(seconds)


def retrying(answers, *, deadline=None, clock=None, **backoff):
    """A RetryTransport over a table that gives `answers` in turn (a status, or an error to raise)."""
    clock = clock or SleepLog()
    answers = iter(answers)

    def next_answer(request):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return status, headers, b""

    table = TablePools([("HEAD", "/v2/", next_answer)])
    layer = RetryTransport(table, backoff=Backoff(jitter=lambda cap: cap, **backoff), clock=clock,
                           deadline=Deadline(clock, deadline))
    return layer, table, clock


def send(layer, timeout=None):
    return layer.round_trip(Request("HEAD", URL, timeout=timeout, operation="HEAD manifest reg.example/a:1"))


def test_a_server_error_then_success_is_the_success():
    layer, table, clock = retrying([503, 200])
    assert send(layer).status == 200
    assert len(table.requests) == 2 and clock.slept == [0.25]


def test_server_errors_back_off_exponentially_and_the_last_answer_is_returned():
    layer, table, clock = retrying([500, 502, 503, 200], attempts=3, base=0.25, cap=0.4)
    assert send(layer).status == 503
    assert len(table.requests) == 3 and clock.slept == [0.25, 0.4]  # 0.5 capped at 0.4


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_a_client_error_is_not_retried(status):
    layer, table, clock = retrying([status, 200])
    assert send(layer).status == status and len(table.requests) == 1 and clock.slept == []


def test_connection_resets_are_retried_then_raised():
    reset = TransportError("HEAD manifest: connection reset")
    layer, table, _ = retrying([reset, 200])
    assert send(layer).status == 200
    layer, table, _ = retrying([reset, reset, reset, 200])
    with pytest.raises(TransportError, match="connection reset"):
        send(layer)
    assert len(table.requests) == 3


@pytest.mark.parametrize("error", [TLSError("HEAD manifest: TLS failed"),
                                   RegistryTimeoutError("HEAD manifest: timed out")])
def test_tls_failures_and_timeouts_are_not_retried(error):
    layer, table, _ = retrying([error, 200])
    with pytest.raises(type(error)):
        send(layer)
    assert len(table.requests) == 1


def test_a_429_with_a_retry_after_that_fits_waits_that_long():
    layer, table, clock = retrying([(429, {"Retry-After": "7"}), 200], deadline=60)
    assert send(layer).status == 200 and clock.slept == [7.0]


@pytest.mark.parametrize("headers, deadline", [({}, None),                      # no Retry-After
                                               ({"Retry-After": "61"}, None),   # beyond the cap
                                               ({"Retry-After": "9"}, 10)])     # beyond the deadline's room
def test_a_429_that_does_not_fit_is_the_answer_at_once(headers, deadline):
    layer, table, clock = retrying([(429, headers), 200], deadline=deadline)
    assert send(layer).status == 429 and len(table.requests) == 1 and clock.slept == []


def test_no_backoff_outlasts_the_deadline():
    layer, table, clock = retrying([503, 200], deadline=0.3)  # the 0.25 s wait leaves too little
    assert send(layer).status == 503 and clock.slept == []


def test_each_attempt_is_limited_to_what_the_deadline_leaves():
    layer, table, clock = retrying([503, 200], deadline=10)
    send(layer, timeout=30)
    assert [r["timeout"] for r in table.requests] == [10, 9.75]
    layer, table, clock = retrying([200], deadline=10)
    send(layer, timeout=4)
    assert table.requests[0]["timeout"] == 4


def test_nothing_is_sent_once_the_deadline_has_passed():
    clock = SleepLog()
    layer, table, _ = retrying([200], deadline=1, clock=clock)
    clock.advance(2)
    with pytest.raises(RegistryTimeoutError, match="deadline"):
        send(layer)
    assert table.requests == []
