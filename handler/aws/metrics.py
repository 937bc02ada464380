"""The function's CloudWatch metrics: one embedded metric format (EMF) line per scan.

CloudWatch Logs reads a log line that is a JSON object with an ``_aws.CloudWatchMetrics``
directive and records the members it names as metrics, so the function publishes its metrics
without an API call, a permission or a client. The line goes to stdout beside the JSON logs.

    {"_aws": {"Timestamp": <ms>, "CloudWatchMetrics": [{"Namespace": "spyglass",
              "Dimensions": [["FunctionName"]], "Metrics": [{"Name": "Stale", "Unit": "Count"}, ...]}]},
     "FunctionName": "...", "Stale": 2, ..., "endpoint": "...", "scan_id": "..."}

The only dimension is the function: an endpoint or container dimension would make one custom
metric (and one bill line) per host or container. The endpoint and scan id ride along as plain
members, for Logs Insights, without becoming dimensions.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass

NAMESPACE = "spyglass"
DIMENSION = "FunctionName"


# metric name, ScanMetrics field, CloudWatch unit
METRICS = (("Stale", "stale", "Count"), ("Errors", "errors", "Count"), ("Scanned", "scanned", "Count"),
           ("UnreachableEndpoints", "unreachable_endpoints", "Count"), ("Duration", "duration_ms", "Milliseconds"),
           ("RegistryRequests", "registry_requests", "Count"))


@dataclass(frozen=True)
class ScanMetrics:
    """What one scan counts: containers stale and in error, containers scanned, the endpoints that
    could not be listed, the scan's duration and its requests to registries."""

    stale: int
    errors: int
    scanned: int
    unreachable_endpoints: int
    duration_ms: int
    registry_requests: int

    @classmethod
    def of(cls, report, *, endpoint_failed: bool) -> ScanMetrics:
        summary = report.summary
        requests = sum(sum(registry.requests.values()) for registry in report.registries)
        return cls(stale=summary["stale"], errors=summary["errors"], scanned=summary["scanned"],
                   unreachable_endpoints=summary["unreachable"] or int(endpoint_failed), duration_ms=report.duration_ms,
                   registry_requests=requests)


def emf_document(metrics: ScanMetrics, *, function_name: str, timestamp_ms: int, properties: dict) -> dict:
    """The EMF object: plain properties, the directive, the dimension's value and each metric's value."""
    return emf([(name, getattr(metrics, field), unit) for name, field, unit in METRICS],
               function_name=function_name, timestamp_ms=timestamp_ms, properties=properties)


def emf(values: list[tuple[str, int, str]], *, function_name: str, timestamp_ms: int, properties: dict) -> dict:
    """An EMF object for (metric name, value, unit) triples under the one FunctionName dimension."""
    directive = {"Namespace": NAMESPACE, "Dimensions": [[DIMENSION]],
                 "Metrics": [{"Name": name, "Unit": unit} for name, _, unit in values]}
    return {**properties, "_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": [directive]},
            DIMENSION: function_name or "unknown", **{name: value for name, value, _ in values}}


def emit_fleet(doc: dict, *, function_name: str, timestamp_ms: int, properties: dict, stream=None) -> None:
    """The fleet run's EMF line, written by the aggregation step: UnscannedEndpoints is what the
    template's alarm on a fleet run with failed batches watches."""
    summary, run = doc["summary"], doc.get("run", {})
    values = [("FleetEndpoints", summary["endpoints"], "Count"),
              ("UnscannedEndpoints", run.get("unscanned_endpoints", 0), "Count"),
              ("FailedBatches", run.get("batches_failed", 0) + run.get("batches_not_started", 0), "Count"),
              ("Stale", summary["stale"], "Count"), ("Errors", summary["errors"], "Count"),
              ("UnreachableEndpoints", summary["unreachable"], "Count")]
    document = emf(values, function_name=function_name, timestamp_ms=timestamp_ms,
                   properties={"message": "fleet metrics", **properties})
    print(json.dumps(document, ensure_ascii=False), file=stream or sys.stdout, flush=True)


def emit(report, *, endpoint_failed: bool, function_name: str, properties: dict, stream=None) -> None:
    """Write the scan's EMF line (stdout by default, which Lambda sends to the function's log group)."""
    metrics = ScanMetrics.of(report, endpoint_failed=endpoint_failed)
    document = emf_document(metrics, function_name=function_name, timestamp_ms=round(report.finished_at * 1000),
                            properties={"message": "scan metrics", **properties})
    print(json.dumps(document, ensure_ascii=False), file=stream or sys.stdout, flush=True)


def emit_notify_failures(failed: int, *, function_name: str, timestamp_ms: int, properties: dict,
                         stream=None) -> None:
    """NotifyFailures: notify URLs that did not take the message. A line of its own, written after
    the sends, so the scan's metrics are out before any delivery could go wrong; the template's
    NotifyFailedAlarm watches it (in Lambda a failed URL never fails the invocation: Lambda's
    retry would run the scan again and publish to SNS twice)."""
    document = emf([("NotifyFailures", failed, "Count")], function_name=function_name,
                   timestamp_ms=timestamp_ms, properties={"message": "notify metrics", **properties})
    print(json.dumps(document, ensure_ascii=False), file=stream or sys.stdout, flush=True)
