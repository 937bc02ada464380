"""AWS clients for the Lambda and the CLI's AWS options: created once, reused by warm invocations.

boto3 is imported on first use, never at module import: the CLI without AWS
options and the Lambda's import phase pay nothing for it. botocore's error
classes are reached through :func:`aws_errors`, which an ``except`` clause
evaluates only when an exception is actually being matched.
"""
from __future__ import annotations

import threading

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0
# botocore's retries, the only ones SNS Publish and the S3 upload get (no loop of ours on top). Standard
# mode retries throttling errors, 5xx answers and connection errors with jittered exponential backoff.
# MAX_ATTEMPTS counts every attempt, the first included: it is Config's total_max_attempts (its
# max_attempts would count the retries only, one attempt more).
RETRY_MODE = "standard"
MAX_ATTEMPTS = 3


def aws_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a boto3 call raises on an AWS-side or network failure."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


# AWS error codes that mean "too many requests now", across the services spyglass calls.
THROTTLE_CODES = frozenset({"Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
                            "RequestLimitExceeded", "ProvisionedThroughputExceededException",
                            "RequestThrottled", "RequestThrottledException", "SlowDown",
                            "KMSThrottlingException", "KMSThrottling"})
# Codes of AWS-side faults, temporary even where a stub or an old endpoint sends no 5xx status with them.
SERVICE_FAULT_CODES = frozenset({"InternalError", "InternalFailure", "InternalServerError", "ServiceUnavailable",
                                 "ServiceUnavailableException"})


def is_temporary(exc: BaseException) -> bool:
    """Whether an AWS failure may pass by itself: a throttle, a 5xx, or no connection to the endpoint.

    Decided by the exception's type and the structured error response, never by message text.
    A TLS failure to the endpoint is not temporary: a CA bundle setting is behind it.
    """
    from botocore.exceptions import ClientError, HTTPClientError, SSLError
    from botocore.exceptions import ConnectionError as EndpointUnreachable

    if isinstance(exc, ClientError):
        status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0
        return error_code(exc) in THROTTLE_CODES | SERVICE_FAULT_CODES or status >= 500
    return isinstance(exc, (HTTPClientError, EndpointUnreachable)) and not isinstance(exc, SSLError)


def aws_failure(where: str, exc: BaseException):
    """The spyglass error for a failed AWS call: UnavailableError when temporary, else ConfigurationError.

    Neither keeps the AWS exception as its cause: botocore's messages may quote request values.
    """
    from engine.errors import ConfigurationError, UnavailableError

    if is_temporary(exc):
        return UnavailableError(f"{where}: {error_code(exc)} (temporary: AWS is busy or unreachable)")
    return ConfigurationError(f"{where}: {error_code(exc)}")


def arn_region(arn: str) -> str | None:
    """The region field of an ARN (arn:partition:service:region:account:resource), if it has one."""
    parts = arn.split(":", 5)
    return parts[3] or None if len(parts) == 6 and parts[0] == "arn" else None


def error_code(exc: BaseException) -> str:
    """A short, secret-free cause: the AWS error code, or the exception class for network failures."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = (response.get("Error") or {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__


class AwsClients:
    """boto3 clients keyed by (service, region, FIPS), each built once and shared by threads.

    ``session`` is a boto3 Session; tests pass none and get the default
    credential chain (moto's fake credentials under ``mock_aws``).
    """

    def __init__(self, *, session=None, region: str | None = None, max_pool_connections: int = 16):
        self._session = session
        self._region = region
        self._pool = max_pool_connections
        self._clients: dict[tuple[str, str | None, bool], object] = {}
        self._lock = threading.Lock()

    def client(self, service: str, *, region: str | None = None, fips: bool = False):
        key = (service, region or self._region, fips)
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                found = self._clients[key] = self._build(*key)
            return found

    def _build(self, service: str, region: str | None, fips: bool):
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            from engine.errors import ConfigurationError

            raise ConfigurationError("AWS features need boto3: pip install 'spyglass[aws]'") from None

        if self._session is None:
            self._session = boto3.session.Session()
        # S3: Signature Version 4 for presigned links too (botocore may still presign with version 2,
        # which S3 refuses for KMS-encrypted objects and which has no 7-day bound).
        signing = {"signature_version": "s3v4"} if service == "s3" else {}
        config = Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                        retries={"mode": RETRY_MODE, "total_max_attempts": MAX_ATTEMPTS},
                        max_pool_connections=self._pool, use_fips_endpoint=fips, **signing)
        return self._session.client(service, region_name=region, config=config)
