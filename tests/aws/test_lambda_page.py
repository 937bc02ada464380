"""The Lambda stores the HTML report beside the JSON report and links it from SNS and the notify messages.

AWS under moto (tests/aws/conftest.py); the endpoint is unreachable here, so no stack is needed:
the page then shows the endpoint not listed. test_lambda_stack.py covers a real scan's delivery,
test_report_page.py fetches a presigned link over HTTP.
"""
from __future__ import annotations

import json
import urllib.parse

import pytest

from handler.aws.sns import compose
from tests.aws.test_lambda import closed_port, run
from tests.html.page import parse

GLANCE_KEYS = ("stale", "outdated", "errors", "unreachable", "fresh", "skipped")


def _page_env(aws, **extra) -> dict:
    return {"DOCKER_HOST": f"tcp://127.0.0.1:{closed_port()}", "SNS_TOPIC_ARN": aws.topic_arn,
            "REPORT_BUCKET": aws.bucket, **extra}


def test_the_page_is_stored_beside_the_json_key_and_the_sns_json_links_it(aws):
    result, _ = run(_page_env(aws, SPYGLASS_REPORT_LINK_EXPIRY="600"), aws)
    [raw] = aws.receive(aws.raw_queue)
    doc = json.loads(raw["Body"])
    page = doc["report_page"]
    assert result["report_page"] == page["uri"] == f"s3://{aws.bucket}/{page['key']}"
    assert page["key"].startswith("reports/") and page["key"].endswith(f"-{result['scan_id']}.html")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(page["url"]).query)
    assert query["X-Amz-Expires"] == ["600"] and "X-Amz-Signature" in query
    stored = aws.client("s3").get_object(Bucket=aws.bucket, Key=page["key"])
    assert stored["ContentType"] == "text/html; charset=utf-8"
    shown = parse(stored["Body"].read().decode())
    assert {key: int(shown.by_id(f"count-{key}").text) for key in GLANCE_KEYS} == {
        key: doc["summary"][key] for key in GLANCE_KEYS}
    assert doc["summary"]["unreachable"] == 1


def test_without_a_bucket_there_is_no_page_and_no_link(aws):
    env = _page_env(aws)
    del env["REPORT_BUCKET"]
    result, _ = run(env, aws)
    [raw] = aws.receive(aws.raw_queue)
    assert "report_page" not in json.loads(raw["Body"]) and "report_page" not in result


def test_a_bucket_that_refuses_the_page_costs_the_link_not_the_message(aws):
    result, stream = run(_page_env(aws, REPORT_BUCKET="no-such-bucket"), aws)
    [raw] = aws.receive(aws.raw_queue)
    assert result["notified"] and "report_page" not in json.loads(raw["Body"])
    assert "the messages go without its link" in stream.getvalue()


def test_a_link_expiry_beyond_seven_days_is_a_configuration_error(aws):
    from engine.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="SPYGLASS_REPORT_LINK_EXPIRY"):
        run(_page_env(aws, SPYGLASS_REPORT_LINK_EXPIRY="604801"), aws)


def test_the_notify_message_leads_with_the_link(aws):
    pytest.importorskip("apprise", reason="the notify extra: pip install 'spyglass[notify]'")
    from tests.notify.servers import Webhooks

    with Webhooks() as hooks:
        result, stream = run(_page_env(aws, SPYGLASS_NOTIFY=f"form://{hooks.authority}/hooks/page"), aws)
        [request] = hooks.to("/hooks/page")
    url = json.loads(aws.receive(aws.raw_queue)[0]["Body"])["report_page"]["url"]
    message = dict(urllib.parse.parse_qsl(request.body.decode()))["message"]
    first = message.splitlines()[0]
    assert first.startswith("Report page (link valid until ") and first.endswith(f": {url}")
    assert url not in stream.getvalue()  # a capability: in the messages, never in the log


def test_every_sns_variant_carries_the_link_even_when_the_report_is_cut():
    from engine.report import ContainerResult, Report
    from handler.aws.report_page import PageLink

    many = tuple(ContainerResult(f"{i:064x}", f"c{i}", "app:1", "stale") for i in range(3000))
    report = Report.single("tcp://h:2376", 1_700_000_000.0, 1_700_000_001.0, many)
    link = PageLink("b", "reports/x.html", "https://b.s3.amazonaws.com/reports/x.html?X-Amz-Signature=ab",
                    1_700_086_400.0)
    message = compose(report, "scan-1", page=link)
    variants = json.loads(message.message)
    assert message.truncated
    for name in ("default", "email"):
        assert variants[name].splitlines()[1] == link.line()
    assert json.loads(variants["sqs"])["report_page"]["url"] == link.url


def test_a_real_scan_stores_the_page_of_the_report_it_publishes(stack, demo_fleet, aws):
    from tests.aws.test_lambda_stack import docker_config, run as run_on_stack, tls_material

    env = {"DOCKER_HOST": stack.daemon.host, "SNS_TOPIC_ARN": aws.topic_arn, "REPORT_BUCKET": aws.bucket,
           "SPYGLASS_TLS_SECRET": aws.put_secret("spyglass/test/tls", tls_material(stack)),
           "SPYGLASS_REGISTRY_AUTH_SECRET": aws.put_secret("spyglass/registries", docker_config(stack)),
           "SPYGLASS_REGISTRY_CA": str(stack.registry_ca), "SPYGLASS_INSECURE_REGISTRIES": stack.plain.address,
           "AWS_REGION": "us-east-1"}
    result, logs = run_on_stack(env, aws=aws)
    doc = json.loads(aws.receive(aws.raw_queue)[0]["Body"])
    stored = aws.client("s3").get_object(Bucket=aws.bucket, Key=doc["report_page"]["key"])["Body"].read().decode()
    page = parse(stored)
    assert {key: int(page.by_id(f"count-{key}").text) for key in GLANCE_KEYS} == {
        key: doc["summary"][key] for key in GLANCE_KEYS}
    rows = [e for e in page.all("tr") if "data-status" in e.attrs]
    for name, (status, _reason) in demo_fleet.items():
        assert any(name in row.text and row.attrs["data-status"].split()[0] == status for row in rows), name
    assert not any(doc["report_page"]["url"] in json.dumps(line) for line in logs)
