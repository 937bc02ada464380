"""NOTIFY=always|stale|change: the decision and the fingerprint it compares."""
from __future__ import annotations

from dataclasses import replace

import pytest

from handler.outcome import decide, fingerprint

from .reports import container, fleet_report


def test_the_fingerprint_ignores_order_timing_and_fresh_containers():
    report = fleet_report({"fresh": 3, "stale": 2, "error": 1})
    shuffled = replace(report, containers=tuple(reversed(report.containers)), finished_at=report.finished_at + 9)
    fewer_fresh = replace(report, containers=report.containers[1:])
    assert fingerprint(report) == fingerprint(shuffled) == fingerprint(fewer_fresh)


@pytest.mark.parametrize("change", [
    lambda cs: cs + (container(99, "stale"),),                         # a new stale container
    lambda cs: cs[:3] + (replace(cs[3], remote_digest="sha256:" + "0" * 64),) + cs[4:],  # the tag moved again
    lambda cs: cs[:5] + (replace(cs[5], reason="unauthorized"),),      # another error
    lambda cs: cs[:3] + cs[4:],                                         # a stale one was updated
])
def test_the_fingerprint_changes_with_the_stale_or_errored_sets(change):
    report = fleet_report({"fresh": 3, "stale": 2, "error": 1})
    assert fingerprint(report) != fingerprint(replace(report, containers=change(report.containers)))


def test_an_endpoint_failure_is_its_own_state():
    report = fleet_report({})
    assert fingerprint(report) != fingerprint(report, endpoint_failed=True)


@pytest.mark.parametrize("policy, status, current, last, notify", [
    ("always", "ok", "a", "a", True),
    ("stale", "ok", "a", None, False),
    ("stale", "stale", "a", "a", True),
    ("stale", "errors", "a", "a", True),
    ("change", "ok", "a", None, True),
    ("change", "stale", "a", "a", False),
    ("change", "ok", "a", "b", True),
])
def test_decide(policy, status, current, last, notify):
    assert decide(policy, status, current, last).notify is notify
