"""NOTIFY=always|stale|change: the decision and the fingerprint it compares."""
from __future__ import annotations

from dataclasses import replace

import pytest

from handler.outcome import decide, fingerprint

from tests.reportdoc import with_containers

from .reports import container, fleet_report


def test_the_fingerprint_ignores_order_timing_and_fresh_containers():
    report = fleet_report({"fresh": 3, "stale": 2, "error": 1})
    shuffled = replace(with_containers(report, reversed(report.containers)), finished_at=report.finished_at + 9)
    fewer_fresh = with_containers(report, report.containers[1:])
    assert fingerprint(report) == fingerprint(shuffled) == fingerprint(fewer_fresh)


@pytest.mark.parametrize("change", [
    lambda cs: cs + (container(99, "stale"),),                         # a new stale container
    lambda cs: cs[:3] + (replace(cs[3], remote_digest="sha256:" + "0" * 64),) + cs[4:],  # the tag moved again
    lambda cs: cs[:5] + (replace(cs[5], reason="unauthorized"),),      # another error
    lambda cs: cs[:3] + cs[4:],                                         # a stale one was updated
])
def test_the_fingerprint_changes_with_the_stale_or_errored_sets(change):
    report = fleet_report({"fresh": 3, "stale": 2, "error": 1})
    assert fingerprint(report) != fingerprint(with_containers(report, change(report.containers)))


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


def test_the_fingerprint_changes_when_a_newer_version_is_proposed():
    from engine.versions import Newer

    report = fleet_report({"fresh": 3})
    first = report.containers[0]
    proposed = with_containers(report, (replace(first, newer=Newer(minor="1.9.0")),) + report.containers[1:])
    later = with_containers(report, (replace(first, newer=Newer(minor="1.10.0")),) + report.containers[1:])
    assert len({fingerprint(report), fingerprint(proposed), fingerprint(later)}) == 3


def test_the_fingerprint_covers_the_fleet_endpoint_by_endpoint():
    from engine.report import UNREACHABLE, EndpointResult

    one = fleet_report({"stale": 1}).endpoints[0]
    other = replace(one, endpoint="tcp://docker-02.example.net:2376")
    down = EndpointResult("tcp://docker-03.example.net:2376", failure=UNREACHABLE, reason="timeout", error="t")
    base = fleet_report({})
    moved = replace(base, endpoints=(other, replace(one, containers=())))
    assert fingerprint(replace(base, endpoints=(one, other))) != fingerprint(moved)  # the same names elsewhere
    assert fingerprint(replace(base, endpoints=(one, other))) == fingerprint(replace(base, endpoints=(other, one)))
    assert fingerprint(replace(base, endpoints=(one, down))) != fingerprint(replace(base, endpoints=(one,)))
