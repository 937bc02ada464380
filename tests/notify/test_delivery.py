"""handler.delivery's policy with a publisher passed in (no AWS, no notify URL): what is published,
what is recorded in the state file, and what a failed or missing publisher does to the record.

The notify URLs and the state file across real runs are proven against real servers in
tests/faults/test_notify.py (the CLI) and tests/action/test_action_stack.py (the Action)."""
from __future__ import annotations

import json

import pytest

from engine.errors import ConfigurationError
from handler.aws.sns import DeliveryError
from handler.delivery import Targets, deliver
from handler.outcome import EXIT_CONFIG, EXIT_UNREACHABLE
from tests.unit.test_report import sample

TOPIC = "arn:aws:sns:us-east-1:123456789012:spyglass"


class Publisher:
    """Records each publish; raises what it is given instead, when given something."""

    def __init__(self, fails: Exception | None = None) -> None:
        self.published, self.fails = [], fails

    def load(self):
        return self, ""

    def __call__(self, report, *, topic_arn, **bucket):
        if self.fails is not None:
            raise self.fails
        self.published.append((report.name, topic_arn, bucket))
        return type("Sent", (), {"message_id": f"m-{len(self.published)}"})()


def _change(tmp_path) -> Targets:
    return Targets("change", topic_arn=TOPIC, state_file=str(tmp_path / "state.json"))


def test_nowhere_to_deliver_decides_nothing(tmp_path):
    assert deliver(sample(), Targets("change"), where="x").decision is None


def test_change_publishes_the_first_report_and_not_the_same_one_again(tmp_path):
    publisher = Publisher()
    first = deliver(sample(), _change(tmp_path), where="x", load_publisher=publisher.load)
    second = deliver(sample(), _change(tmp_path), where="x", load_publisher=publisher.load)
    assert (first.message_id, first.recorded, first.decision.reason) == ("m-1", True, "first report for this fleet")
    assert not second.decision.notify and second.decision.reason == "unchanged since the last delivered report"
    assert len(publisher.published) == 1


def test_a_changed_stale_set_is_published_again(tmp_path):
    publisher = Publisher()
    deliver(sample("web"), _change(tmp_path), where="x", load_publisher=publisher.load)
    assert deliver(sample("api"), _change(tmp_path), where="x", load_publisher=publisher.load).published
    assert len(publisher.published) == 2


@pytest.mark.parametrize("fails, code", [(DeliveryError("publish to t: AuthorizationError"), EXIT_UNREACHABLE),
                                         (ConfigurationError("bad bucket"), EXIT_CONFIG),
                                         (RuntimeError("botocore's own"), EXIT_UNREACHABLE)])
def test_a_failed_publish_is_reported_not_raised_and_not_recorded(tmp_path, fails, code):
    delivery = deliver(sample(), _change(tmp_path), where="x", load_publisher=Publisher(fails).load)
    assert delivery.sns_code == code and delivery.sns_problem and not delivery.recorded
    assert not (tmp_path / "state.json").exists()


def test_a_missing_publisher_is_no_failure_but_records_nothing(tmp_path):
    delivery = deliver(sample(), _change(tmp_path), where="x", load_publisher=lambda: (None, "boto3 is not installed"))
    assert delivery.sns_code == 0 and "boto3 is not installed" in delivery.sns_problem and not delivery.recorded


def test_a_corrupt_state_file_is_a_warning_and_a_delivery(tmp_path):
    (tmp_path / "state.json").write_text("{not json")
    warnings, publisher = [], Publisher()
    delivery = deliver(sample(), _change(tmp_path), where="x", load_publisher=publisher.load, warn=warnings.append)
    assert delivery.published and delivery.recorded
    [warning] = warnings
    assert "state.json cannot be read" in warning and "never notified" in warning
    assert "tcp://h:2376" in json.loads((tmp_path / "state.json").read_text())["endpoints"]


def test_stale_publishes_a_stale_report_and_keeps_no_state(tmp_path):
    publisher = Publisher()
    targets = Targets("stale", topic_arn=TOPIC, state_file=str(tmp_path / "state.json"))
    assert deliver(sample(), targets, where="x", load_publisher=publisher.load).published
    assert not (tmp_path / "state.json").exists()


def test_change_without_a_state_file_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="state file"):
        deliver(sample(), Targets("change", topic_arn=TOPIC), where="x", load_publisher=Publisher().load)


def test_a_state_file_that_cannot_be_written_is_said_after_the_delivery(tmp_path):
    (tmp_path / "a-file").write_text("")
    targets = Targets("change", topic_arn=TOPIC, state_file=str(tmp_path / "a-file" / "state.json"))
    delivery = deliver(sample(), targets, where="x", load_publisher=Publisher().load)
    assert delivery.published and not delivery.recorded
    assert "write state file" in delivery.record_problem and "a-file" in delivery.record_problem
