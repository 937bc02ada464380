"""AWS errors injected inside botocore's retry loop, so that botocore's own retries meet them.

A ``before-call`` hook answers above the retry loop (one refusal, no retry); a
``before-send`` hook answers each attempt, as AWS itself would. moto answers
every ``before-send`` too, so a refused attempt is pointed away from it first.
Only for services that speak the query protocol (SNS): the error is XML.
"""
from __future__ import annotations

from botocore.awsrequest import AWSResponse

REFUSED_URL = "https://refused.invalid/"  # no moto backend's address: moto lets the attempt through to us


class Refusals:
    """Answers the first attempts in turn, each an (error code, HTTP status) or an exception to raise;
    lets every later attempt through. `calls` counts the attempts, the passing ones included."""

    def __init__(self, *answers, forever: tuple[str, int] | None = None):
        self.answers = list(answers)
        self.forever = forever
        self.calls = 0

    @classmethod
    def always(cls, code: str, status: int) -> Refusals:
        return cls(forever=(code, status))

    def install(self, client, operation: str = "Publish") -> Refusals:
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register_first(f"before-send.{service}.{operation}", self)
        return self

    def __call__(self, request, **kwargs):
        self.calls += 1
        answer = self.answers.pop(0) if self.answers else self.forever
        if answer is None:
            return None
        if isinstance(answer, BaseException):
            raise answer
        code, status = answer
        request.url = REFUSED_URL
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected</Message>"
                f"</Error><RequestId>refused</RequestId></ErrorResponse>").encode()
        return AWSResponse(REFUSED_URL, status, {"Content-Type": "text/xml"}, _Raw(body))


class _Raw:
    """The raw body AWSResponse reads (its `stream()`)."""

    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **kwargs):
        yield self._body
