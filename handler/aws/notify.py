"""When a scan is worth a message: NOTIFY=always, stale or change (handler.outcome holds the rules).

    always  every scan
    stale   when something is stale or errored (status stale or errors)
    change  when the set of stale containers (by name and remote digest), the set
            of errored containers (by name and reason) or the endpoint's own
            reachability differs from the last delivered report for the endpoint;
            the first scan of an endpoint always notifies

The fingerprint (handler.outcome.fingerprint) is shared with the CLI's local state
file, so both places count the same things as a change.
"""
from __future__ import annotations

from handler.outcome import Decision, decide, fingerprint  # noqa: F401  # the Lambda's names for the one decision

__all__ = ["Decision", "decide", "fingerprint"]
