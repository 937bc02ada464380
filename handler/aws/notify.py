"""When a scan is worth a message: NOTIFY=always, stale or change (the policies: handler.outcome).

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

from engine.report import ERROR, STALE, Report
from handler.outcome import Decision, decide  # noqa: F401  # the Lambda's names for the one decision

__all__ = ["Decision", "decide", "fingerprint"]


def fingerprint(report: Report, *, endpoint_failed: bool = False) -> str:
    stale = sorted([c.name, c.remote_digest or ""] for c in report.containers if c.status == STALE)
    errors = sorted([c.name, c.reason or ""] for c in report.containers if c.status == ERROR)
    text = json.dumps({"stale": stale, "errors": errors, "endpoint_failed": endpoint_failed}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
