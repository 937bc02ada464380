"""One SNS message per scan, whatever the report's size; nothing lost when SNS will not take it.

The message uses MessageStructure=json:
    default                   a short summary for people (and protocols not listed below)
    email                     the text table
    sqs, lambda, http, https  the JSON report (engine/report.schema.json, version 2: the fleet with its
                              endpoints) plus scan_id and truncated

SNS counts every variant, the subject and the attributes against 256 KiB. When
the whole is larger, the full JSON report goes to S3 (when a bucket is set) and
the message keeps the summary, the stale and errored containers and the
object's location, with ``truncated: true``; if even those do not fit, as many
as fit are kept and ``omitted_containers`` says how many are left out. When the
HTML report was stored in the bucket (handler/aws/report_page.py), every variant
carries its presigned link. Subscribers
can filter on the attributes fleet, status, stale_count, error_count, unreachable_count (and
endpoint, the address, for a fleet of one; and, for an update run, updated_count and
rolled_back_count).

Publishing is one call: botocore retries it on throttling, 5xx answers and
connection errors (standard mode, ``MAX_ATTEMPTS`` attempts with jittered
backoff, configured where the client is built: handler/aws/clients.py); there is
no loop of our own on top. When it still fails the full report is written to the
log (in parts small enough for CloudWatch) and DeliveryError is raised, so
Lambda's retry and on-failure destination take over. The scan id in the message
lets subscribers drop repeats.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Callable

from engine.errors import SpyglassError
from engine.report import ERROR, STALE, Report, render_text, summary_line
from engine.text import one_line
from handler.aws.clients import aws_errors, error_code, is_temporary
from handler.aws.report_page import PageLink, with_link
from handler.aws.settings import Location
from handler.outcome import action_counts

log = logging.getLogger("spyglass.aws")

MAX_MESSAGE_BYTES = 262_144  # SNS: message, subject and attributes together
SLACK_BYTES = 512  # head-room for SNS's own accounting
SUBJECT_MAX = 99  # SNS: "less than 100 characters"
JSON_PROTOCOLS = ("sqs", "lambda", "http", "https")
LOG_LINE_BYTES = 200_000  # CloudWatch cuts log events at 256 KiB
SUMMARY_NAMES = 10


class DeliveryError(SpyglassError):
    reason = "delivery"

    def __init__(self, message: str, *, temporary: bool = False):
        super().__init__(message)
        self.temporary = temporary


@dataclass(frozen=True)
class SnsMessage:
    subject: str
    message: str  # the MessageStructure=json document
    attributes: dict
    truncated: bool = False
    omitted: int = 0
    location: Location | None = None

    @property
    def size(self) -> int:
        attributes = sum(len(name.encode()) + len(a["DataType"]) + len(a["StringValue"].encode())
                         for name, a in self.attributes.items())
        return len(self.message.encode()) + len(self.subject.encode()) + attributes


@dataclass(frozen=True)
class Delivery:
    message_id: str
    size: int
    truncated: bool
    omitted: int
    location: Location | None


# -- the message ---------------------------------------------------------------

def report_document(report: Report, scan_id: str, *, failure: str | None = None) -> dict:
    """The JSON report subscribers receive: the schema's document plus scan_id and truncated."""
    doc = report.to_dict()
    doc["scan_id"] = scan_id
    doc["truncated"] = False
    if failure is not None:
        doc["status"] = "errors"
        doc["error"] = failure
    return doc


def compose(report: Report, scan_id: str, *, failure: str | None = None,
            offload: Callable[[str], Location | None] | None = None,
            limit: int = MAX_MESSAGE_BYTES - SLACK_BYTES, page: PageLink | None = None) -> SnsMessage:
    """The whole report if it fits; otherwise offload it and keep what matters (see module doc).

    With ``page`` (the HTML report in the bucket), every variant carries its link: the JSON as
    ``report_page``, the summary and the e-mail on their second line."""
    doc = report_document(report, scan_id, failure=failure)
    if page is not None:
        doc["report_page"] = page.to_dict()
    full = _message(report, doc, _email(report, report.ordered(), scan_id, failure), scan_id, failure, page=page)
    if full.size <= limit:
        return full
    location = offload(compact_json(doc)) if offload is not None else None
    attention = [c for c in report.ordered() if c.status in (STALE, ERROR)]

    def keeping(count: int) -> SnsMessage:
        kept = attention[:count]
        omitted = len(report.containers) - count
        short = dict(doc, endpoints=_endpoints_keeping(doc, report, kept), truncated=True,
                     omitted_containers=omitted)
        if location is not None:
            short["report_location"] = location.to_dict()
        email = _email(report, kept, scan_id, failure, omitted=omitted, location=location)
        return replace(_message(report, short, email, scan_id, failure, truncated=True, page=page),
                       omitted=omitted, location=location)

    return most_that_fit(keeping, len(attention), limit)  # the most containers that fit


def most_that_fit(keeping: Callable[[int], SnsMessage], most: int, limit: int) -> SnsMessage:
    """keeping(count) for the largest count up to most whose message fits limit bytes (a binary
    search: a message grows with count); keeping(0) is taken to fit."""
    best = keeping(most)
    if best.size <= limit:
        return best
    low, high = 0, most - 1
    while low < high:
        middle = (low + high + 1) // 2
        if keeping(middle).size <= limit:
            low = middle
        else:
            high = middle - 1
    return keeping(low)


def _endpoints_keeping(doc: dict, report: Report, kept: list) -> list[dict]:
    """The document's endpoints with only the kept containers (their summaries stay whole)."""
    chosen = {id(c) for c in kept}
    return [dict(entry, containers=[c.to_dict() for c in endpoint.ordered() if id(c) in chosen])
            for entry, endpoint in zip(doc["endpoints"], report.endpoints)]


def compact_json(doc: dict) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def _message(report: Report, doc: dict, email: str, scan_id: str, failure: str | None, *,
             truncated: bool = False, page: PageLink | None = None) -> SnsMessage:
    body = compact_json(doc)
    variants = {"default": with_link(_summary(report, scan_id, failure), page), "email": with_link(email, page)}
    variants.update({protocol: body for protocol in JSON_PROTOCOLS})
    return SnsMessage(subject(report, failure), json.dumps(variants, ensure_ascii=False),
                      attributes(report, scan_id, failure, truncated), truncated)


def subject(report: Report, failure: str | None = None) -> str:
    """≤ 99 printable ASCII characters naming the fleet (or the endpoint) and the counts."""
    s = report.summary
    counts = "cannot scan" if failure is not None or not report.listed_any else (
        f"{s['stale']} stale, {s['errors']} error{'' if s['errors'] == 1 else 's'} of {s['scanned']}"
        + (f" on {s['endpoints']} hosts" if s["endpoints"] > 1 else "")
        + (f", {s['unreachable']} not listed" if s["unreachable"] else ""))
    head, tail = "spyglass ", f": {counts}"
    name = one_line(re.sub(r"^tcp://", "", report.name), ascii_only=True)
    room = SUBJECT_MAX - len(head) - len(tail)
    if len(name) > room:
        keep = room - 3
        name = name[: keep - keep // 2] + "..." + name[len(name) - keep // 2:]
    return head + name + tail


def attributes(report: Report, scan_id: str, failure: str | None, truncated: bool) -> dict:
    """What subscribers filter on (SNS takes 10 attributes at most); ``endpoint`` only for a fleet of
    one (its address)."""
    s = report.summary
    status = "errors" if failure is not None else report.status
    unlisted = max(s["unreachable"], 1 if failure is not None else 0)
    values = {"fleet": ("String", report.name), "status": ("String", status),
              "stale_count": ("Number", str(s["stale"])),
              "error_count": ("Number", str(s["errors"] + unlisted)),
              "scanned_count": ("Number", str(s["scanned"])), "outdated_count": ("Number", str(s["outdated"])),
              "unreachable_count": ("Number", str(unlisted)),
              "scan_id": ("String", scan_id),
              "truncated": ("String", "true" if truncated else "false")}
    if len(report.endpoints) == 1:
        values["endpoint"] = ("String", report.endpoints[0].endpoint)
    actions = action_counts(report)
    if actions:  # an update run (APPLY): what it did, for a subscription filter
        values["updated_count"] = ("Number", str(actions.get("updated", 0)))
        values["rolled_back_count"] = ("Number", str(actions.get("rolled-back", 0)))
    return {name: {"DataType": kind, "StringValue": value} for name, (kind, value) in values.items()}


def _summary(report: Report, scan_id: str, failure: str | None) -> str:
    if failure is not None:
        return f"spyglass: cannot scan {report.name}: {failure}\nscan {scan_id}\n"
    lines = [summary_line(report)]
    fleet = len(report.endpoints) > 1
    for status, label in ((STALE, "Stale"), (ERROR, "Errors")):
        found = [(e, c) for e, c in report.placed() if c.status == status]
        if found:
            names = ", ".join(one_line(c.name, ascii_only=True)
                              + (f" on {one_line(e.display_name, 80, ascii_only=True)}" if fleet else "")
                              + (f" ({c.reason})" if status == ERROR and c.reason else "")
                              for e, c in found[:SUMMARY_NAMES])
            more = f" and {len(found) - SUMMARY_NAMES} more" if len(found) > SUMMARY_NAMES else ""
            lines.append(f"{label}: {names}{more}")
    if report.unlisted:
        names = ", ".join(one_line(f"{e.display_name} ({e.reason})", 120, ascii_only=True)
                          for e in report.unlisted[:SUMMARY_NAMES])
        more = f" and {len(report.unlisted) - SUMMARY_NAMES} more" if len(report.unlisted) > SUMMARY_NAMES else ""
        lines.append(f"Not listed: {names}{more}")
    lines.append(f"scan {scan_id}")
    return "\n".join(lines) + "\n"


def _email(report: Report, shown: list, scan_id: str, failure: str | None, *, omitted: int = 0,
           location: Location | None = None) -> str:
    if failure is not None:
        return _summary(report, scan_id, failure)
    lines = [summary_line(report), ""]
    if omitted:
        lines.append(f"{len(shown)} stale or errored containers shown, {omitted} left out of this message.")
        lines.append(f"Full report: {location.uri}" if location else
                     "The full report was too large to send; a report bucket would keep it.")
        lines.append("")
    if shown or report.unlisted:
        lines += render_text(report.keeping(shown)).splitlines()[2:]
    lines += ["", f"scan {scan_id}"]
    return "\n".join(lines) + "\n"


# -- S3 offload ------------------------------------------------------------------

class S3Offload:
    """Uploads full reports that are too large for SNS; a failed upload costs the link, not the message."""

    def __init__(self, client, bucket: str, prefix: str = "reports/"):
        self._client = client
        self._bucket = bucket
        self._prefix = prefix

    def key_for(self, report: Report, scan_id: str) -> str:
        when = datetime.fromtimestamp(report.started_at, tz=timezone.utc)
        endpoint = re.sub(r"[^A-Za-z0-9._-]+", "_", report.name).strip("_")[:200] or "endpoint"
        return f"{self._prefix}{endpoint}/{when:%Y/%m/%d/%H%M%S}-{scan_id}.json"

    def upload(self, text: str, report: Report, scan_id: str) -> Location | None:
        key = self.key_for(report, scan_id)
        try:
            self._client.put_object(Bucket=self._bucket, Key=key, Body=text.encode(),
                                    ContentType="application/json")
        except aws_errors() as exc:
            log.warning("upload the full report to s3://%s/%s failed (%s); it follows in the log",
                        self._bucket, key, error_code(exc))
            log_full_report(json.loads(text), why="report not uploaded", level=logging.WARNING)
            return None
        log.info("full report uploaded", extra={"report_location": f"s3://{self._bucket}/{key}",
                                                "bytes": len(text.encode())})
        return Location(self._bucket, key)


# -- publishing ------------------------------------------------------------------

class Publisher:
    """SNS Publish, retried by botocore alone (the client's retry configuration, see clients.py)."""

    def __init__(self, client, topic_arn: str):
        self._client = client
        self.topic_arn = topic_arn

    def publish(self, message: SnsMessage, *, scan_id: str, endpoint: str) -> str:
        request = {"TopicArn": self.topic_arn, "Message": message.message, "MessageStructure": "json",
                   "Subject": message.subject, "MessageAttributes": message.attributes}
        if self.topic_arn.endswith(".fifo"):
            request["MessageGroupId"] = "spyglass-" + hashlib.sha256(endpoint.encode()).hexdigest()[:32]
            request["MessageDeduplicationId"] = re.sub(r"[^A-Za-z0-9_-]", "-", scan_id)[:128]
        try:
            return self._client.publish(**request)["MessageId"]
        except aws_errors() as exc:
            raise DeliveryError(f"publish to {self.topic_arn}: {error_code(exc)}",
                               temporary=is_temporary(exc)) from None


def deliver(report: Report, *, scan_id: str, publisher: Publisher, offload: S3Offload | None = None,
            failure: str | None = None, page: PageLink | None = None) -> Delivery:
    """Compose and publish; on failure log the full report and raise DeliveryError."""
    uploader = (lambda text: offload.upload(text, report, scan_id)) if offload is not None else None
    message = compose(report, scan_id, failure=failure, offload=uploader, page=page)
    try:
        message_id = publisher.publish(message, scan_id=scan_id, endpoint=report.name)
    except DeliveryError as exc:
        log.error("%s; the full report follows in the log", exc, extra={"scan_id": scan_id})
        log_full_report(report_document(report, scan_id, failure=failure), why="report not delivered")
        raise
    log.info("report delivered", extra={"message_id": message_id, "bytes": message.size,
                                        "truncated": message.truncated, "omitted_containers": message.omitted,
                                        "report_location": message.location.uri if message.location else None,
                                        "scan_id": scan_id})
    return Delivery(message_id, message.size, message.truncated, message.omitted, message.location)


def log_full_report(doc: dict, *, why: str, level: int = logging.ERROR) -> None:
    """The report as structured log lines, split by containers so no line exceeds CloudWatch's limit.

    Each part is a report document whose endpoints carry a share of their containers (an endpoint
    with many containers spans parts; every part names it with its summary)."""
    head = {k: v for k, v in doc.items() if k != "endpoints"}
    base = len(compact_json(head))
    parts: list[list[dict]] = [[]]
    size = base
    for endpoint in doc.get("endpoints", []):
        entry = dict(endpoint, containers=[])
        cost = len(compact_json(entry).encode()) + 1
        if parts[-1] and size + cost > LOG_LINE_BYTES:
            parts.append([])
            size = base
        parts[-1].append(entry)
        size += cost
        for container in endpoint.get("containers", []):
            cost = len(compact_json(container).encode()) + 1
            if size + cost > LOG_LINE_BYTES and (len(parts[-1]) > 1 or entry["containers"]):
                if not entry["containers"]:  # its header moves on with its first container
                    parts[-1].pop()
                entry = dict(endpoint, containers=[])
                parts.append([entry])
                size = base + len(compact_json(entry).encode()) + 1
            entry["containers"].append(container)
            size += cost
    for number, endpoints in enumerate(parts, 1):
        log.log(level, "%s: full report (part %d of %d)", why, number, len(parts),
                extra={"report": dict(head, endpoints=endpoints), "part": number, "parts": len(parts)})


def publish_report(report: Report, *, topic_arn: str, bucket: str = "", prefix: str = "reports/",
                   scan_id: str | None = None, clients=None) -> Delivery:
    """One call for the CLI's --sns-topic-arn: the same message and rules as the Lambda."""
    from handler.aws.clients import AwsClients, arn_region

    clients = clients or AwsClients()
    offload = S3Offload(clients.client("s3"), bucket, prefix) if bucket else None
    sns = clients.client("sns", region=arn_region(topic_arn))
    return deliver(report, scan_id=scan_id or str(uuid.uuid4()), publisher=Publisher(sns, topic_arn),
                   offload=offload)
