"""What a run ends with, the same in the CLI, the Action and the Lambda: exit codes and notify policies.

    exit codes  0 the scan completed; 1 fail-on-stale / fail-on-error found what it looks for (for
                `spyglass update`: a container rolled back or failed);
                2 usage or configuration error; 3 no endpoint could be listed;
                4 a notification URL did not take the message and fail-on-notify-error is set
                (1 wins when both apply); 130 interrupted
    policies    always  every scan is published
                stale   only when something is stale or errored (status stale or errors)
                change  only when the stale or errored set differs from the last delivered report;
                        it needs stored state: the Lambda's DynamoDB table, the state file of the
                        CLI and the Action (handler.delivery; the Action's carried by actions/cache)
    fingerprint what `change` compares, over the whole fleet: a digest of the stale containers
                (by endpoint, name and remote digest), the errored ones (by endpoint, name and
                reason), the newer versions proposed (by endpoint, name and proposal) and the
                endpoints not listed (by address and reason), so the order of endpoints and
                containers, fresh ones coming and going, and timings never count as a change
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Mapping

from engine.errors import DaemonError
from engine.report import ERROR, STALE, Report

EXIT_OK = 0
EXIT_FOUND = 1
EXIT_CONFIG = 2
EXIT_UNREACHABLE = 3
EXIT_NOTIFY = 4
EXIT_INTERRUPTED = 130

NOTIFY_POLICIES = ("always", "stale", "change")


@dataclass(frozen=True)
class Decision:
    notify: bool
    reason: str


def decide(policy: str, status: str, current: str = "", last: str | None = None) -> Decision:
    """Whether to publish; ``current`` and ``last`` are fingerprints (last None: never delivered)."""
    if policy == "always":
        return Decision(True, "always")
    if policy == "stale":
        return Decision(status != "ok", status if status != "ok" else "nothing stale or errored")
    if last is None:
        return Decision(True, "first report for this fleet")
    if current != last:
        return Decision(True, "stale, errored or outdated containers or unlisted endpoints changed")
    return Decision(False, "unchanged since the last delivered report")


def ensure_listed(report: Report) -> Report:
    """The report, or DaemonError (exit 3) when not one endpoint of the run could be listed."""
    if report.listed_any or not report.endpoints:
        return report
    if len(report.endpoints) == 1:
        raise DaemonError(report.endpoints[0].error or report.endpoints[0].status, reason=report.endpoints[0].reason)
    reasons = "; ".join(f"{e.display_name}: {e.reason}" for e in report.endpoints[:10])
    more = f"; and {len(report.endpoints) - 10} more" if len(report.endpoints) > 10 else ""
    raise DaemonError(f"no endpoint of {report.name} could be listed: {reasons}{more}")


def found(summary: Mapping[str, int], *, fail_on_stale: bool, fail_on_error: bool,
          fail_on_outdated: bool = False) -> str | None:
    """Why the run exits EXIT_FOUND ("stale", "errors" or "outdated"), or None; an endpoint not
    listed counts as an error."""
    if fail_on_stale and summary["stale"]:
        return "stale"
    if fail_on_error and (summary["errors"] or summary.get("unreachable")):
        return "errors"
    if fail_on_outdated and summary.get("outdated"):
        return "outdated"
    return None


def update_found(report: Report) -> bool:
    """Whether an update run exits EXIT_FOUND: a container rolled back or failed."""
    counts = action_counts(report)
    return bool(counts.get("rolled-back") or counts.get("failed"))


def action_counts(report: Report) -> dict[str, int]:
    """Containers per update action (updated, rolled-back...); empty for a scan."""
    counts: dict[str, int] = {}
    for container in report.containers:
        if container.action is not None:
            counts[container.action.action] = counts.get(container.action.action, 0) + 1
    return counts


def fingerprint(report: Report, *, endpoint_failed: bool = False) -> str:
    """The digest `change` compares with the last delivered one (the same for DynamoDB and the state file).

    endpoint_failed: the run could not scan at all (a fleet of one whose endpoint was not listed
    counts the same through its endpoint entry; the flag stays for callers that know it apart).
    """
    placed = report.placed()
    stale = sorted([e.endpoint, c.name, c.remote_digest or ""] for e, c in placed if c.status == STALE)
    errors = sorted([e.endpoint, c.name, c.reason or ""] for e, c in placed if c.status == ERROR)
    outdated = sorted([e.endpoint, c.name, c.newer.to_dict()] for e, c in placed if c.outdated)
    unlisted = sorted([e.endpoint, e.reason or ""] for e in report.unlisted)
    failed = endpoint_failed or (bool(report.endpoints) and not report.listed_any)
    text = json.dumps({"stale": stale, "errors": errors, "outdated": outdated, "unlisted": unlisted,
                       "endpoint_failed": failed}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def document_fingerprint(doc: Mapping[str, Any]) -> str:
    """fingerprint() of the report whose JSON document (schema_version 2) doc is; ReportDocumentError
    when doc is not one."""
    return fingerprint(Report.from_dict(doc))
