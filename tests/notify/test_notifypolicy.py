"""handler.notifypolicy's flow with an in-memory store and senders passed in: what is decided, which
targets are sent to and in which order, and what is recorded. The entry points' own stores and
senders are proven in tests/notify/test_delivery.py (the state file), tests/aws/test_lambda.py and
tests/aws/test_aggregate.py (DynamoDB, SNS and the notify URLs)."""
from __future__ import annotations

import pytest

from handler.notifypolicy import Notified, Sent, notify_per_policy

KEY, CURRENT, OTHER = "tcp://h:2376", "fp-now", "fp-before"
TOOK, FAILED, ABSENT = True, False, None  # what a target does with the report; ABSENT: not configured


class Store:
    """Fingerprints per key in a dict; counts how often it was opened; a record problem when given one."""

    def __init__(self, last: str | None = None, problem: str = "") -> None:
        self.fingerprints = {} if last is None else {KEY: last}
        self.problem, self.opened = problem, 0

    def open(self) -> "Store":
        self.opened += 1
        return self

    def last(self, key: str) -> str | None:
        return self.fingerprints.get(key)

    def record(self, key: str, fingerprint: str) -> str:
        if not self.problem:
            self.fingerprints[key] = fingerprint
        return self.problem


def run(policy: str, status: str, store: Store, sns, urls, calls: list) -> Notified:
    def sender(name: str, took):
        def send() -> Sent:
            calls.append(name)
            return Sent({f"{name}_field": name}, took=took)
        return None if took is ABSENT else send

    return notify_per_policy(policy, status, CURRENT, key=KEY, open_store=store.open,
                             publish=sender("sns", sns), send_urls=sender("urls", urls))


@pytest.mark.parametrize("policy, status, last, sns, urls, notify, sent, recorded", [
    # always and stale keep no state: the store is never opened
    ("always", "ok", None, TOOK, TOOK, True, ["sns", "urls"], False),
    ("stale", "ok", None, TOOK, TOOK, False, [], False),
    ("stale", "stale", None, TOOK, ABSENT, True, ["sns"], False),
    ("stale", "errors", None, ABSENT, TOOK, True, ["urls"], False),
    # change: the first report and a changed one go out and are recorded; an unchanged one does not
    ("change", "ok", None, TOOK, TOOK, True, ["sns", "urls"], True),
    ("change", "stale", OTHER, TOOK, TOOK, True, ["sns", "urls"], True),
    ("change", "stale", CURRENT, TOOK, TOOK, False, [], False),
    ("change", "ok", None, ABSENT, TOOK, True, ["urls"], True),
    ("change", "ok", None, TOOK, ABSENT, True, ["sns"], True),
    # a target that failed: the other is still tried, nothing is recorded (the next run tries again)
    ("change", "ok", None, FAILED, TOOK, True, ["sns", "urls"], False),
    ("change", "ok", OTHER, TOOK, FAILED, True, ["sns", "urls"], False),
    ("change", "ok", None, ABSENT, FAILED, True, ["urls"], False),
    ("always", "ok", None, FAILED, FAILED, True, ["sns", "urls"], False),
])
def test_the_policy_decides_sends_sns_then_the_urls_and_records_only_what_every_target_took(
        policy, status, last, sns, urls, notify, sent, recorded):
    store, calls = Store(last), []
    notified = run(policy, status, store, sns, urls, calls)
    assert notified.decision.notify is notify
    assert calls == sent
    assert notified.took is (notify and FAILED not in (sns, urls))
    assert notified.recorded is recorded and notified.record_problem == ""
    assert store.fingerprints.get(KEY) == (CURRENT if recorded else last)
    assert store.opened == (policy == "change")


@pytest.mark.parametrize("policy", ["always", "stale", "change"])
def test_nowhere_to_deliver_decides_nothing_and_opens_no_store(policy):
    store, calls = Store(), []
    assert run(policy, "stale", store, ABSENT, ABSENT, calls) == Notified()
    assert calls == [] and store.opened == 0


def test_the_senders_fields_come_back_sns_first_then_the_urls():
    notified = run("always", "ok", Store(), TOOK, FAILED, [])
    assert list(notified.fields.items()) == [("sns_field", "sns"), ("urls_field", "urls")]


def test_a_store_that_cannot_record_says_why_and_what_was_sent_stands():
    store, calls = Store(problem="write state file /x: Permission denied"), []
    notified = run("change", "ok", store, TOOK, TOOK, calls)
    assert calls == ["sns", "urls"] and notified.took
    assert not notified.recorded and notified.record_problem == "write state file /x: Permission denied"


def test_a_sender_that_raises_ends_the_flow_with_nothing_sent_after_it_and_nothing_recorded():
    store, calls = Store(), []

    def publish():
        raise RuntimeError("SNS refused")

    with pytest.raises(RuntimeError, match="SNS refused"):
        notify_per_policy("change", "ok", CURRENT, key=KEY, open_store=store.open, publish=publish,
                          send_urls=lambda: calls.append("urls") or Sent())
    assert calls == [] and store.fingerprints == {}


def test_the_last_fingerprint_is_read_under_the_key_given():
    store = Store()
    store.fingerprints = {"fleet:prod": CURRENT, KEY: OTHER}
    notified = notify_per_policy("change", "ok", CURRENT, key="fleet:prod", open_store=store.open,
                                 publish=lambda: Sent(), send_urls=None)
    assert not notified.decision.notify and notified.decision.reason == "unchanged since the last delivered report"
