"""The Lambda under AWS faults: SNS throttling and failure, DynamoDB throttling; and no secret in what it writes.

AWS is moto (tests/aws/conftest.py); the faults are answers injected on the
boto3 clients the function uses (a `before-call` hook returns an error response
instead of calling), the Docker endpoint and the registry are the fault tests'
proxied fleet. SNS refusals are answered inside botocore's retry loop instead
(tests/aws/refusals.py), since botocore alone retries a publish.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

pytest.importorskip("boto3")
pytest.importorskip("moto")

from handler.aws.lambda_function import Runtime, invoke  # noqa: E402
from handler.aws.sns import DeliveryError  # noqa: E402
from tests.aws.conftest import FakeContext  # noqa: E402
from tests.aws.refusals import Refusals  # noqa: E402

from .world import SCOPE  # noqa: E402
from tests.reportdoc import containers_of

EVENT = {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}


@pytest.fixture
def lambda_env(world, aws):
    stack = world.stack
    folder = Path(stack.daemon.cert_dir)
    tls = {part: (folder / f"{part}.pem").read_text() for part in ("ca", "cert", "key")}
    return {
        "DOCKER_HOST": stack.daemon.host,
        "SPYGLASS_TLS_SECRET": aws.put_secret("spyglass/faults/tls", tls),
        "SPYGLASS_REGISTRY_AUTH_SECRET": aws.put_secret("spyglass/faults/registries",
                                                        json.loads(world.docker_config.read_text())),
        "SPYGLASS_REGISTRY_CA": str(world.ca_bundle),
        "SPYGLASS_SCOPE": SCOPE,
        "SNS_TOPIC_ARN": aws.topic_arn,
        "AWS_REGION": "us-east-1",
    }


class Refusing:
    """A before-call hook: the first `times` calls get an AWS error answer instead of reaching moto."""

    def __init__(self, code: str, status: int, times: int = 10**6):
        self.code, self.status, self.times, self.calls = code, status, times, 0

    def __call__(self, **kwargs):
        self.calls += 1
        if self.calls > self.times:
            return None
        from botocore.awsrequest import AWSResponse
        http = AWSResponse("https://aws.invalid/", self.status, {}, None)
        return http, {"Error": {"Code": self.code, "Message": "injected"},
                      "ResponseMetadata": {"HTTPStatusCode": self.status}}


def _invoke(env, aws, stream):
    return invoke(EVENT, FakeContext(), env=env, runtime=Runtime(clients=aws.clients), log_stream=stream)


def _lines(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _delivered(aws) -> dict:
    [raw] = aws.receive(aws.raw_queue)
    return json.loads(raw["Body"])


def _outcomes(doc) -> dict:
    return {c["name"]: (c["status"], c["reason"]) for c in containers_of(doc)}


def test_sns_throttling_is_retried_a_bounded_number_of_times_then_the_invocation_fails_with_the_report_logged(
        world, aws, lambda_env):
    throttled = Refusals.always("Throttling", 400).install(aws.client("sns"))
    stream = io.StringIO()
    with pytest.raises(DeliveryError, match="Throttling"):
        _invoke(lambda_env, aws, stream)
    assert throttled.calls == 3  # botocore's attempts (handler/aws/clients.py), no loop of ours on top
    lines = _lines(stream)
    parts = [line for line in lines if "report" in line]
    assert parts and all(line["level"] == "error" for line in parts)
    logged = [c for line in parts for c in containers_of(line["report"])]
    assert {c["name"]: (c["status"], c["reason"]) for c in logged} == world.expected


def test_sns_throttling_that_passes_still_delivers_the_report(world, aws, lambda_env):
    throttled = Refusals(("ThrottledException", 400), ("ThrottledException", 400)).install(aws.client("sns"))
    result = _invoke(lambda_env, aws, io.StringIO())
    assert result["notified"] and throttled.calls == 3
    assert _outcomes(_delivered(aws)) == world.expected


@pytest.mark.parametrize("code,status", [("InternalError", 500), ("AuthorizationError", 403)])
def test_an_sns_failure_fails_the_invocation_with_the_report_logged(world, aws, lambda_env, code, status):
    failing = Refusals.always(code, status).install(aws.client("sns"))
    stream = io.StringIO()
    with pytest.raises(DeliveryError, match=code):
        _invoke(lambda_env, aws, stream)
    assert failing.calls == (3 if status >= 500 else 1)  # a permission error is not worth a retry
    assert any("report" in line for line in _lines(stream))


@pytest.mark.parametrize("operation", ["GetItem", "PutItem"])
def test_dynamodb_throttling_falls_back_to_memory(world, aws, lambda_env, operation):
    throttled = Refusing("ProvisionedThroughputExceededException", 400)
    aws.client("dynamodb").meta.events.register(f"before-call.dynamodb.{operation}", throttled)
    stream = io.StringIO()
    result = _invoke(lambda_env | {"TOKEN_CACHE": f"dynamodb:{aws.table}"}, aws, stream)
    assert result["notified"] and throttled.calls >= 1
    assert _outcomes(_delivered(aws)) == world.expected
    warnings = [line for line in _lines(stream) if line["level"] == "warning" and "token cache" in line["message"]]
    assert len(warnings) == 1 and "ProvisionedThroughputExceeded" in warnings[0]["message"]


def test_the_lambda_writes_no_secret_at_debug_level(world, aws, lambda_env):
    stack = world.stack
    failing = Refusing("InternalError", 500)
    stream = io.StringIO()
    env = lambda_env | {"SPYGLASS_LOG_LEVEL": "debug", "TOKEN_CACHE": f"dynamodb:{aws.table}"}
    with world.proxy.rules():
        _invoke(env, aws, stream)  # delivered: the SNS message is read below
        aws.client("sns").meta.events.register("before-call.sns.Publish", failing)
        with pytest.raises(DeliveryError) as raised:
            _invoke(env, aws, stream)
        seen = list(world.proxy.records)
    [raw] = aws.receive(aws.raw_queue)
    envelope = aws.receive(aws.envelope_queue)
    written = "\n".join([stream.getvalue(), json.dumps(raw), json.dumps(envelope), str(raised.value),
                         repr(raised.value)])
    bearer = {r.headers["authorization"].split(" ", 1)[1] for r in seen
              if r.headers.get("authorization", "").startswith("Bearer ")}
    key_lines = [line for line in (Path(stack.daemon.cert_dir) / "key.pem").read_text().splitlines()
                 if len(line) >= 40 and "-----" not in line]
    secrets = [stack.alice.password, *bearer, *(t.rsplit(".", 1)[-1] for t in bearer), *key_lines]
    assert bearer and key_lines
    assert not [s for s in secrets if s in written]
    assert "PRIVATE KEY" not in written
    items = aws.client("dynamodb").scan(TableName=aws.table)["Items"]
    assert all(not item["pk"]["S"].endswith(tuple(bearer)) for item in items)  # keys are digests, not tokens
