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

from handler.aws import lambda_function as aws_lambda
from handler.aws.lambda_function import Runtime, invoke

from .conftest import SCHEMA, FakeContext
from tests.reportdoc import containers_of

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
    return {c["name"]: c for c in containers_of(doc)}


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


def test_the_json_variant_and_the_envelope_carry_the_same_report_and_filterable_attributes(stack, demo_fleet, aws,
                                                                                             lambda_env):
    run(lambda_env, aws=aws)
    [raw], [envelope] = aws.receive(aws.raw_queue), aws.receive(aws.envelope_queue)
    notification = json.loads(envelope["Body"])
    assert json.loads(notification["Message"]) == json.loads(raw["Body"])
    subject = notification["Subject"]
    assert len(subject) < 100 and subject.isascii() and subject.isprintable()
    assert stack.daemon.host.removeprefix("tcp://") in subject and "1 stale" in subject
    assert set(notification["MessageAttributes"]) >= {"endpoint", "status", "stale_count", "error_count"}
    assert notification["MessageAttributes"]["stale_count"]["Type"] == "Number"


def test_notify_on_change_sends_nothing_for_a_repeat_and_a_message_when_a_new_image_goes_stale(stack, demo_fleet,
                                                                                                aws, lambda_env):
    from tests.stack import run_container, untag

    repository, name = "aws/change", f"{stack.secure.address}/aws/change"
    stack.publish(stack.secure, repository, "1", "aws-change-old")
    run_container(stack.daemon.admin, "aws-change", f"{name}:1")
    env = lambda_env | {"NOTIFY": "change", "TOKEN_CACHE": f"dynamodb:{aws.table}"}

    first, _ = run(env, aws=aws)
    assert first["notified"] and len(aws.receive(aws.raw_queue)) == 1
    second, _ = run(env, aws=aws)
    assert not second["notified"] and second["notify_reason"].startswith("unchanged")
    assert aws.receive(aws.raw_queue) == []

    stack.publish(stack.secure, repository, "next", "aws-change-new")
    untag(stack.daemon.admin, f"{name}:next")
    with stack.secure_http() as registry:
        registry.copy_tag(repository, "next", "1")
    third, _ = run(env, aws=aws)
    [message] = aws.receive(aws.raw_queue)
    doc = json.loads(message["Body"])
    assert third["notified"] and by_name(doc)["aws-change"]["status"] == "stale"
    assert doc["summary"]["stale"] == first["summary"]["stale"] + 1


def test_two_invocations_share_one_registry_token_through_dynamodb(stack, demo_fleet, aws, lambda_env):
    env = lambda_env | {"TOKEN_CACHE": f"dynamodb:{aws.table}"}
    mark = stack.token_server.mark()
    run(env, runtime=Runtime(clients=aws.clients))
    _, logs = run(env, runtime=Runtime(clients=aws.clients))  # another container: nothing warm but the table
    assert len(stack.token_server.requests_since(mark)) == 1
    [finished] = [line for line in logs if line["message"] == "scan finished"]
    assert finished["token_cache"]["hits"] >= 1 and finished["token_cache"]["writes"] == 0


def requests(doc, kind: str) -> int:
    return sum(r["requests"].get(kind, 0) for r in doc["registries"])


def heads(doc) -> int:
    return requests(doc, "head")


def test_a_second_invocation_of_the_run_asks_no_tag_again_through_the_digest_cache(stack, demo_fleet, aws,
                                                                                   lambda_env):
    env = lambda_env | {"TOKEN_CACHE": f"dynamodb:{aws.table}"}
    batch = {"correlation_id": "fleet-run-1"}  # what Step Functions gives every batch of one run
    run(env, batch, runtime=Runtime(clients=aws.clients))
    _, logs = run(env, batch, runtime=Runtime(clients=aws.clients))  # another batch: nothing warm but the table
    first, second = (json.loads(m["Body"]) for m in aws.receive(aws.raw_queue, at_least=2))
    failed = {c["reference"] for c in containers_of(first) if c["status"] == "error" and c["registry"]}
    assert heads(first) > len(failed) and heads(second) == len(failed)  # a failed HEAD is not remembered
    verdicts = [{n: (c["status"], c["reason"], c["remote_digest"]) for n, c in by_name(doc).items()}
                for doc in (first, second)]
    assert verdicts[0] == verdicts[1]
    [finished] = [line for line in logs if line["message"] == "scan finished"]
    assert finished["digest_cache"]["hits"] == heads(first) - len(failed)
    run(env, {"correlation_id": "fleet-run-2"}, runtime=Runtime(clients=aws.clients))  # the next run asks again
    [third] = [json.loads(m["Body"]) for m in aws.receive(aws.raw_queue)]
    assert heads(third) == heads(first)


def test_with_the_digest_cache_off_every_invocation_asks_the_registries(stack, demo_fleet, aws, lambda_env):
    env = lambda_env | {"TOKEN_CACHE": f"dynamodb:{aws.table}", "SPYGLASS_DIGEST_CACHE_TTL": "0"}
    for _ in range(2):
        run(env, {"correlation_id": "fleet-run-1"}, runtime=Runtime(clients=aws.clients))
    first, second = (json.loads(m["Body"]) for m in aws.receive(aws.raw_queue, at_least=2))
    assert heads(first) == heads(second) > 0


def test_a_token_table_that_fails_degrades_to_memory_with_one_warning(stack, demo_fleet, aws, lambda_env):
    env = lambda_env | {"TOKEN_CACHE": "dynamodb:no-such-table"}
    result, logs = run(env, aws=aws)
    [raw] = aws.receive(aws.raw_queue)
    found = {n: (c["status"], c["reason"]) for n, c in by_name(json.loads(raw["Body"])).items() if n in demo_fleet}
    assert found == demo_fleet
    warnings = [line for line in logs if line["level"] == "warning" and "token cache table" in line["message"]]
    assert len(warnings) == 1 and "ResourceNotFoundException" in warnings[0]["message"]


def test_a_short_remaining_time_still_delivers_with_unfinished_lookups_as_timeouts(stack, demo_fleet, aws,
                                                                                   lambda_env):
    env = lambda_env | {"SPYGLASS_DELIVERY_MARGIN": "5"}
    result, _ = run(env, context=FakeContext(remaining_seconds=5.0), aws=aws)
    [raw] = aws.receive(aws.raw_queue)
    doc = json.loads(raw["Body"])
    jsonschema.validate(doc, SCHEMA)
    checked = [c for n, c in by_name(doc).items() if n in demo_fleet and demo_fleet[n][0] != "skipped"]
    assert checked and all((c["status"], c["reason"]) == ("error", "timeout") for c in checked)
    assert result["notified"]


def test_a_failed_publish_puts_the_full_report_in_the_log_and_fails_the_invocation(stack, demo_fleet, aws,
                                                                                   lambda_env):
    from handler.aws.sns import DeliveryError

    env = lambda_env | {"SNS_TOPIC_ARN": aws.topic_arn + "-missing"}
    stream = io.StringIO()
    with pytest.raises(DeliveryError, match="NotFound"):
        invoke(SCHEDULED_EVENT, FakeContext(), env=env, runtime=Runtime(clients=aws.clients), log_stream=stream)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    parts = [line for line in lines if "report" in line]
    assert parts and all(line["level"] == "error" for line in parts)
    head = parts[0]["report"]
    doc = dict(head, endpoints=[dict(head["endpoints"][0], containers=[c for line in parts
                                                                       for c in containers_of(line["report"])])])
    jsonschema.validate(doc, SCHEMA)
    assert by_name(doc)["stale"]["status"] == "stale"


def test_the_event_overrides_the_endpoint_and_selects_containers(stack, demo_fleet, aws, lambda_env):
    env = {k: v for k, v in lambda_env.items() if k not in ("DOCKER_HOST", "SPYGLASS_TLS_SECRET")}
    event = {"endpoint": {"host": stack.daemon.host, "tls_secret": "spyglass/test/tls", "names": ["web-1", "stale"]},
             "correlation_id": "fleet-run-7"}
    result, logs = run(env, event, aws=aws)
    [raw] = aws.receive(aws.raw_queue)
    assert sorted(by_name(json.loads(raw["Body"]))) == ["stale", "web-1"]
    assert {line["correlation_id"] for line in logs} == {"fleet-run-7"}


def test_tls_material_from_ssm_parameters(stack, demo_fleet, aws, lambda_env):
    ssm = aws.client("ssm")
    for part, pem in tls_material(stack).items():
        ssm.put_parameter(Name=f"/spyglass/docker-test/{part}", Value=pem, Type="SecureString")
    event = {"endpoint": {"tls_secret": "ssm:/spyglass/docker-test", "names": ["web-1"]}}
    run(lambda_env, event, aws=aws)
    [raw] = aws.receive(aws.raw_queue)
    assert by_name(json.loads(raw["Body"]))["web-1"]["status"] == "fresh"


def test_an_invalid_event_names_every_offending_field_and_scans_nothing(stack, demo_fleet, aws, lambda_env):
    from handler.aws.settings import InvalidEventError

    mark = stack.daemon.mark()
    # names as a string is a list now (the table's rule); an array holding a number is not
    event = {"endpoint": {"host": "http://docker-01", "names": ["web-1", 7], "colour": "red"}, "endpoints": []}
    with pytest.raises(InvalidEventError) as caught:
        run(lambda_env, event, aws=aws)
    message = str(caught.value)
    for field in ("endpoint (http://docker-01): host", "endpoint (http://docker-01): names",
                  "endpoint (http://docker-01): colour", "endpoints: expected"):
        assert field in message
    assert stack.daemon.api_calls_since(mark) == []
    assert aws.receive(aws.raw_queue) == []


def test_warm_invocations_reuse_clients_and_pools(stack, demo_fleet, aws, lambda_env):
    runtime = Runtime(clients=aws.clients)
    run(lambda_env, runtime=runtime)
    sns = aws.clients.client("sns")
    run(lambda_env, runtime=runtime)
    assert runtime.pool_sets == 1 and aws.clients.client("sns") is sns
    assert len(aws.receive(aws.raw_queue)) == 2


def test_the_module_handler_reads_the_process_environment(stack, demo_fleet, aws, lambda_env, monkeypatch, capsys):
    for key, value in lambda_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(aws_lambda, "_runtime", None)  # a cold container
    result = aws_lambda.handler(SCHEDULED_EVENT, FakeContext())
    assert result["notified"] and len(aws.receive(aws.raw_queue)) == 1
    assert all(json.loads(line)["scan_id"] == result["scan_id"] for line in capsys.readouterr().out.splitlines())


def test_the_metrics_line_counts_what_the_report_says(stack, demo_fleet, aws, lambda_env, capsys):
    from .test_metrics import check_emf, emf_lines

    result, _ = run(lambda_env, aws=aws)
    [document] = emf_lines(capsys.readouterr().out)
    values = check_emf(document)
    summary = result["summary"]
    assert (values["Stale"], values["Errors"], values["Scanned"]) == (summary["stale"], summary["errors"],
                                                                       summary["scanned"])
    assert values["Stale"] > 0 and values["RegistryRequests"] > 0 and values["UnreachableEndpoints"] == 0


# -- several endpoints in one invocation ----------------------------------------------------------

def unreachable_host() -> str:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{sock.getsockname()[1]}"


def test_a_batch_scans_its_endpoints_together_returns_one_report_and_publishes_nothing(stack, demo_fleet, aws,
                                                                                         lambda_env):
    env = lambda_env | {"TOKEN_CACHE": f"dynamodb:{aws.table}", "REPORT_BUCKET": aws.bucket}
    items = [{"host": stack.daemon.host, "name": "web-a"}, {"host": stack.daemon.host, "name": "web-b"},
             {"host": unreachable_host(), "name": "gone"}]
    doc, _ = run(env, {"Items": items, "BatchInput": {"correlation_id": "fleet-exec-1"}}, aws=aws)
    assert aws.receive(aws.raw_queue) == []  # the aggregation step publishes, not a batch
    assert doc["schema_version"] == 2 and [e["name"] for e in doc["endpoints"]] == ["web-a", "web-b", "gone"]
    web_a, web_b, gone = doc["endpoints"]
    assert web_a["summary"] == web_b["summary"] and web_a["status"] == web_b["status"] == "errors"
    found = {c["name"]: (c["status"], c["reason"]) for c in web_a["containers"] if c["name"] in demo_fleet}
    assert found == demo_fleet
    assert gone["status"] == "unreachable" and gone["reason"] == "connection-refused" and gone["containers"] == []
    assert doc["summary"]["endpoints"] == 3 and doc["summary"]["unreachable"] == 1
    single, _ = run(env | {"TOKEN_CACHE": f"dynamodb:{aws.table}"}, {"endpoint": {"host": stack.daemon.host},
                                                                     "correlation_id": "other-run"}, aws=aws)
    [alone] = [json.loads(m["Body"]) for m in aws.receive(aws.raw_queue)]
    assert heads(doc) == heads(alone)  # one HEAD per reference for the whole batch
    assert requests(doc, "ping") == requests(alone, "ping")  # and one ping per registry


def test_an_endpoints_event_sends_one_message_for_all_of_them(stack, demo_fleet, aws, lambda_env):
    env = lambda_env | {"REPORT_BUCKET": aws.bucket}
    items = [{"host": stack.daemon.host, "name": "web-a"}, {"host": unreachable_host(), "name": "gone"}]
    result, _ = run(env, {"endpoints": items, "correlation_id": "nightly"}, aws=aws)
    [raw] = aws.receive(aws.raw_queue)
    body = json.loads(raw["Body"])
    assert [e["name"] for e in body["endpoints"]] == ["web-a", "gone"] and body["run_id"] == "nightly"
    assert result["notified"] and result["report_location"].startswith(f"s3://{aws.bucket}/reports/fleet/nightly/")
    assert raw["MessageAttributes"]["unreachable_count"]["StringValue"] == "1"


def test_a_fleet_event_reads_the_list_from_s3(stack, demo_fleet, aws, lambda_env):
    env = lambda_env | {"REPORT_BUCKET": aws.bucket}
    aws.client("s3").put_object(Bucket=aws.bucket, Key="config/fleet.json",
                                Body=json.dumps([{"host": stack.daemon.host, "names": ["web-1", "stale"]}]))
    result, _ = run(env, {"fleet": {"bucket": aws.bucket, "key": "config/fleet.json"}}, aws=aws)
    [raw] = aws.receive(aws.raw_queue)
    [endpoint] = json.loads(raw["Body"])["endpoints"]
    assert sorted(c["name"] for c in endpoint["containers"]) == ["stale", "web-1"] and result["notified"]
