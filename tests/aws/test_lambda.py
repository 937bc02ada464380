"""The handler without a daemon: settings errors, an unreachable endpoint, no topic, the import cost."""
from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from engine.errors import ConfigurationError
from handler.aws.lambda_function import Runtime, invoke

from .conftest import SCHEMA, FakeContext
from tests.reportdoc import containers_of

ROOT = Path(__file__).parents[2]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(env, aws, event=None):
    stream = io.StringIO()
    try:
        return invoke(event or {}, FakeContext(), env=env, runtime=Runtime(clients=aws.clients),
                      log_stream=stream), stream
    except Exception as exc:
        exc.log = stream.getvalue()
        raise


def test_an_unreachable_endpoint_is_reported_as_errors_not_lost(aws):
    env = {"DOCKER_HOST": f"tcp://127.0.0.1:{closed_port()}", "SNS_TOPIC_ARN": aws.topic_arn}
    result, _ = run(env, aws)
    assert result["status"] == "errors" and "connection refused" in result["error"]
    [raw] = aws.receive(aws.raw_queue)
    doc = json.loads(raw["Body"])
    jsonschema.validate(doc, SCHEMA)
    assert doc["status"] == "errors" and containers_of(doc) == [] and "connection refused" in doc["error"]
    assert raw["MessageAttributes"]["status"]["StringValue"] == "errors"


def test_an_unreachable_endpoint_notifies_once_under_notify_change(aws):
    env = {"DOCKER_HOST": f"tcp://127.0.0.1:{closed_port()}", "SNS_TOPIC_ARN": aws.topic_arn, "NOTIFY": "change",
           "STATE_TABLE": aws.table}
    assert run(env, aws)[0]["notified"] and not run(env, aws)[0]["notified"]
    assert len(aws.receive(aws.raw_queue)) == 1


def test_bad_settings_fail_the_invocation_naming_every_variable(aws):
    env = {"DOCKER_HOST": "docker-01", "NOTIFY": "sometimes", "TOKEN_CACHE": "redis:x",
           "SPYGLASS_CONCURRENCY": "0", "SNS_TOPIC_ARN": aws.topic_arn}
    with pytest.raises(ConfigurationError) as caught:
        run(env, aws)
    for name in ("DOCKER_HOST", "NOTIFY", "TOKEN_CACHE", "SPYGLASS_CONCURRENCY"):
        assert name in str(caught.value)
    assert json.loads(caught.value.log.splitlines()[0])["level"] == "error"
    assert aws.receive(aws.raw_queue) == []


def test_a_missing_tls_secret_is_a_configuration_error_that_names_it(aws):
    env = {"DOCKER_HOST": "tcp://127.0.0.1:2376", "SPYGLASS_TLS_SECRET": "spyglass/nope",
           "SNS_TOPIC_ARN": aws.topic_arn}
    with pytest.raises(ConfigurationError, match='TLS secret "spyglass/nope": ResourceNotFoundException'):
        run(env, aws)


def test_without_a_topic_the_report_goes_to_the_log(aws):
    result, stream = run({"DOCKER_HOST": f"tcp://127.0.0.1:{closed_port()}"}, aws)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert any("report" in line for line in lines) and "message_id" not in result


def test_importing_the_handler_loads_neither_boto3_nor_the_docker_sdk():
    code = ("import sys, time; t = time.perf_counter(); import handler.aws.lambda_function; "
            "print(round((time.perf_counter() - t) * 1000, 1)); "
            "print(sorted(m for m in ('boto3', 'botocore', 'docker', 'urllib3', 'requests') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    milliseconds, loaded = done.stdout.splitlines()
    assert loaded == "[]"
    assert float(milliseconds) < 500  # measured ~15 ms; the bound only catches a heavy import sneaking in


def test_notify_urls_get_an_unreachable_endpoint_and_a_failing_url_keeps_the_state_unrecorded(aws):
    pytest.importorskip("apprise", reason="the notify extra: pip install 'spyglass[notify]'")
    from tests.notify.servers import Webhooks

    token = "tok-lambda-6c02f1"
    with Webhooks() as hooks:
        env = {"DOCKER_HOST": f"tcp://127.0.0.1:{closed_port()}", "SNS_TOPIC_ARN": aws.topic_arn,
               "NOTIFY": "change", "STATE_TABLE": aws.table, "SPYGLASS_LOG_LEVEL": "debug",
               "SPYGLASS_NOTIFY": f"json://{hooks.authority}/hooks/{token},form://{hooks.authority}/fail/{token}"}
        first, stream = run(env, aws)
        second, _ = run(env, aws)  # the form URL failed: nothing recorded, so it is tried again
        env["SPYGLASS_NOTIFY"] = f"json://{hooks.authority}/hooks/{token}"
        third, _ = run(env, aws)
        fourth, _ = run(env, aws)  # delivered everywhere and unchanged: nothing sent
    assert first["notify_failed"] == [f"notify URL 2 (form://{hooks.authority}…)"] == second["notify_failed"]
    assert third["notified"] and not fourth["notified"]
    assert len(hooks.to(f"/hooks/{token}")) == 3
    payload = json.loads(hooks.to(f"/hooks/{token}")[0].body)
    assert payload["title"].endswith("could not be scanned") and payload["type"] == "failure"
    jsonschema.validate(json.loads(payload["message"]), SCHEMA)
    log = stream.getvalue()
    assert "not notified" in log and token not in log


def test_notify_urls_from_a_secret_are_used_kept_out_of_the_log_and_a_failure_is_a_metric(aws, capsys):
    pytest.importorskip("apprise", reason="the notify extra: pip install 'spyglass[notify]'")
    from tests.notify.servers import Webhooks

    token = "tok-secret-91be0c"
    with Webhooks() as hooks:
        aws.put_secret("spyglass/notify", json.dumps([f"json://{hooks.authority}/hooks/{token}",
                                                      f"form://{hooks.authority}/fail/{token}"]))
        env = {"DOCKER_HOST": f"tcp://127.0.0.1:{closed_port()}", "SNS_TOPIC_ARN": aws.topic_arn,
               "SPYGLASS_NOTIFY_SECRET": "spyglass/notify", "SPYGLASS_LOG_LEVEL": "debug"}
        result, stream = run(env, aws)
    assert result["notify_sent"] == [f"notify URL 1 (json://{hooks.authority}…)"]
    assert len(result["notify_failed"]) == 1 and len(hooks.to(f"/hooks/{token}")) == 1
    log = stream.getvalue()
    assert token not in log and "not notified" in log
    printed = capsys.readouterr().out  # the EMF lines: Lambda sends stdout to the log group
    assert token not in printed
    lines = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    [metric] = [line for line in lines if line.get("message") == "notify metrics"]
    assert metric["NotifyFailures"] == 1
    assert metric["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "NotifyFailures", "Unit": "Count"}]


def test_an_unreadable_notify_secret_fails_before_the_scan_naming_only_the_secret(aws):
    aws.put_secret("spyglass/notify", "[\"json://example.invalid/hooks/tok-hidden-55\", 7]")
    env = {"DOCKER_HOST": f"tcp://127.0.0.1:{closed_port()}", "SNS_TOPIC_ARN": aws.topic_arn,
           "SPYGLASS_NOTIFY_SECRET": "spyglass/notify"}
    with pytest.raises(ConfigurationError, match="notify URLs secret \"spyglass/notify\": a JSON list, but not") \
            as caught:
        run(env, aws)
    assert "tok-hidden-55" not in str(caught.value) + caught.value.log
    assert aws.client("sns") and "scan started" not in caught.value.log


def notify_metric(printed: str) -> dict:
    """The NotifyFailures line among what the function printed (the EMF lines go to stdout)."""
    lines = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    [metric] = [line for line in lines if line.get("message") == "notify metrics"]
    return metric


def test_a_list_event_sends_its_one_report_to_the_notify_urls_and_a_failing_one_is_a_metric(aws, capsys):
    pytest.importorskip("apprise", reason="the notify extra: pip install 'spyglass[notify]'")
    from tests.notify.servers import Webhooks

    token = "tok-list-3e81aa"
    event = {"endpoints": [{"host": f"tcp://127.0.0.1:{closed_port()}", "name": "web-a"},
                           {"host": f"tcp://127.0.0.1:{closed_port()}", "name": "web-b"}]}
    with Webhooks() as hooks:
        env = {"SNS_TOPIC_ARN": aws.topic_arn, "REPORT_BUCKET": aws.bucket, "SPYGLASS_LOG_LEVEL": "debug",
               "SPYGLASS_NOTIFY": f"json://{hooks.authority}/hooks/{token},form://{hooks.authority}/fail/{token}"}
        result, stream = run(env, aws, event)
    [delivery] = hooks.to(f"/hooks/{token}")
    payload = json.loads(delivery.body)
    report = json.loads(payload["message"])
    jsonschema.validate(report, SCHEMA)
    assert [e["name"] for e in report["endpoints"]] == ["web-a", "web-b"]
    assert report["summary"]["unreachable"] == 2 and payload["type"] == "failure"
    assert result["notified"] and result["notify_sent"] == [f"notify URL 1 (json://{hooks.authority}…)"]
    assert result["notify_failed"] == [f"notify URL 2 (form://{hooks.authority}…)"]
    log, printed = stream.getvalue(), capsys.readouterr().out
    assert "notify URL 2" in log and "not notified" in log and token not in log + printed
    assert notify_metric(printed)["NotifyFailures"] == 1


def test_a_list_event_under_notify_change_sends_nothing_when_unchanged_and_a_batch_never_sends(aws):
    pytest.importorskip("apprise", reason="the notify extra: pip install 'spyglass[notify]'")
    from tests.notify.servers import Webhooks

    endpoints = [{"host": f"tcp://127.0.0.1:{closed_port()}", "name": "web-a"}]
    with Webhooks() as hooks:
        env = {"SNS_TOPIC_ARN": aws.topic_arn, "NOTIFY": "change", "STATE_TABLE": aws.table,
               "SPYGLASS_NOTIFY": f"json://{hooks.authority}/hooks/list"}
        first, _ = run(env, aws, {"endpoints": endpoints, "correlation_id": "fleet-a"})
        second, _ = run(env, aws, {"endpoints": endpoints, "correlation_id": "fleet-a"})
        batch, _ = run(env | {"NOTIFY": "always"}, aws,
                       {"Items": endpoints, "BatchInput": {"correlation_id": "exec-9"}})
    assert first["notified"] and first["notify_failed"] == []
    assert not second["notified"] and second["notify_reason"] == "unchanged since the last delivered report"
    assert "notify_sent" not in second and "notify_sent" not in batch
    assert len(hooks.to("/hooks/list")) == 1  # the batch returned its report to the state machine


def test_a_list_event_without_a_correlation_id_keeps_its_notify_state_under_a_name_of_its_hosts(aws):
    endpoints = [{"host": f"tcp://127.0.0.1:{closed_port()}", "name": "web-a"},
                 {"host": f"tcp://127.0.0.1:{closed_port()}", "name": "web-b"}]
    env = {"SNS_TOPIC_ARN": aws.topic_arn, "NOTIFY": "change", "STATE_TABLE": aws.table}
    first, _ = run(env, aws, {"endpoints": endpoints})
    again, _ = run(env, aws, {"endpoints": list(reversed(endpoints))})  # the same hosts, another order
    other, _ = run(env, aws, {"endpoints": endpoints[:1]})
    assert first["notified"] and other["notified"]
    assert not again["notified"] and again["notify_reason"] == "unchanged since the last delivered report"


def test_apply_with_a_list_event_scans_and_says_it_did_not_update(aws):
    event = {"endpoints": [{"host": f"tcp://127.0.0.1:{closed_port()}", "name": "web-a"},
                           {"host": f"tcp://127.0.0.1:{closed_port()}", "name": "web-b"}]}
    result, stream = run({"APPLY": "true"}, aws, event)
    assert result["summary"]["endpoints"] == 2
    assert "scanned, not updated" in stream.getvalue()
