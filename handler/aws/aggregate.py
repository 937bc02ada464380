"""The fleet run's last step (its own Lambda function): merge the batches, store one report, send one message.

    handler(event, context)   the state machine's Aggregate task (infra/template.yaml):
        {"run": <execution name>, "started_at": <execution start, ISO 8601>, "name": <fleet name>,
         "outcome": {"map": <the Map state's output: MapRunArn, ResultWriterDetails>, or
                     "map_error": {"Error", "Cause"} after the Map failed (its Catch)},
         "results": {"bucket", "prefix"} (where the ResultWriter writes this run's files),
         "fleet": {"bucket", "key"} (the fleet list, so an endpoint no batch reported is named)}
    1. read the Map Run's manifest and result files (handler/aws/resultwriter.py); batch reports
       too large for a state's output were stored by the batch and are read from S3
    2. merge them into one fleet report (handler/aws/fleetreport.py); no endpoint vanishes
    3. store it in the report bucket: <REPORT_PREFIX>fleet/<name>/<yyyy/mm/dd/HHMMSS>-<run>.json
    4. one EMF line (UnscannedEndpoints, FailedBatches ...: the template's alarm watches it)
    5. NOTIFY (handler.notifypolicy): always, stale, or change against the fleet's last delivered
       fingerprint (handler.outcome's document_fingerprint, DynamoDB's NotifyState under
       "fleet:<name>"); then one SNS message for the whole run, and the same report to the
       notify URLs (SPYGLASS_NOTIFY, SPYGLASS_NOTIFY_SECRET: handler/aws/notifyurls.py) within
       the time the function has left; the state is recorded only when every URL took it;
       with neither a topic nor a URL nothing is decided ("no SNS_TOPIC_ARN set")

A failure to read the results or to publish fails the invocation, so the state machine's retry
acts and, after it, the execution fails (the ExecutionsFailed alarm). A notify URL that fails
does not (the retry would publish to SNS again): an error line and the NotifyFailures metric.
"""
from __future__ import annotations

import io
import json
import logging
import os
import re
import time
from datetime import datetime, timezone
from typing import Callable

log = logging.getLogger("spyglass.aggregate")

_clients = None


def handler(event, context):
    """The aggregation function's handler (handler.aws.aggregate.handler)."""
    global _clients
    from handler.aws.clients import AwsClients

    if _clients is None:
        _clients = AwsClients()
    return invoke(event, context, env=os.environ, clients=_clients)


def invoke(event, context, *, env, clients, now=time.time, log_stream=None) -> dict:
    """One aggregation with its environment and AWS clients passed in (tests call this)."""
    from handler.aws.lambda_function import remaining_seconds, json_logs
    from handler.aws.notifyurls import with_secret_urls
    from handler.aws.settings import early_log_level, settings_from_env

    run_id = str((event or {}).get("run") or getattr(context, "aws_request_id", "") or "run")
    static = {"scan_id": run_id, "correlation_id": run_id}
    with json_logs(early_log_level(env), log_stream, static):
        try:
            settings = with_secret_urls(settings_from_env(env), clients)
        except Exception as exc:
            log.error("fleet aggregation failed: %s", exc, extra={"error_class": type(exc).__name__})
            raise
    with json_logs(settings.log_level, log_stream, static, settings.notify_urls):
        try:
            return aggregate(event, settings=settings, clients=clients, run_id=run_id, now=now,
                             function_name=getattr(context, "function_name", ""),
                             remaining=lambda: remaining_seconds(context))
        except Exception as exc:
            log.error("fleet aggregation failed: %s", exc, extra={"error_class": type(exc).__name__})
            raise


def aggregate(event: dict, *, settings, clients, run_id: str, now, function_name: str = "",
              remaining: Callable[[], float | None] = lambda: None) -> dict:
    """Steps 1 to 5 of the module docstring; returns what the state machine's next state reads."""
    from handler.aws import metrics
    from handler.aws.fleetreport import merge, resolve_offloaded
    from handler.aws.notifyurls import require_apprise
    from handler.aws.resultwriter import ResultReader

    event = _checked(event)
    require_apprise(settings)  # before the merge: URLs set and no Apprise is a configuration error
    reader = ResultReader(clients.client("s3"))
    results = event["results"]
    outcome = event.get("outcome") or {}
    map_run = reader.map_run(outcome.get("map"), bucket=results["bucket"], prefix=results["prefix"])
    batches = resolve_offloaded(map_run.batches, reader.offloaded)
    expected = _fleet_list(reader, event.get("fleet"))
    map_error = outcome.get("map_error") or None
    run = {"id": run_id, "map_run_arn": map_run.map_run_arn,
           "map_error": _map_error(map_error) if map_error else None}
    doc = merge(event["name"], batches, expected, started_at=_started(event, now), finished_at=now(), run=run)
    location = store_report(clients, settings, doc, run_id)
    metrics.emit_fleet(doc, function_name=function_name, timestamp_ms=round(now() * 1000),
                       properties={"fleet": event["name"], "scan_id": run_id, "status": doc["status"]})
    log.info("fleet report merged", extra={"summary": doc["summary"], "run": doc["run"],
                                          "report_location": location.uri if location else None})
    result = {"run": run_id, "status": doc["status"], "summary": doc["summary"],
              "unscanned_endpoints": doc["run"]["unscanned_endpoints"],
              "report_location": location.uri if location else None}
    return result | notify_once(settings, clients, doc, run_id, location, now, remaining=remaining,
                                function_name=function_name)


def _checked(event) -> dict:
    from handler.aws.settings import InvalidEventError

    problems = []
    if not isinstance(event, dict):
        raise InvalidEventError("invalid aggregation event: expected a JSON object")
    if not isinstance(event.get("name"), str) or not event["name"].strip():
        problems.append("name: required (the fleet's name)")
    results = event.get("results")
    if not isinstance(results, dict) or not isinstance(results.get("bucket"), str) \
            or not isinstance(results.get("prefix"), str):
        problems.append("results: required, {\"bucket\", \"prefix\"}")
    if not isinstance(event.get("outcome", {}), dict):
        problems.append("outcome: the Map state's output ({\"map\"}) or its error ({\"map_error\"})")
    fleet = event.get("fleet")
    if fleet is not None and not (isinstance(fleet, dict) and fleet.get("bucket") and fleet.get("key")):
        problems.append("fleet: {\"bucket\", \"key\"} of the fleet list")
    if problems:
        raise InvalidEventError("invalid aggregation event: " + "; ".join(problems))
    return event


def _fleet_list(reader, location: dict | None) -> list[dict]:
    """The endpoints the run was to scan; unreadable, the check for missing endpoints is skipped (logged)."""
    from engine.errors import SpyglassError

    if not location:
        return []
    try:
        items = reader.offloaded(location)
    except SpyglassError as exc:
        log.warning("fleet list unreadable (%s): endpoints no batch reported cannot be named", exc)
        return []
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _map_error(error: dict) -> str:
    from engine.text import one_line

    return one_line(f"{error.get('Error') or 'Map failed'}: {error.get('Cause') or ''}".rstrip(": "), limit=300)


def _started(event: dict, now) -> float:
    text = event.get("started_at")
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return now()


def store_report(clients, settings, doc: dict, run_id: str):
    """The fleet report in the report bucket; a failed upload is a warning (the message still goes)."""
    from handler.aws.clients import aws_errors, error_code
    from handler.aws.sns import Location

    if not settings.report_bucket:
        log.warning("no REPORT_BUCKET: the fleet report is not stored")
        return None
    started = datetime.fromisoformat(doc["started_at"].replace("Z", "+00:00")).astimezone(timezone.utc)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", doc["name"]).strip("_")[:100] or "fleet"
    run = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)[:80]
    key = f"{settings.report_prefix}fleet/{name}/{started:%Y/%m/%d/%H%M%S}-{run}.json"
    try:
        clients.client("s3").put_object(Bucket=settings.report_bucket, Key=key, Body=json_bytes(doc),
                                        ContentType="application/json")
    except aws_errors() as exc:
        log.warning("store the fleet report in s3://%s/%s failed (%s)", settings.report_bucket, key,
                    error_code(exc))
        return None
    return Location(settings.report_bucket, key)


def json_bytes(doc: dict) -> bytes:
    """The compact JSON of doc, written in pieces: a fleet's report never exists as text and bytes at once."""
    buffer = io.BytesIO()
    writer = io.TextIOWrapper(buffer, encoding="utf-8", write_through=True)
    json.dump(doc, writer, separators=(",", ":"), ensure_ascii=False)
    writer.detach()
    return buffer.getvalue()


def notify_once(settings, clients, doc: dict, run_id: str, location, now, *,
                remaining: Callable[[], float | None] = lambda: None, function_name: str = "") -> dict:
    """The NOTIFY decision (handler.notifypolicy), made once for SNS and the notify URLs, and, when it
    says so, the one message of the run to each; the state is recorded only when every target took it."""
    from handler.aws.dynamodb import DeliveredFingerprints, NotifyState
    from handler.aws.notifyurls import send_urls
    from handler.notifypolicy import Sent, notify_per_policy
    from handler.outcome import document_fingerprint

    pages: list = []  # the HTML page, stored once when the decision says send (its link in every message)

    def page():
        if not pages:
            pages.append(store_page(settings, clients, doc, location, now))
        return pages[0]

    def open_store():
        state = NotifyState(settings.state_table, client=clients.client("dynamodb"))
        return DeliveredFingerprints(state, scan_id=run_id, delivered_at=now, what="fleet report")

    def publish():
        return Sent(_publish(settings, clients, doc, run_id, location, page()))  # raises when SNS did not take it

    def urls():
        where = location.uri if location is not None else f"nowhere: no REPORT_BUCKET (run {run_id})"
        sent = send_urls(settings, doc, scan_id=run_id, where=where, remaining=remaining(),
                         function_name=function_name, now=now, page=page())
        return Sent(sent, took=not sent.get("notify_failed"))

    notified = notify_per_policy(settings.notify, doc["status"], document_fingerprint(doc), key=f"fleet:{doc['name']}",
                                 open_store=open_store, publish=publish if settings.topic_arn else None,
                                 send_urls=urls if settings.notify_urls else None)
    decision = notified.decision
    if decision is None or not decision.notify:
        why = decision.reason if decision is not None else "no SNS_TOPIC_ARN set"
        log.info("notification skipped: %s", why)
        return {"notified": False, "notify_reason": why}
    stored_page = {"report_page": pages[0].uri} if pages and pages[0] is not None else {}
    return {"notified": False, "notify_reason": decision.reason} | stored_page | notified.fields


def store_page(settings, clients, doc: dict, location, now: Callable[[], float]):
    """The fleet report as one HTML page beside its JSON copy, and the presigned link to it (None without
    the JSON copy, or when the upload failed: the messages then go without it)."""
    from engine.report_html import render_html
    from handler.aws.report_page import PageStore

    if location is None:
        return None
    store = PageStore(clients.client("s3"), location.bucket, expires_in=settings.report_link_expiry, clock=now)
    return store.put_beside(location.key, render_html(doc))


def _publish(settings, clients, doc: dict, run_id: str, location, page=None) -> dict:
    """The run's one SNS message (a DeliveryError fails the invocation: the task's retry)."""
    from handler.aws.clients import arn_region
    from handler.aws.fleetreport import message
    from handler.aws.sns import Publisher

    sent = message(doc, run_id=run_id, location=location, page=page)
    publisher = Publisher(clients.client("sns", region=arn_region(settings.topic_arn)), settings.topic_arn)
    message_id = publisher.publish(sent, scan_id=run_id, endpoint=f"fleet:{doc['name']}")
    log.info("fleet report delivered", extra={"message_id": message_id, "bytes": sent.size,
                                             "truncated": sent.truncated})
    return {"notified": True, "message_id": message_id, "message_bytes": sent.size, "truncated": sent.truncated}
