"""When a scan is worth a message: NOTIFY=always, stale or change.

    always  every scan
    stale   when something is stale or errored (status stale or errors)
    change  when the set of stale containers (by name and remote digest), the set
            of errored containers (by name and reason) or the endpoint's own
            reachability differs from the last delivered report for the endpoint;
            the first scan of an endpoint always notifies

The fingerprint is a digest of exactly those sets, so the order of containers,
fresh ones coming and going, and timings never count as a change.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from engine.report import ERROR, STALE, Report


@dataclass(frozen=True)
class Decision:
    notify: bool
    reason: str


def fingerprint(report: Report, *, endpoint_failed: bool = False) -> str:
    stale = sorted([c.name, c.remote_digest or ""] for c in report.containers if c.status == STALE)
    errors = sorted([c.name, c.reason or ""] for c in report.containers if c.status == ERROR)
    text = json.dumps({"stale": stale, "errors": errors, "endpoint_failed": endpoint_failed}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def decide(policy: str, status: str, current: str, last: str | None) -> Decision:
    """Whether to publish; ``current`` and ``last`` are fingerprints (last None: never delivered)."""
    if policy == "always":
        return Decision(True, "always")
    if policy == "stale":
        return Decision(status != "ok", status if status != "ok" else "nothing stale or errored")
    if last is None:
        return Decision(True, "first report for this endpoint")
    if current != last:
        return Decision(True, "stale or errored containers changed")
    return Decision(False, "unchanged since the last delivered report")
