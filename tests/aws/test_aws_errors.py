"""A throttled, failing or unreachable AWS API is a temporary error; a refusal stays a configuration error.

Classification by the exception's type and its structured error response (botocore's Stubber
answers with real ClientErrors), and once end to end through the Lambda handler.
"""
from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import pytest
from botocore.exceptions import (ClientError, ConnectTimeoutError, EndpointConnectionError, NoCredentialsError,
                                 ReadTimeoutError, SSLError)
from botocore.stub import Stubber

from engine.errors import ConfigurationError, SpyglassError, UnavailableError
from engine.name import parse_registry
from handler.aws.clients import aws_failure, is_temporary
from handler.aws.ecr import EcrKeychain, EcrTokens
from handler.aws.lambda_function import Runtime, invoke
from handler.aws.secrets import fetch_docker_config, fetch_tls_material

from .conftest import FakeContext

ECR_HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def named(error: BaseException) -> str:
    response = getattr(error, "response", None)
    return response["Error"]["Code"] if isinstance(response, dict) else type(error).__name__


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "AnyOperation")


@pytest.mark.parametrize("error", [
    client_error("Throttling"), client_error("ThrottlingException"), client_error("TooManyRequestsException", 429),
    client_error("RequestLimitExceeded", 503), client_error("ProvisionedThroughputExceededException"),
    client_error("InternalFailure", 500), client_error("SomethingNew", 502), client_error("ServiceUnavailable", 503),
    EndpointConnectionError(endpoint_url="https://secretsmanager.eu-west-1.amazonaws.com"),
    ConnectTimeoutError(endpoint_url="https://ecr.eu-west-1.amazonaws.com"),
    ReadTimeoutError(endpoint_url="https://ssm.eu-west-1.amazonaws.com"),
], ids=lambda e: named(e))
def test_throttles_server_faults_and_unreachable_endpoints_are_temporary(error):
    assert is_temporary(error)
    failure = aws_failure("read TLS secret \"x\"", error)
    assert isinstance(failure, UnavailableError) and failure.temporary and failure.reason == "unavailable"


@pytest.mark.parametrize("error", [
    client_error("AccessDeniedException"), client_error("ResourceNotFoundException"),
    client_error("ValidationException"), client_error("UnrecognizedClientException", 403),
    NoCredentialsError(), SSLError(endpoint_url="https://ecr.example", error="verify failed"),
    client_error("AccessDenied: Throttling was not the cause"),  # the words, not the code
], ids=lambda e: named(e))
def test_refusals_and_local_problems_stay_configuration_errors(error):
    assert not is_temporary(error)
    failure = aws_failure("read TLS secret \"x\"", error)
    assert type(failure) is ConfigurationError and not failure.temporary


def test_a_throttled_secret_read_is_temporary_and_a_denied_one_is_configuration(aws):
    client = aws.client("secretsmanager")
    with Stubber(client) as stub:
        stub.add_client_error("get_secret_value", "ThrottlingException", http_status_code=400)
        stub.add_client_error("get_secret_value", "AccessDeniedException", http_status_code=400)
        with pytest.raises(UnavailableError, match='TLS secret "spyglass/d": ThrottlingException'):
            fetch_tls_material("spyglass/d", secrets_client=client)
        with pytest.raises(ConfigurationError, match="AccessDeniedException"):
            fetch_docker_config("spyglass/registries", secrets_client=client)


def test_a_failing_ssm_is_temporary(aws):
    client = aws.client("ssm")
    with Stubber(client) as stub:
        stub.add_client_error("get_parameters", "InternalServerError", http_status_code=500)
        with pytest.raises(UnavailableError, match="InternalServerError"):
            fetch_tls_material("ssm:/spyglass/d", secrets_client=aws.client("secretsmanager"), ssm_client=client)


def test_a_throttled_ecr_token_is_temporary_and_asked_again_next_time(aws):
    client = aws.client("ecr")
    registry = parse_registry(ECR_HOST)
    with Stubber(client) as stub:
        stub.add_client_error("get_authorization_token", "ThrottlingException", http_status_code=400)
        stub.add_response("get_authorization_token", {"authorizationData": [{
            "authorizationToken": "QVdTOnB3", "expiresAt": datetime(2100, 1, 1, tzinfo=timezone.utc)}]})
        keychain = EcrKeychain(None, EcrTokens(lambda region, fips: client))
        with pytest.raises(UnavailableError, match="ecr:GetAuthorizationToken for .*ThrottlingException"):
            keychain.resolve(registry, "app")
        assert keychain.resolve(registry, "app").password == "pw"


def test_a_throttled_tls_secret_fails_the_lambda_as_temporary_not_as_configuration(aws):
    env = {"DOCKER_HOST": "tcp://127.0.0.1:2376", "SPYGLASS_TLS_SECRET": "spyglass/docker-01",
           "SNS_TOPIC_ARN": aws.topic_arn}
    stream = io.StringIO()
    with Stubber(aws.client("secretsmanager")) as stub:
        stub.add_client_error("get_secret_value", "ThrottlingException", http_status_code=400)
        with pytest.raises(SpyglassError) as caught:
            invoke({}, FakeContext(), env=env, runtime=Runtime(clients=aws.clients), log_stream=stream)
    assert type(caught.value) is UnavailableError and caught.value.temporary
    failed = [json.loads(line) for line in stream.getvalue().splitlines() if "invocation failed" in line]
    assert failed and failed[0]["level"] == "error" and failed[0]["temporary"] is True
    assert failed[0]["error_class"] == "UnavailableError"
    assert aws.receive(aws.raw_queue) == []
