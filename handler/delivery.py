"""Whether a report goes out, and to SNS and the notify URLs: the NOTIFY policy the CLI and the Action share.

    1. nowhere to deliver (no SNS topic, no notify URL): nothing is decided
    2. the decision (handler.outcome.decide); with change, the report's fingerprint against the one
       the state file last recorded under the report's name (handler.statefile)
    3. SNS through the publisher the caller loads, then the notify URLs, each whatever became of
       the other
    4. with change, the fingerprint recorded only when every delivery went through, so a failed
       one is tried again on the next run

The result is a Delivery, which each caller reports where its user looks (the CLI on stderr,
the Action as annotations) and turns into its own exit code. The Lambda keeps the same state
in DynamoDB and compares the same fingerprint (handler/aws).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping

from engine.errors import ConfigurationError, SpyglassError, scrub
from engine.report import Report
from handler.outcome import EXIT_CONFIG, EXIT_OK, EXIT_UNREACHABLE, Decision, decide, fingerprint

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

    @property
    def complete(self) -> bool:
        """Every target asked for took the report."""
        return not self.sns_problem and not self.failed


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
    """The report to SNS and the notify URLs when the policy says so; where points a cut message
    to the full report; warn says what a person should know (an unreadable state file)."""
    if not targets.topic_arn and not targets.urls:
        return Delivery()
    state, current, last = _last_delivered(report, targets, warn)
    decision = decide(targets.policy, report.status, current, last)
    if not decision.notify:
        return Delivery(decision)
    delivery = Delivery(decision, **_publish(report, targets, load_publisher), **_send(report, targets, where))
    if state is not None and delivery.complete:
        try:
            state.record(report.name, current, report.finished_at)
        except ConfigurationError as exc:  # names the file; what was delivered is still said
            return replace(delivery, record_problem=str(exc))
        delivery = replace(delivery, recorded=True)
    return delivery


def _last_delivered(report: Report, targets: Targets, warn: Warn):
    """(state file, this report's fingerprint, the last delivered one) under change; else nothing."""
    if targets.policy != "change":
        return None, "", None
    if not targets.state_file:
        raise ConfigurationError("notify policy change: no state file to keep the last delivered report in")
    from handler.statefile import StateFile

    state = StateFile(Path(targets.state_file), warn=warn)
    return state, fingerprint(report), state.last(report.name)


def _publish(report: Report, targets: Targets, load_publisher) -> dict:
    if not targets.topic_arn:
        return {}
    publish, why_not = load_publisher()
    if publish is None:
        return {"sns_problem": f"SNS delivery is not available in this build ({why_not}); the report was not "
                               "published"}
    bucket = {"bucket": targets.bucket, "prefix": targets.prefix} if targets.bucket else {}
    try:
        delivered = publish(report, topic_arn=targets.topic_arn, **bucket)
    except ConfigurationError as exc:
        return {"sns_problem": f"SNS delivery: configuration error: {exc}", "sns_code": EXIT_CONFIG}
    except Exception as exc:  # noqa: BLE001 - DeliveryError, or botocore's own tree: reported, never raised
        detail = str(exc) if isinstance(exc, SpyglassError) else type(exc).__name__
        return {"sns_problem": f"SNS delivery to {targets.topic_arn} failed: {scrub(detail)}",
                "sns_code": EXIT_UNREACHABLE}
    return {"message_id": getattr(delivered, "message_id", "") or "?"}


def _send(report: Report, targets: Targets, where: str) -> dict:
    if not targets.urls:
        return {}
    from handler.notify import send

    outcome = send(targets.urls, report, deadline=targets.timeout, where=where)
    return {"sent": tuple(outcome.sent), "failed": tuple(outcome.failed)}
