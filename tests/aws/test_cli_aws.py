"""The CLI's AWS options: the same SNS message and shared token cache as the Lambda, from a terminal."""
from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema

from handler.cli import main
from tests.aws.conftest import SCHEMA
from tests.reportdoc import containers_of


def run(stack, *args):
    out, err = io.StringIO(), io.StringIO()
    code = main(["scan", "--output", "json", *stack.scan_args(), *args], env=stack.env(), stdout=out,
                stderr=err, home=Path(stack.workdir))
    return code, out.getvalue(), err.getvalue()


def test_the_cli_publishes_the_report_to_sns(stack, demo_fleet, aws):
    code, out, err = run(stack, "--sns-topic-arn", aws.topic_arn, "web-1", "stale")
    assert code == 0, err
    (message,) = aws.receive(aws.raw_queue, at_least=1)
    delivered = json.loads(message["Body"])
    jsonschema.validate(delivered, SCHEMA)
    assert {c["name"]: c["status"] for c in containers_of(delivered)} == {"web-1": "fresh", "stale": "stale"}
    assert json.loads(out)["summary"] == delivered["summary"]


def test_the_cli_shares_tokens_through_dynamodb_between_runs(stack, demo_fleet, aws):
    mark = stack.token_server.mark()
    for _ in range(2):
        code, _, err = run(stack, "--token-cache", f"dynamodb:{aws.table}", "web-1")
        assert code == 0, err
    assert len(stack.token_server.requests_since(mark)) == 1


def test_a_bad_token_cache_spec_is_a_configuration_error(stack, demo_fleet):
    code, out, err = run(stack, "--token-cache", "redis:somewhere")
    assert code == 2 and out == "" and "token" in err.lower()
