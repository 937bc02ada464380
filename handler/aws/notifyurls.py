"""The notify URLs (Apprise) from AWS Lambda: one path for a single endpoint's report, an event's list
of endpoints and the fleet run's aggregation.

    with_secret_urls(settings, clients)  SPYGLASS_NOTIFY_SECRET's URLs added to SPYGLASS_NOTIFY's,
                                         read before any log line could carry them
    require_apprise(settings)            URLs set but Apprise not in the package: a ConfigurationError
                                         before anything is scanned or merged
    send_urls(settings, report, ...)     the report (or its schema_version 2 document, read back with
                                         Report.from_dict) to every URL within the time the function has
                                         left, at most SPYGLASS_NOTIFY_TIMEOUT; each failure an error line
                                         naming the URL by its place and scheme, never its secrets; the
                                         NotifyFailures metric; {"notify_sent", "notify_failed"}

The caller decides NOTIFY once for SNS and the URLs together, and records the delivered state only
when notify_failed is empty, so a URL that failed is tried again by the next run.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

log = logging.getLogger("spyglass.lambda")

MIN_DEADLINE = 0.5  # seconds: even a late invocation tries its URLs
RESERVE = 1.0  # seconds kept back from the time left, for the result and the metric line


def with_secret_urls(settings, clients):
    """settings with the URLs of SPYGLASS_NOTIFY_SECRET added (unchanged without that secret)."""
    if not settings.notify_urls_secret:
        return settings
    from dataclasses import replace

    from handler.aws.secrets import fetch_notify_urls

    urls = fetch_notify_urls(settings.notify_urls_secret, secrets_client=clients.client("secretsmanager"))
    return replace(settings, notify_urls=settings.notify_urls + urls)


def require_apprise(settings) -> None:
    if settings.notify_urls:
        from handler.notify import load_apprise

        load_apprise()


def deadline(settings, remaining: float | None) -> float:
    """Seconds for all URLs together: SPYGLASS_NOTIFY_TIMEOUT within what the function has left."""
    if remaining is None:
        return settings.notify_timeout
    return max(MIN_DEADLINE, min(settings.notify_timeout, remaining - RESERVE))


def send_urls(settings, report, *, scan_id: str, where: str, remaining: float | None, function_name: str,
              now: Callable[[], float] = time.time, failure: str | None = None, page=None) -> dict:
    """Send report (a Report, or its JSON document) to the notify URLs; ``where`` says where the full
    report is, ``page`` the HTML report's link when one was stored."""
    if not settings.notify_urls:
        return {}
    from engine.errors import ReportDocumentError
    from engine.report import Report
    from handler.aws import metrics
    from handler.notify import send
    from handler.notify.redact import describe
    from handler.notify.send import Failure, Outcome

    try:
        report = report if isinstance(report, Report) else Report.from_dict(report)
        outcome = send(settings.notify_urls, report, deadline=deadline(settings, remaining), where=where,
                       failure=failure, link=page.line() if page is not None else "")
    except ReportDocumentError as exc:  # a bug of ours, not the services': every URL counts as failed
        outcome = Outcome(failed=tuple(Failure(describe(url, index), str(exc))
                                       for index, url in enumerate(settings.notify_urls, start=1)))
    for problem in outcome.failed:
        log.error("%s: not notified: %s", problem.target, problem.reason)
    metrics.emit_notify_failures(len(outcome.failed), function_name=function_name,
                                 timestamp_ms=round(now() * 1000), properties={"scan_id": scan_id})
    return {"notify_sent": list(outcome.sent), "notify_failed": [f.target for f in outcome.failed]}
