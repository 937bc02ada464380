"""Whether a report goes out, and to SNS and the notify URLs: the NOTIFY policy (handler.notifypolicy,
which the Lambda follows too) for the CLI and the Action.

    1. nowhere to deliver (no SNS topic, no notify URL): nothing is decided
    2. the decision (handler.outcome.decide); with change, the report's fingerprint against the one
       the state file last recorded under the report's name (handler.statefile)
    3. SNS through the publisher the caller loads, then the notify URLs, each whatever became of
       the other; a failure of either is reported here, never raised
    4. with change, the fingerprint recorded only when every delivery went through, so a failed
       one is tried again on the next run

The result is a Delivery, which each caller reports where its user looks (the CLI on stderr,
the Action as annotations) and turns into its own exit code. The Lambda follows the same flow
with its state in DynamoDB (handler/aws).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from engine.errors import ConfigurationError, SpyglassError, scrub
from engine.report import Report
from handler.notifypolicy import FingerprintStore, Sent, notify_per_policy
from handler.outcome import EXIT_CONFIG, EXIT_OK, EXIT_UNREACHABLE, Decision, fingerprint

log = logging.getLogger("spyglass")

Warn = Callable[[str], None]


@dataclass(frozen=True)
class Targets:
    """Where a report goes and under which policy, from the settings table's values."""

    policy: str
    topic_arn: str = ""
    bucket: str = ""
    prefix: str = "reports/"
    urls: tuple[str, ...] = ()
    timeout: float = 30.0
    state_file: str = ""

    @classmethod
    def of(cls, values: Mapping[str, object]) -> "Targets":
        return cls(values["notify"], values["sns_topic_arn"], values["report_bucket"] or "",
                   values["report_prefix"], tuple(values["notify_urls"]), values["notify_timeout"],
                   values["state_file"] or "")


@dataclass(frozen=True)
class Delivery:
    """What became of one report. ``decision`` None: there was nowhere to deliver it."""

    decision: Decision | None = None
    message_id: str = ""  # SNS's, when published
    sns_problem: str = ""  # why SNS did not take it (secrets scrubbed)
    sns_code: int = EXIT_OK  # EXIT_CONFIG or EXIT_UNREACHABLE when it failed; OK when merely unavailable
    sent: tuple[str, ...] = ()  # the notify URLs that took it, named without their secrets
    failed: tuple = ()  # handler.notify's Failures
    recorded: bool = False  # the state file now holds this report's fingerprint
    record_problem: str = ""  # why it could not be written (a configuration error: exit 2)

    @property
    def published(self) -> bool:
        return bool(self.message_id)


def load_sns_publisher() -> tuple[Callable | None, str]:
    """handler.aws.sns.publish_report when boto3 is installed (the aws extra), else None and why not."""
    try:
        import boto3  # noqa: F401  # handler.aws.sns imports it only when it publishes
    except ImportError:
        return None, "boto3 is not installed: pip install 'spyglass[aws]'"
    from handler.aws.sns import publish_report
    return publish_report, ""


def deliver(report: Report, targets: Targets, *, where: str, load_publisher=load_sns_publisher,
            warn: Warn = log.warning) -> Delivery:
    """The report to SNS and the notify URLs when the policy says so (handler.notifypolicy); where points
    a cut message to the full report; warn says what a person should know (an unreadable state file)."""
    publish = (lambda: _publish(report, targets, load_publisher)) if targets.topic_arn else None
    send_urls = (lambda: _send(report, targets, where)) if targets.urls else None
    notified = notify_per_policy(targets.policy, report.status, fingerprint(report), key=report.name,
                                 open_store=lambda: _state_file(report, targets, warn),
                                 publish=publish, send_urls=send_urls)
    return Delivery(notified.decision, **notified.fields, recorded=notified.recorded,
                    record_problem=notified.record_problem)


def _state_file(report: Report, targets: Targets, warn: Warn) -> FingerprintStore:
    """change's store: the state file, which the report's end is recorded in as its delivery time."""
    if not targets.state_file:
        raise ConfigurationError("notify policy change: no state file to keep the last delivered report in")
    from handler.statefile import StateFile, StateFileStore

    return StateFileStore(StateFile(Path(targets.state_file), warn=warn), delivered_at=report.finished_at)


def _publish(report: Report, targets: Targets, load_publisher) -> Sent:
    publish, why_not = load_publisher()
    if publish is None:
        return Sent({"sns_problem": f"SNS delivery is not available in this build ({why_not}); the report was "
                                    "not published"}, took=False)
    bucket = {"bucket": targets.bucket, "prefix": targets.prefix} if targets.bucket else {}
    try:
        delivered = publish(report, topic_arn=targets.topic_arn, **bucket)
    except ConfigurationError as exc:
        return Sent({"sns_problem": f"SNS delivery: configuration error: {exc}", "sns_code": EXIT_CONFIG}, took=False)
    except Exception as exc:  # noqa: BLE001 - DeliveryError, or botocore's own tree: reported, never raised
        detail = str(exc) if isinstance(exc, SpyglassError) else type(exc).__name__
        return Sent({"sns_problem": f"SNS delivery to {targets.topic_arn} failed: {scrub(detail)}",
                     "sns_code": EXIT_UNREACHABLE}, took=False)
    return Sent({"message_id": getattr(delivered, "message_id", "") or "?"})


def _send(report: Report, targets: Targets, where: str) -> Sent:
    from handler.notify import send

    outcome = send(targets.urls, report, deadline=targets.timeout, where=where)
    return Sent({"sent": tuple(outcome.sent), "failed": tuple(outcome.failed)}, took=not outcome.failed)
