"""One fleet report from a fleet run's batch reports, and the one SNS message that carries it.

    merge    every batch's endpoints, one after the other; every batch's registry request
             counts summed per registry; the fleet summary summed from the endpoints. A batch
             that failed, timed out or never started gives each of its endpoints an entry with
             status "error" and a reason (batch-failed, not-started); an endpoint of the fleet
             list that no batch reported is an entry too (not-scanned): no endpoint vanishes.
             ``run`` says how many batches ran, failed or never started and how many endpoints
             went unscanned.
    message  the subject and attributes name the fleet and its counts; people get the summary,
             the stale images with the hosts that run them and the unscanned endpoints; JSON
             subscribers the fleet report, or (when it is too large for SNS) its summary, as
             many of the endpoints that need a look as fit (each with only its stale and
             errored containers) and where the full report is in S3.

The documents are plain dicts in the report's schema_version 2 shape (docs/report-schema.md).
"""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from typing import Callable, Iterable

from engine.text import one_line
from handler.aws.report_page import PageLink, with_link
from handler.aws.resultwriter import BatchOutcome
from handler.aws.sns import (JSON_PROTOCOLS, MAX_MESSAGE_BYTES, SLACK_BYTES, SUBJECT_MAX, Location, SnsMessage,
                             compact_json, most_that_fit)

CONTAINER_COUNTS = ("scanned", "stale", "fresh", "skipped", "errors", "outdated")
NOT_LISTED = ("unreachable", "error")  # endpoint statuses that mean nothing was listed
UNSCANNED_REASONS = ("batch-failed", "not-started", "not-scanned")  # no batch scanned the endpoint
CAUSE_CHARS = 300
SHOWN = 10  # names in the short variants
MIN_CONTAINER_BYTES = 200  # a container's JSON is larger than this (its id alone is 64 characters)


def merge(name: str, batches: Iterable[BatchOutcome], expected: Iterable[dict] = (), *, started_at: float,
          finished_at: float, run: dict | None = None) -> dict:
    """The fleet report (schema_version 2) of a run whose batches ended as given."""
    batches = list(batches)
    endpoints: list[dict] = []
    registries: dict[str, dict] = {}
    for batch in batches:
        if batch.report is not None:
            endpoints += [e for e in batch.report.get("endpoints") or [] if isinstance(e, dict)]
            _add_registries(registries, batch.report.get("registries") or [])
        else:
            endpoints += [unscanned(item, _batch_reason(batch), _batch_error(batch)) for item in batch.items]
    seen = Counter(e.get("endpoint") for e in endpoints)
    for item in expected:  # the list says who should be there: what no batch reported is not-scanned
        host = item.get("host")
        if seen[host] > 0:
            seen[host] -= 1
        else:
            endpoints.append(unscanned(item, "not-scanned", "no batch of the run reported this endpoint"))
    failed = [b for b in batches if b.report is None]
    return {
        "schema_version": 2, "name": name,
        "started_at": _timestamp(started_at), "finished_at": _timestamp(finished_at),
        "duration_ms": max(0, round((finished_at - started_at) * 1000)),
        "status": _status(endpoints), "summary": _summary(endpoints),
        "registries": list(registries.values()), "endpoints": endpoints,
        "run": {**(run or {}), "batches": len(batches),
                "batches_failed": sum(b.status != "PENDING" for b in failed),
                "batches_not_started": sum(b.status == "PENDING" for b in failed),
                "unscanned_endpoints": sum(e.get("reason") in UNSCANNED_REASONS for e in endpoints)},
    }


def unscanned(item: dict, reason: str, error: str) -> dict:
    """The entry of an endpoint no batch could scan."""
    host = str(item.get("host") or "")
    return {"endpoint": host, "name": str(item.get("name") or host), "status": "error", "reason": reason,
            "error": error, "api_version": None, "summary": dict.fromkeys(CONTAINER_COUNTS, 0), "containers": []}


def _batch_reason(batch: BatchOutcome) -> str:
    return "not-started" if batch.status == "PENDING" else "batch-failed"


def _batch_error(batch: BatchOutcome) -> str:
    """One line: what Step Functions said of the batch (a Lambda error's type and message, not its trace)."""
    cause = batch.cause
    try:
        parsed = json.loads(cause)
        if isinstance(parsed, dict) and parsed.get("errorMessage"):
            cause = f"{parsed.get('errorType') or ''}: {parsed['errorMessage']}".lstrip(": ")
    except ValueError:
        pass
    text = f"batch {batch.name} {batch.status.lower()}: {batch.error}" + (f": {cause}" if cause else "")
    return one_line(text, limit=CAUSE_CHARS)


def _add_registries(merged: dict[str, dict], registries: list) -> None:
    for registry in registries:
        if not isinstance(registry, dict) or "name" not in registry:
            continue
        entry = merged.setdefault(registry["name"], {"name": registry["name"], "requests": {}, "rate_limit": {}})
        for kind, count in (registry.get("requests") or {}).items():
            entry["requests"][kind] = entry["requests"].get(kind, 0) + int(count)
        entry["rate_limit"] = registry.get("rate_limit") or entry["rate_limit"]  # the latest batch's headers


def _summary(endpoints: list[dict]) -> dict:
    totals = {"endpoints": len(endpoints), "unreachable": sum(e.get("status") in NOT_LISTED for e in endpoints)}
    for count in CONTAINER_COUNTS:
        totals[count] = sum(int((e.get("summary") or {}).get(count, 0)) for e in endpoints)
    return totals


def _status(endpoints: list[dict]) -> str:
    summary = _summary(endpoints)
    if summary["errors"] or summary["unreachable"]:
        return "errors"
    return "stale" if summary["stale"] else "ok"


def _timestamp(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# -- the message ------------------------------------------------------------------------------

def message(doc: dict, *, run_id: str, location: Location | None,
            limit: int = MAX_MESSAGE_BYTES - SLACK_BYTES, page: PageLink | None = None) -> SnsMessage:
    """The fleet report as one SNS message; what does not fit is left to the S3 copy (see module doc).
    With ``page`` (the HTML report in the bucket), every variant carries its link: the JSON as
    ``report_page``, the text on its second line."""
    extra = {"report_page": page.to_dict()} if page is not None else {}
    containers = sum(len(e.get("containers") or ()) for e in doc["endpoints"])
    if containers * 4 * MIN_CONTAINER_BYTES < limit:  # else it cannot fit: a fleet's JSON is not built twice
        full = _message(doc, dict(doc, run_id=run_id, truncated=False, **extra), run_id, location,
                        truncated=False, page=page)
        if full.size <= limit:
            return full
    attention = _attention(doc["endpoints"])

    def keeping(count: int) -> SnsMessage:
        short = dict(doc, endpoints=attention[:count], run_id=run_id, truncated=True,
                     omitted_endpoints=len(doc["endpoints"]) - count, **extra)
        if location is not None:
            short["report_location"] = location.to_dict()
        return _message(doc, short, run_id, location, truncated=True, page=page)

    return most_that_fit(keeping, len(attention), limit)  # the most endpoints needing a look that fit


def _attention(endpoints: list[dict]) -> list[dict]:
    """The endpoints that need a look, each with only its stale and errored containers."""
    kept = []
    for endpoint in endpoints:
        containers = [c for c in endpoint.get("containers") or [] if c.get("status") in ("stale", "error")]
        if containers or endpoint.get("status") in NOT_LISTED:
            kept.append(dict(endpoint, containers=containers))
    return kept


def _message(doc: dict, body: dict, run_id: str, location: Location | None, *, truncated: bool,
             page: PageLink | None = None) -> SnsMessage:
    text = with_link(summary_text(doc, run_id, location), page)
    variants = {"default": text, "email": text}
    variants.update(dict.fromkeys(JSON_PROTOCOLS, compact_json(body)))
    return SnsMessage(subject(doc), json.dumps(variants, ensure_ascii=False), attributes(doc, run_id, truncated),
                      truncated, location=location)


def subject(doc: dict) -> str:
    """≤ 99 printable ASCII characters: the fleet's name and its counts."""
    s, unscanned_count = doc["summary"], doc.get("run", {}).get("unscanned_endpoints", 0)
    counts = (f": {s['stale']} stale, {s['errors']} error{'' if s['errors'] == 1 else 's'} of {s['scanned']}"
              f" on {s['endpoints']} hosts" + (f", {unscanned_count} unscanned" if unscanned_count else ""))
    head = "spyglass fleet "
    name = one_line(doc["name"], ascii_only=True)
    room = SUBJECT_MAX - len(head) - len(counts)
    if len(name) > room:
        name = name[:max(0, room - 3)] + "..."
    return (head + name + counts)[:SUBJECT_MAX]


def attributes(doc: dict, run_id: str, truncated: bool) -> dict:
    """Those of a single run's message (handler/aws/sns.py: fleet, the counts, scan_id, truncated), with
    unscanned_count in place of endpoint: ten, SNS's most."""
    s = doc["summary"]
    values = {"fleet": ("String", doc["name"]), "status": ("String", doc["status"]),
              "stale_count": ("Number", str(s["stale"])),
              "error_count": ("Number", str(s["errors"] + s["unreachable"])),
              "scanned_count": ("Number", str(s["scanned"])), "outdated_count": ("Number", str(s["outdated"])),
              "unreachable_count": ("Number", str(s["unreachable"])),
              "unscanned_count": ("Number", str(doc.get("run", {}).get("unscanned_endpoints", 0))),
              "scan_id": ("String", run_id), "truncated": ("String", "true" if truncated else "false")}
    return {name: {"DataType": kind, "StringValue": value} for name, (kind, value) in values.items()}


def summary_text(doc: dict, run_id: str, location: Location | None) -> str:
    """For people: the counts, the stale images with their hosts, the endpoints not scanned."""
    s, run = doc["summary"], doc.get("run", {})
    lines = [f"{doc['name']}: {s['stale']} stale, {s['errors']} errors, {s['outdated']} outdated of "
             f"{s['scanned']} containers on {s['endpoints']} endpoints ({s['unreachable']} not listed)"]
    if run.get("unscanned_endpoints"):
        lines.append(f"{run['unscanned_endpoints']} endpoints went unscanned ({run.get('batches_failed', 0)} "
                     f"batches failed, {run.get('batches_not_started', 0)} not started)")
    for image, hosts in _stale_images(doc["endpoints"])[:SHOWN]:
        names = ", ".join(hosts[:SHOWN]) + (f" and {len(hosts) - SHOWN} more" if len(hosts) > SHOWN else "")
        lines.append(f"{image} is stale on {len(hosts)} of {s['endpoints']} hosts: {names}")
    down = [e for e in doc["endpoints"] if e.get("status") in NOT_LISTED]
    for endpoint in down[:SHOWN]:
        lines.append(f"not listed: {one_line(endpoint.get('name') or '', ascii_only=True)} "
                     f"({endpoint.get('reason') or 'error'}): {one_line(endpoint.get('error') or '', limit=160)}")
    if len(down) > SHOWN:
        lines.append(f"... and {len(down) - SHOWN} more endpoints not listed")
    if location is not None:
        lines.append(f"Full report: {location.uri}")
    lines.append(f"run {run_id}")
    return "\n".join(lines) + "\n"


def _stale_images(endpoints: list[dict]) -> list[tuple[str, list[str]]]:
    """(image, hosts running it stale), the most widespread first."""
    hosts: dict[str, list[str]] = {}
    for endpoint in endpoints:
        for container in endpoint.get("containers") or []:
            if container.get("status") == "stale":
                names = hosts.setdefault(one_line(container.get("image") or "", ascii_only=True), [])
                host = one_line(endpoint.get("name") or endpoint.get("endpoint") or "", ascii_only=True)
                if host not in names:
                    names.append(host)
    return sorted(hosts.items(), key=lambda pair: (-len(pair[1]), pair[0]))


def resolve_offloaded(batches: list[BatchOutcome], load: Callable[[dict], dict]) -> list[BatchOutcome]:
    """Batches whose output points at a report in S3, with that report read in (a failed read: the
    batch's endpoints are reported as not scanned, with why)."""
    from dataclasses import replace

    from engine.errors import SpyglassError

    resolved = []
    for batch in batches:
        location = (batch.report or {}).get("report_location")
        if batch.report is not None and isinstance(location, dict) and "endpoints" not in batch.report:
            try:
                batch = replace(batch, report=load(location))
            except (SpyglassError, KeyError) as exc:
                batch = replace(batch, report=None, error="spyglass.ReportUnreadable", cause=str(exc))
        resolved.append(batch)
    return resolved
