"""AWS under moto for the Lambda, SNS, DynamoDB, Secrets Manager, SSM, S3 and ECR tests.

`aws` starts moto's in-process mock with fake credentials and a region, and
creates what a deployment has: the topic with two SQS subscriptions (raw and
SNS-envelope delivery), the DynamoDB table with TTL, and the report bucket.
Clients are built inside the mock, as a Lambda container would build them.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

import pytest

from engine.report import schema

REGION = "us-east-1"
SCHEMA = schema()
_AWS_ENV = ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_SESSION_TOKEN",
            "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE")


@dataclass
class AwsWorld:
    clients: object  # handler.aws.clients.AwsClients
    topic_arn: str
    raw_queue: str
    envelope_queue: str
    table: str
    bucket: str

    def client(self, service: str):
        return self.clients.client(service)

    def receive(self, queue: str, *, at_least: int = 0) -> list[dict]:
        """Everything in the queue now (deleted as read)."""
        sqs, found = self.client("sqs"), []
        while True:
            batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                        MessageAttributeNames=["All"]).get("Messages", [])
            if not batch:
                break
            for message in batch:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            found += batch
        assert len(found) >= at_least, f"expected at least {at_least} messages, got {len(found)}"
        return found

    def put_secret(self, name: str, value: dict | str) -> str:
        text = value if isinstance(value, str) else json.dumps(value)
        return self.client("secretsmanager").create_secret(Name=name, SecretString=text)["ARN"]


@pytest.fixture
def aws(monkeypatch):
    from moto import mock_aws

    for name in _AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    with mock_aws():
        yield _world()


def _world() -> AwsWorld:
    from handler.aws.clients import AwsClients

    clients = AwsClients(region=REGION)
    sns, sqs = clients.client("sns"), clients.client("sqs")
    topic = sns.create_topic(Name="spyglass-reports")["TopicArn"]
    queues = {}
    for raw in (True, False):
        url = sqs.create_queue(QueueName=f"reports-{'raw' if raw else 'envelope'}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn,
                      Attributes={"RawMessageDelivery": "true" if raw else "false"})
        queues[raw] = url
    table = "spyglass-state"
    dynamodb = clients.client("dynamodb")
    dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          SSESpecification={"Enabled": True, "SSEType": "KMS"})
    dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True,
                                                                           "AttributeName": "expires"})
    bucket = "spyglass-reports-test"
    clients.client("s3").create_bucket(Bucket=bucket)
    return AwsWorld(clients, topic, queues[True], queues[False], table, bucket)


class FakeContext:
    """What the Lambda runtime passes as context, with a clock that really runs down."""

    def __init__(self, remaining_seconds: float = 300.0, request_id: str | None = None):
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.function_name = "spyglass"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:spyglass"
        self._end = time.monotonic() + remaining_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._end - time.monotonic()) * 1000))
