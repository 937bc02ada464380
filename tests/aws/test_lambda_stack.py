"""The Lambda handler end to end: the real dockerd and registries, AWS under moto.

Each test invokes the handler as Lambda would (an event and a context), then
reads what actually arrived in the SQS queues subscribed to the topic.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest

from handler import aws_lambda
from handler.aws_lambda import Runtime, invoke

from .conftest import SCHEMA, FakeContext

SCHEDULED_EVENT = {"version": "0", "id": "5ee7ab54-0000-0000-0000-000000000000", "detail-type": "Scheduled Event",
                   "source": "aws.events", "account": "123456789012", "time": "2025-01-01T06:00:00Z",
                   "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/spyglass"],
                   "detail": {}}


def tls_material(stack) -> dict:
    folder = Path(stack.daemon.cert_dir)
    return {part: (folder / f"{part}.pem").read_text() for part in ("ca", "cert", "key")}


def docker_config(stack) -> dict:
    return json.loads(Path(stack.docker_config).read_text())


@pytest.fixture
def lambda_env(stack, demo_fleet, aws):
    """The function's environment for the stack: TLS and registry credentials in Secrets Manager."""
    return {
        "DOCKER_HOST": stack.daemon.host,
        "SPYGLASS_TLS_SECRET": aws.put_secret("spyglass/test/tls", tls_material(stack)),
        "SPYGLASS_REGISTRY_AUTH_SECRET": aws.put_secret("spyglass/registries", docker_config(stack)),
        "SPYGLASS_REGISTRY_CA": str(stack.registry_ca),
        "SPYGLASS_INSECURE_REGISTRIES": stack.plain.address,
        "SNS_TOPIC_ARN": aws.topic_arn,
        "AWS_REGION": "us-east-1",
    }


def run(env, event=None, *, runtime=None, context=None, aws=None):
    """Invoke; returns (result, log lines as dicts)."""
    stream = io.StringIO()
    result = invoke(SCHEDULED_EVENT if event is None else event, context or FakeContext(), env=env,
                    runtime=runtime or Runtime(clients=aws.clients), log_stream=stream)
    return result, [json.loads(line) for line in stream.getvalue().splitlines()]


def by_name(doc) -> dict:
    return {c["name"]: c for c in doc["containers"]}


def test_the_report_arrives_in_the_sqs_subscription_and_validates(stack, demo_fleet, aws, lambda_env):
    result, logs = run(lambda_env, aws=aws)
    [raw] = aws.receive(aws.raw_queue)
    doc = json.loads(raw["Body"])
    jsonschema.validate(doc, SCHEMA)
    found = {name: (c["status"], c["reason"]) for name, c in by_name(doc).items() if name in demo_fleet}
    assert found == demo_fleet
    assert doc["scan_id"] == result["scan_id"] and doc["truncated"] is False
    attributes = {k: (v["DataType"], v["StringValue"]) for k, v in raw["MessageAttributes"].items()}
    assert attributes["endpoint"] == ("String", stack.daemon.host)
    assert attributes["status"] == ("String", "errors")  # "gone" is not-found
    assert attributes["stale_count"] == ("Number", str(doc["summary"]["stale"]))
    assert attributes["error_count"] == ("Number", str(doc["summary"]["errors"]))
    assert result["notified"] is True and result["message_id"]
    assert all(line.get("endpoint") == stack.daemon.host and line.get("correlation_id") for line in logs)
