"""The AWS Lambda entry point: one invocation scans one Docker endpoint and publishes one report.

    handler(event, context)
      1. settings from the environment; the event may override the endpoint's fields
         (an EventBridge scheduled event carries none: the environment's endpoint)
      2. TLS material from Secrets Manager or SSM into a private folder, registry
         credentials from a secret (in memory), ECR through the function's role
      3. scan, bounded by the time Lambda leaves minus SPYGLASS_DELIVERY_MARGIN; with APPLY, the update
         after it within the same time (a container whose update could not finish is not started)
      4. NOTIFY policy (always, stale, change against the state in DynamoDB)
      5. with a report bucket, the HTML report beside the JSON report's key and a presigned
         link to it (SPYGLASS_REPORT_LINK_EXPIRY) for the messages below
         publish to SNS (S3 for large reports); on failure the report goes to the log
         and the invocation fails, so Lambda's retry and on-failure destination act
      6. send to the SPYGLASS_NOTIFY URLs (Apprise, handler/aws/notifyurls.py) within the time
         left; a URL that fails is an error in the log and in the result, and the state is not
         recorded, so the next scan tries again (the invocation itself succeeds: SNS already has
         the report). An event's list or fleet list does steps 3 to 6 once for all its endpoints
         (one report, one message: handler/aws/aggregate.py's notify_once)

Warm invocations share the AWS clients, the HTTP pools and the ECR tokens
(:class:`Runtime`); each gets a fresh in-memory registry token cache, backed by
DynamoDB when TOKEN_CACHE=dynamodb:TABLE. Only the standard library is imported
at module load: boto3, the Docker SDK and urllib3 come with the first invocation.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import uuid
from collections.abc import Callable

log = logging.getLogger("spyglass.lambda")

MIN_SCAN_SECONDS = 0.001  # a scan always runs, so even a late invocation delivers a report


class Runtime:
    """What warm invocations reuse: AWS clients, HTTP pools per TLS policy, ECR tokens."""

    def __init__(self, *, clients=None, clock=None):
        from engine.clock import SystemClock
        from handler.aws.clients import AwsClients
        from handler.aws.ecr import EcrTokens

        self.clients = clients or AwsClients()
        self.clock = clock or SystemClock()
        self.ecr_tokens = EcrTokens(lambda region, fips: self.clients.client("ecr", region=region, fips=fips),
                                    clock=self.clock)
        self._pools: dict = {}
        self._lock = threading.Lock()

    @property
    def pool_sets(self) -> int:
        """How many distinct HTTP pool sets warm invocations have built (one per registry TLS setting)."""
        with self._lock:
            return len(self._pools)

    def pools_for(self, config):
        """Kept-alive pools for config's registry TLS settings, built on the first invocation that needs them."""
        from engine.transport import HttpPools
        from handler.compose import tls_policy

        key = (config.registry_ca, config.insecure_registries, config.concurrency)
        with self._lock:
            if key not in self._pools:
                self._pools[key] = HttpPools(tls_policy(config), maxsize=config.concurrency)
            return self._pools[key]


_runtime: Runtime | None = None


def handler(event, context):
    """The function's handler (handler.aws.lambda_function.handler)."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime()
    return invoke(event, context, env=os.environ, runtime=_runtime)


def invoke(event, context, *, env, runtime: Runtime, log_stream=None) -> dict:
    """One invocation with its environment and shared runtime passed in (tests call this)."""
    from engine.errors import SpyglassError
    from handler.aws.notifyurls import with_secret_urls
    from handler.aws.settings import early_log_level, settings_from_env, targets_for

    request_id = getattr(context, "aws_request_id", "") or str(uuid.uuid4())
    with json_logs(early_log_level(env), log_stream, {"request_id": request_id}):
        try:
            settings = settings_from_env(env)
            targets = targets_for(event, settings.endpoint)
            settings = with_secret_urls(settings, runtime.clients)
        except SpyglassError as exc:  # a configuration error, or the notify URLs' secret unreadable
            log.error("%s", exc)
            raise
        several = targets.batch or targets.fleet is not None or "endpoints" in event
        where = f"{len(targets.endpoints)} endpoints" if targets.endpoints else "fleet list"
        static = {"endpoint": where if several else targets.endpoints[0].host,
                  "correlation_id": targets.correlation_id or request_id, "scan_id": request_id}
        with json_logs(settings.log_level, log_stream, static, settings.notify_urls):
            try:
                if several:
                    return _several(settings, targets, request_id, context, runtime, run_id=static["correlation_id"])
                return _invocation(settings, targets.endpoints[0], request_id, context, runtime,
                                   run_id=static["correlation_id"])
            except SpyglassError as exc:  # raised on: Lambda's retries and on-failure destination take it
                log.error("invocation failed%s: %s", " (temporary)" if exc.temporary else "", exc,
                          extra={"error_class": type(exc).__name__, "temporary": exc.temporary})
                raise
            except Exception:
                log.exception("invocation failed unexpectedly")
                raise


def _invocation(settings, spec, scan_id: str, context, runtime: Runtime, *, run_id: str) -> dict:
    from handler.aws import metrics
    from handler.aws.notifyurls import require_apprise
    from handler.notifypolicy import notify_per_policy
    from handler.outcome import fingerprint

    require_apprise(settings)  # not in the package: a configuration error before the scan
    budget = _scan_budget(settings, context)
    log.info("scan started", extra={"scan_budget_s": budget, "notify": settings.notify})
    report, failure, stores = _scan(settings, spec, runtime, budget, run_id,
                                    update_limit=lambda: _update_limit(settings, context))
    status = "errors" if failure else report.status
    log.info("scan finished", extra={"status": status, "summary": report.summary, "error": failure,
                                     "duration_ms": report.duration_ms, **_store_stats(*stores)})
    metrics.emit(report, endpoint_failed=failure is not None, function_name=getattr(context, "function_name", ""),
                 properties={"endpoint": spec.host, "scan_id": scan_id, "status": status})
    messages = _EndpointMessages(settings, runtime, report, scan_id, failure, context)
    notified = notify_per_policy(settings.notify, status, fingerprint(report, endpoint_failed=failure is not None),
                                 key=spec.host, open_store=lambda: _notify_state(settings, runtime, scan_id, report),
                                 publish=messages.publish,
                                 send_urls=messages.send_urls if settings.notify_urls else None)
    result = {"scan_id": scan_id, "endpoint": spec.host, "status": status, "summary": report.summary,
              "error": failure, "notified": False, "notify_reason": notified.decision.reason}
    if not notified.decision.notify:
        log.info("notification skipped: %s", notified.decision.reason)
    return result | notified.fields


def _several(settings, targets, scan_id: str, context, runtime: Runtime, *, run_id: str) -> dict:
    """An event's list or fleet (one report, one message) or a state machine batch (its report returned)."""
    from handler.aws import metrics
    from handler.aws.aggregate import notify_once, store_report
    from handler.aws.batch import batch_output, fleet_endpoints
    from handler.aws.fleetscan import scan_endpoints
    from handler.aws.notifyurls import require_apprise

    if not targets.batch:  # a batch returns its report: the aggregation step sends
        require_apprise(settings)
    if settings.apply:  # an update's order, hooks and rollback are one daemon's (handler.compose.run_update)
        log.warning("APPLY is set, but an update works on one endpoint at a time: these endpoints are "
                    "scanned, not updated")
    specs = targets.endpoints
    if targets.fleet is not None:
        specs = fleet_endpoints(targets.fleet, settings.endpoint, s3=runtime.clients.client("s3"))
    budget = _scan_budget(settings, context)
    log.info("scan started", extra={"scan_budget_s": budget, "endpoints": len(specs), "batch": targets.batch})
    doc, caches = scan_endpoints(settings, specs, runtime, budget, run_id, name=targets.fleet_name or run_id)
    log.info("scan finished", extra={"status": doc["status"], "summary": doc["summary"],
                                     "duration_ms": doc["duration_ms"], **caches})
    metrics.emit_fleet(doc, function_name=getattr(context, "function_name", ""),
                       timestamp_ms=round(runtime.clock.now() * 1000),
                       properties={"scan_id": scan_id, "status": doc["status"], "batch": targets.batch})
    if targets.batch:  # the aggregation step merges, stores and publishes
        return batch_output(doc, s3=runtime.clients.client("s3"), bucket=settings.report_bucket,
                            prefix=settings.report_prefix, run_id=run_id, request_id=scan_id)
    location = store_report(runtime.clients, settings, doc, run_id)
    result = {"scan_id": scan_id, "status": doc["status"], "summary": doc["summary"],
              "report_location": location.uri if location else None}
    return result | notify_once(settings, runtime.clients, doc, run_id, location, runtime.clock.now,
                                remaining=lambda: remaining_seconds(context),
                                function_name=getattr(context, "function_name", ""))


class _EndpointMessages:
    """The senders of one endpoint's report: the HTML page and SNS (without a topic, the log), then
    the notify URLs, pointed at where the SNS message put the full report."""

    def __init__(self, settings, runtime: Runtime, report, scan_id: str, failure, context):
        self._settings, self._runtime, self._context = settings, runtime, context
        self._report, self._scan_id, self._failure = report, scan_id, failure
        self._page = self._location = None

    def publish(self):
        from handler.notifypolicy import Sent

        self._page = _store_page(self._settings, self._runtime, self._report, self._scan_id)
        fields = {"report_page": self._page.uri} if self._page is not None else {}
        fields |= _deliver(self._settings, self._runtime, self._report, self._scan_id, self._failure, self._page)
        self._location = fields.get("report_location")
        return Sent(fields)

    def send_urls(self):
        from handler.aws.notifyurls import send_urls
        from handler.notifypolicy import Sent

        fields = send_urls(self._settings, self._report, scan_id=self._scan_id,
                           where=self._location or f"the function's log (scan {self._scan_id})",
                           remaining=remaining_seconds(self._context),
                           function_name=getattr(self._context, "function_name", ""),
                           now=lambda: self._report.finished_at, failure=self._failure, page=self._page)
        return Sent(fields, took=not fields.get("notify_failed"))


def _scan(settings, spec, runtime: Runtime, budget: float | None, run_id: str, *,
          update_limit: Callable[[], float | None] = lambda: None):
    """(report, endpoint failure message or None, (token store, digest cache), each None when unused);
    update_limit() is asked just before an update (APPLY) for the seconds it may take."""
    from engine.errors import DaemonError
    from engine.report import ENDPOINT_ERROR, UNREACHABLE, EndpointResult, Report
    from handler.aws.fleetscan import shared_caches
    from handler.compose import run_scan, run_update, update_options

    store, digests = shared_caches(settings, runtime, run_id)
    started = runtime.clock.now()
    with _scan_inputs(settings, spec, runtime, budget) as (config, wrapper):
        try:
            collaborators = dict(clock=runtime.clock, pools=runtime.pools_for(config), token_store=store,
                                 keychain_wrapper=wrapper, digest_cache=digests)
            if settings.apply:  # APPLY: the scan, then the update (one report, one message)
                options = update_options(settings.update, time_limit=update_limit())
                report = run_update(config, options, **collaborators).report
            else:
                report = run_scan(config, **collaborators)
        except DaemonError as exc:
            endpoint = EndpointResult(spec.host, failure=UNREACHABLE if exc.unreachable else ENDPOINT_ERROR,
                                      reason=exc.reason, error=str(exc))
            report = Report(spec.host, started, runtime.clock.now(), (endpoint,))
    if not report.listed_any:
        failure = "; ".join(e.error or e.status for e in report.unlisted)
        log.error("endpoint could not be scanned: %s", failure)
        return report, failure, (store, digests)
    return report, None, (store, digests)


@contextlib.contextmanager
def _scan_inputs(settings, spec, runtime: Runtime, budget: float | None):
    """(ScanConfig, keychain wrapper); key material is gone when the block ends."""
    from handler.aws.fleetscan import Materials, scan_inputs

    with scan_inputs(settings, spec, runtime, budget, Materials(settings, runtime)) as inputs:
        yield inputs


def _offload(settings, runtime: Runtime):
    """The report bucket's uploader (None without a bucket)."""
    from handler.aws.sns import S3Offload

    if not settings.report_bucket:
        return None
    return S3Offload(runtime.clients.client("s3"), settings.report_bucket, settings.report_prefix)


def _store_page(settings, runtime: Runtime, report, scan_id: str):
    """The HTML report beside the JSON report's key in the bucket, and its presigned link (None: no bucket,
    or the upload failed; the messages then go without it)."""
    from handler.aws.report_page import PageStore
    from handler.compose import render_page

    offload = _offload(settings, runtime)
    if offload is None:
        return None
    store = PageStore(runtime.clients.client("s3"), settings.report_bucket, expires_in=settings.report_link_expiry)
    return store.put_beside(offload.key_for(report, scan_id), render_page(report))


def _deliver(settings, runtime: Runtime, report, scan_id: str, failure, page=None) -> dict:
    from handler.aws.clients import arn_region
    from handler.aws.sns import Publisher, deliver, log_full_report, report_document

    if not settings.topic_arn:
        log_full_report(report_document(report, scan_id, failure=failure), why="no SNS_TOPIC_ARN set",
                        level=logging.INFO)
        return {}
    sns = runtime.clients.client("sns", region=arn_region(settings.topic_arn))
    publisher = Publisher(sns, settings.topic_arn)  # retried by botocore alone (handler/aws/clients.py)
    delivery = deliver(report, scan_id=scan_id, publisher=publisher, offload=_offload(settings, runtime),
                       failure=failure, page=page)
    return {"notified": True, "message_id": delivery.message_id, "message_bytes": delivery.size,
            "truncated": delivery.truncated,
            "report_location": delivery.location.uri if delivery.location else None}


def _notify_state(settings, runtime: Runtime, scan_id: str, report):
    """NOTIFY=change's store: the endpoint's last delivered fingerprint in DynamoDB."""
    from handler.aws.dynamodb import DeliveredFingerprints, NotifyState

    state = NotifyState(settings.state_table, client=runtime.clients.client("dynamodb"), clock=runtime.clock)
    return DeliveredFingerprints(state, scan_id=scan_id, delivered_at=lambda: report.finished_at, what="report")


def _scan_budget(settings, context) -> float | None:
    """Seconds the scan may take: what Lambda leaves minus the delivery margin, within SPYGLASS_TIMEOUT."""
    remaining = remaining_seconds(context)
    if remaining is None:
        return settings.timeout
    budget = remaining - settings.delivery_margin
    if budget < MIN_SCAN_SECONDS:
        log.warning("only %.1f s left for the scan and its delivery; registries get no time", remaining)
        budget = MIN_SCAN_SECONDS
    return budget if settings.timeout is None else min(settings.timeout, budget)


def _update_limit(settings, context) -> float | None:
    """Seconds an update (its scan included) may take: what Lambda leaves minus the delivery margin
    (None outside Lambda: no limit). Counted from the update's start, so the scan spends it first."""
    remaining = remaining_seconds(context)
    return None if remaining is None else max(0.0, remaining - settings.delivery_margin)


def remaining_seconds(context) -> float | None:
    """What Lambda leaves this invocation (None outside Lambda); the aggregation function's too."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000.0 if callable(remaining) else None


def _store_stats(tokens, digests) -> dict:
    """The shared caches' reads, hits and writes for the "scan finished" line."""
    return {"token_cache": tokens.stats() if tokens else None, "digest_cache": digests.stats() if digests else None}


@contextlib.contextmanager
def json_logs(level: str, stream, static: dict, secret_urls=()):
    """JSON lines on stream (stdout in Lambda) for the block, cleaned of the notify URLs' secrets;
    the previous logging set-up comes back after."""
    from handler import logs

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    logs.configure(level if level in ("debug", "info", "warning", "error") else "info", "json",
                   stream=stream or sys.stdout, static=static, secret_urls=secret_urls)
    try:
        yield
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
