"""The SNS message: variants per protocol, subject, attributes, the 256 KiB rule, retries, the log fallback."""
from __future__ import annotations

import io
import json
import logging

import jsonschema
import pytest
from botocore.exceptions import EndpointConnectionError

from handler.aws.clients import MAX_ATTEMPTS
from handler.aws.sns import (MAX_MESSAGE_BYTES, DeliveryError, Publisher, S3Offload, compose, deliver,
                             log_full_report, subject)
from handler.logs import JsonFormatter

from .conftest import SCHEMA
from .refusals import Refusals
from .reports import fleet_report
from tests.reportdoc import containers_of

SMALL = {"fresh": 5, "stale": 2, "error": 1, "skipped": 2}
LARGE = {"fresh": 880, "stale": 60, "error": 20, "skipped": 40}  # 1,000 containers


def variants(message) -> dict:
    return json.loads(message.message)


def test_each_protocol_gets_its_variant():
    report = fleet_report(SMALL)
    message = compose(report, "scan-1")
    found = variants(message)
    assert set(found) == {"default", "email", "sqs", "lambda", "http", "https"}
    assert found["sqs"] == found["lambda"] == found["http"] == found["https"]
    doc = json.loads(found["sqs"])
    jsonschema.validate(doc, SCHEMA)
    assert doc["scan_id"] == "scan-1" and doc["truncated"] is False and len(containers_of(doc)) == 10
    assert found["default"].startswith("tcp://docker-01.example.net:2376: 10 containers scanned: 2 stale")
    assert "Stale: service-5, service-6" in found["default"] and len(found["default"]) < 1000
    assert "STATUS" in found["email"] and "service-0" in found["email"]  # the whole table
    assert not message.truncated


def test_attributes_are_what_subscribers_filter_on():
    message = compose(fleet_report(SMALL), "scan-1")
    attributes = {k: (v["DataType"], v["StringValue"]) for k, v in message.attributes.items()}
    assert attributes["endpoint"] == ("String", "tcp://docker-01.example.net:2376")
    assert attributes["status"] == ("String", "errors")
    assert attributes["stale_count"] == ("Number", "2") and attributes["error_count"] == ("Number", "1")
    assert len(attributes) <= 10  # what SQS raw delivery carries


@pytest.mark.parametrize("endpoint, shown", [
    ("tcp://docker-01:2376", "spyglass docker-01:2376:"),
    ("tcp://" + "very-long-host-name." * 10 + "example:2376", "...ery-long-host-name.example:2376:"),
    ("tcp://hôte-é\n\x00.example:2376", "spyglass h?te-? ?.example:2376:"),  # a line break reads as a space
])
def test_the_subject_is_short_printable_ascii_and_names_endpoint_and_counts(endpoint, shown):
    text = subject(fleet_report(SMALL, endpoint=endpoint))
    assert len(text) < 100 and text.isascii() and text.isprintable()
    assert shown in text and text.endswith(": 2 stale, 1 error of 10")


def test_a_failed_endpoint_is_an_errors_message():
    report = fleet_report({})
    message = compose(report, "scan-1", failure="list containers on tcp://x:2376: connection refused")
    doc = json.loads(variants(message)["sqs"])
    jsonschema.validate(doc, SCHEMA)
    assert doc["status"] == "errors" and "connection refused" in doc["error"]
    assert message.attributes["status"]["StringValue"] == "errors"
    assert message.subject.endswith(": cannot scan")


def test_a_thousand_container_report_goes_to_s3_and_the_message_keeps_what_matters(aws):
    report = fleet_report(LARGE)
    offload = S3Offload(aws.client("s3"), aws.bucket)
    publisher = Publisher(aws.client("sns"), aws.topic_arn)
    delivery = deliver(report, scan_id="scan-big", publisher=publisher, offload=offload)
    assert delivery.truncated and delivery.size <= MAX_MESSAGE_BYTES and delivery.location is not None
    [raw] = aws.receive(aws.raw_queue)
    doc = json.loads(raw["Body"])
    jsonschema.validate(doc, SCHEMA)
    assert doc["truncated"] is True and doc["summary"]["scanned"] == 1000
    assert {c["status"] for c in containers_of(doc)} == {"stale", "error"} and len(containers_of(doc)) == 80
    assert doc["omitted_containers"] == 920
    location = doc["report_location"]
    stored = json.loads(aws.client("s3").get_object(Bucket=location["bucket"], Key=location["key"])["Body"].read())
    jsonschema.validate(stored, SCHEMA)
    assert len(containers_of(stored)) == 1000 and stored["scan_id"] == "scan-big"
    assert raw["MessageAttributes"]["truncated"]["StringValue"] == "true"


def test_without_a_bucket_a_large_report_is_truncated_and_still_sent(aws):
    delivery = deliver(fleet_report(LARGE), scan_id="scan-big", publisher=Publisher(aws.client("sns"), aws.topic_arn))
    [raw] = aws.receive(aws.raw_queue)
    doc = json.loads(raw["Body"])
    assert doc["truncated"] is True and "report_location" not in doc and len(containers_of(doc)) == 80
    assert delivery.location is None


def test_when_even_the_stale_and_errored_containers_do_not_fit_as_many_as_fit_are_kept(aws):
    report = fleet_report({"stale": 700, "error": 300}, error_length=400)
    message = compose(report, "scan-huge")
    assert message.size <= MAX_MESSAGE_BYTES
    doc = json.loads(variants(message)["sqs"])
    jsonschema.validate(doc, SCHEMA)
    kept = len(containers_of(doc))
    assert 0 < kept < 1000 and doc["omitted_containers"] == 1000 - kept
    aws.client("sns").publish(TopicArn=aws.topic_arn, Message=message.message, MessageStructure="json",
                              Subject=message.subject, MessageAttributes=message.attributes)


def _publish(aws, report=None) -> str:
    publisher = Publisher(aws.client("sns"), aws.topic_arn)
    return publisher.publish(compose(report or fleet_report(SMALL), "s"), scan_id="s", endpoint="e")


def test_botocore_retries_throttling_and_network_errors_and_the_message_arrives_once(aws):
    refusals = Refusals(("Throttling", 400), EndpointConnectionError(endpoint_url="x")).install(aws.client("sns"))
    assert _publish(aws)
    assert refusals.calls == 3
    aws.receive(aws.raw_queue, at_least=1)
    assert aws.receive(aws.raw_queue) == []  # drained: the one that passed was the only one


def test_a_permanent_error_is_not_retried(aws):
    refusals = Refusals.always("AuthorizationError", 403).install(aws.client("sns"))
    with pytest.raises(DeliveryError, match="AuthorizationError"):
        _publish(aws)
    assert refusals.calls == 1


def test_retries_stop_at_the_clients_attempts_with_no_loop_of_ours_on_top(aws):
    refusals = Refusals.always("InternalError", 500).install(aws.client("sns"))
    with pytest.raises(DeliveryError, match="InternalError"):
        _publish(aws)
    assert refusals.calls == MAX_ATTEMPTS == 3
    assert aws.receive(aws.raw_queue) == []


def test_a_fifo_topic_gets_a_group_and_the_scan_id_as_deduplication_id():
    seen = {}

    class Recording:
        def publish(self, **request):
            seen.update(request)
            return {"MessageId": "m"}

    Publisher(Recording(), "arn:aws:sns:us-east-1:1:t.fifo").publish(compose(fleet_report(SMALL), "scan-7"),
                                                                     scan_id="scan-7", endpoint="tcp://h:2376")
    assert seen["MessageDeduplicationId"] == "scan-7" and seen["MessageGroupId"].startswith("spyglass-")


def test_the_full_report_in_the_log_is_split_into_lines_cloudwatch_accepts():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("spyglass.aws")
    logger.addHandler(handler)
    try:
        report = fleet_report(LARGE, error_length=300)
        from handler.aws.sns import report_document
        log_full_report(report_document(report, "s"), why="test")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) > 1 and all(len(line.encode()) < 256 * 1024 for line in lines)
    parts = [json.loads(line) for line in lines]
    assert sum(len(containers_of(p["report"])) for p in parts) == 1000
    assert [p["part"] for p in parts] == list(range(1, len(parts) + 1))


def test_the_cli_entry_publishes_to_a_topic_in_its_own_region(aws):
    from handler.aws.sns import publish_report

    sns, sqs = aws.clients.client("sns", region="eu-west-1"), aws.clients.client("sqs", region="eu-west-1")
    topic = sns.create_topic(Name="elsewhere")["TopicArn"]
    queue = sqs.create_queue(QueueName="elsewhere")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    delivery = publish_report(fleet_report(SMALL), topic_arn=topic, clients=aws.clients)
    [message] = sqs.receive_message(QueueUrl=queue)["Messages"]
    assert json.loads(message["Body"])["scan_id"] and delivery.message_id and not delivery.truncated
