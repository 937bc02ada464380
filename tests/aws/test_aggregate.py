"""The fleet run's aggregation step on inputs shaped as Step Functions' ResultWriter writes them (moto S3,
SNS, DynamoDB).

The shapes follow the AWS Step Functions developer guide, "ResultWriter (Map)": the Map state's output
{"MapRunArn", "ResultWriterDetails": {"Bucket", "Key": "<prefix>/<map run id>/manifest.json"}}; the
manifest {"DestinationBucket", "MapRunArn", "ResultFiles": {"FAILED", "PENDING", "SUCCEEDED": [{"Key",
"Size"}]}}; result files SUCCEEDED_0.json, FAILED_0.json, PENDING_0.json, each a JSON array of child
executions with Input and Output as JSON strings (transformation NONE).
"""
from __future__ import annotations

import io
import json
import uuid

import jsonschema
import pytest

from handler.aws.aggregate import invoke
from handler.aws.settings import InvalidEventError

from .conftest import REGION, SCHEMA, FakeContext
from .reports import container

ACCOUNT = "123456789012"
MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:spyglass-fleet"
FLEET_KEY = "config/fleet.json"


def host(i: int) -> str:
    return f"tcp://docker-{i:04d}.internal.example:2376"


def item(i: int) -> dict:
    return {"host": host(i), "name": f"docker-{i:04d}", "tls_secret": f"spyglass/docker-{i:04d}"}


def endpoint_entry(i: int, statuses: list[str]) -> dict:
    containers = [dict(container(i * 100 + k, status).to_dict(), image=f"registry.example.com/app-{k}:1.{k}")
                  for k, status in enumerate(statuses)]
    counts = {s: sum(c["status"] == s for c in containers) for s in ("stale", "fresh", "skipped", "error")}
    return {"endpoint": host(i), "name": f"docker-{i:04d}", "status": "stale" if counts["stale"] else "ok",
            "reason": None, "error": None, "api_version": "1.45",
            "summary": {"scanned": len(containers), "stale": counts["stale"], "fresh": counts["fresh"],
                        "skipped": counts["skipped"], "errors": counts["error"], "outdated": 0},
            "containers": containers}


def batch_report(indices, statuses=("fresh", "stale", "fresh"), heads=3) -> dict:
    """A batch's schema_version 2 report, as the batch invocation returns it."""
    endpoints = [endpoint_entry(i, list(statuses)) for i in indices]
    return {"schema_version": 2, "name": "batch", "started_at": "2026-11-30T22:00:01.000Z",
            "finished_at": "2026-11-30T22:00:03.000Z", "duration_ms": 2000, "status": "stale",
            "summary": {}, "registries": [{"name": "registry.example.com",
                                           "requests": {"ping": 1, "token": 1, "head": heads, "get": 0},
                                           "rate_limit": {}}],
            "endpoints": endpoints}


def child(indices, run: str, status: str = "SUCCEEDED", output=None, error=None, cause=None) -> dict:
    """One child execution record of a result file."""
    name = str(uuid.uuid4())
    record = {"ExecutionArn": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:spyglass-fleet/ScanBatches:{name}",
              "Input": json.dumps({"Items": [item(i) for i in indices], "BatchInput": {"correlation_id": run}}),
              "InputDetails": {"Included": True}, "Name": name, "RedriveCount": 0,
              "RedriveStatus": "NOT_REDRIVABLE", "StartDate": "2026-11-30T22:00:00.500Z",
              "StateMachineArn": f"{MACHINE}/ScanBatches", "Status": status, "StopDate": "2026-11-30T22:00:04.000Z"}
    if status == "SUCCEEDED":
        record["Output"] = json.dumps(output if output is not None else batch_report(indices))
        record["OutputDetails"] = {"Included": True}
        record["RedriveStatusReason"] = "Execution is SUCCEEDED and cannot be redriven"
    else:
        record["Error"], record["Cause"] = error, cause
        record["RedriveStatus"] = "REDRIVABLE"
    return record


class MapRunWriter:
    """Writes what a Map Run's ResultWriter writes, into moto's S3."""

    def __init__(self, aws, run: str = "exec-1"):
        self.aws, self.run = aws, run
        self.prefix = f"fleet-results/{run}/"
        self.map_run_id = str(uuid.uuid4())

    def write(self, **files: list[dict]) -> dict:
        """files: SUCCEEDED=[records], FAILED=[...], PENDING=[...]; returns the Map state's output."""
        s3, base = self.aws.client("s3"), f"{self.prefix}{self.map_run_id}/"
        result_files = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
        for status, records in files.items():
            key = f"{base}{status}_0.json"
            body = json.dumps(records).encode()
            s3.put_object(Bucket=self.aws.bucket, Key=key, Body=body)
            result_files[status].append({"Key": key, "Size": len(body)})
        arn = f"arn:aws:states:{REGION}:{ACCOUNT}:mapRun:spyglass-fleet/ScanBatches:{self.map_run_id}"
        manifest = {"DestinationBucket": self.aws.bucket, "MapRunArn": arn, "ResultFiles": result_files}
        s3.put_object(Bucket=self.aws.bucket, Key=f"{base}manifest.json", Body=json.dumps(manifest).encode())
        return {"MapRunArn": arn, "ResultWriterDetails": {"Bucket": self.aws.bucket, "Key": f"{base}manifest.json"}}

    def event(self, map_output=None, map_error=None) -> dict:
        """The Aggregate task's payload as the state machine builds it (infra/template.yaml)."""
        outcome = {"max_concurrency": 10, "results_prefix": self.prefix}  # the state after Prepare
        outcome.update({"map": map_output} if map_error is None else {"map_error": map_error})
        return {"run": self.run, "started_at": "2026-11-30T22:00:00.000Z", "name": "prod",
                "results": {"bucket": self.aws.bucket, "prefix": self.prefix},
                "fleet": {"bucket": self.aws.bucket, "key": FLEET_KEY}, "outcome": outcome}


def fleet_list(aws, count: int) -> None:
    aws.client("s3").put_object(Bucket=aws.bucket, Key=FLEET_KEY, Body=json.dumps([item(i) for i in range(count)]))


def env(aws, **extra) -> dict:
    return {"SNS_TOPIC_ARN": aws.topic_arn, "REPORT_BUCKET": aws.bucket, "AWS_REGION": REGION,
            "TOKEN_CACHE": f"dynamodb:{aws.table}"} | extra


def run(aws, event, environment=None, stream=None):
    return invoke(event, FakeContext(), env=environment or env(aws), clients=aws.clients,
                  now=lambda: 1_796_076_060.0, log_stream=stream or io.StringIO())


def stored(aws, result) -> dict:
    bucket, key = result["report_location"].removeprefix("s3://").split("/", 1)
    return json.loads(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def by_host(doc) -> dict:
    return {e["endpoint"]: e for e in doc["endpoints"]}


LAMBDA_CAUSE = json.dumps({"errorMessage": "read TLS secret \"spyglass/docker-0004\": AccessDeniedException",
                           "errorType": "ConfigurationError", "requestId": "r-1",
                           "stackTrace": ["  File \"/var/task/handler/aws/lambda_function.py\", line 90"]})


def test_batches_merge_into_one_report_and_no_endpoint_vanishes(aws):
    fleet_list(aws, 11)
    writer = MapRunWriter(aws)
    map_output = writer.write(
        SUCCEEDED=[child([0, 1, 2], writer.run), child([3], writer.run)],
        FAILED=[child([4, 5], writer.run, "FAILED", error="ConfigurationError", cause=LAMBDA_CAUSE),
                child([6], writer.run, "TIMED_OUT", error="States.Timeout", cause="")],
        PENDING=[child([7, 8], writer.run, "PENDING", error=None, cause=None)])
    result = run(aws, writer.event(map_output))
    doc = stored(aws, result)
    endpoints = by_host(doc)
    assert len(doc["endpoints"]) == 11 and set(endpoints) == {host(i) for i in range(11)}
    assert [endpoints[host(i)]["status"] for i in range(4)] == ["stale"] * 4
    assert {i: endpoints[host(i)]["reason"] for i in range(4, 11)} == {
        4: "batch-failed", 5: "batch-failed", 6: "batch-failed", 7: "not-started", 8: "not-started",
        9: "not-scanned", 10: "not-scanned"}
    failed = endpoints[host(4)]
    assert failed["status"] == "error" and failed["containers"] == [] and failed["name"] == "docker-0004"
    assert "ConfigurationError: read TLS secret" in failed["error"] and "stackTrace" not in failed["error"]
    assert "File" not in failed["error"] and "\n" not in failed["error"]
    assert "States.Timeout" in endpoints[host(6)]["error"]
    assert doc["summary"] == {"endpoints": 11, "unreachable": 7, "scanned": 12, "stale": 4, "fresh": 8,
                              "skipped": 0, "errors": 0, "outdated": 0}
    assert doc["registries"] == [{"name": "registry.example.com",
                                  "requests": {"ping": 2, "token": 2, "head": 6, "get": 0}, "rate_limit": {}}]
    assert doc["status"] == "errors" and doc["schema_version"] == 2
    assert doc["run"] | {"map_run_arn": None} == {
        "id": "exec-1", "map_run_arn": None, "map_error": None, "batches": 5, "batches_failed": 2,
        "batches_not_started": 1, "unscanned_endpoints": 7}
    assert doc["run"]["map_run_arn"] == map_output["MapRunArn"]
    assert doc["started_at"] == "2026-11-30T22:00:00.000Z" and doc["duration_ms"] == 60_000
    assert result["unscanned_endpoints"] == 7 and result["notified"]
    jsonschema.validate(doc, SCHEMA)


def test_one_message_for_the_run_says_what_went_unscanned(aws):
    fleet_list(aws, 4)
    writer = MapRunWriter(aws)
    map_output = writer.write(SUCCEEDED=[child([0, 1, 2], writer.run)],
                              FAILED=[child([3], writer.run, "FAILED", error="Lambda.Unknown", cause="")])
    result = run(aws, writer.event(map_output))
    [raw] = aws.receive(aws.raw_queue)
    [envelope] = aws.receive(aws.envelope_queue)
    body = json.loads(raw["Body"])
    assert body["run_id"] == "exec-1" and body["truncated"] is False and len(body["endpoints"]) == 4
    page = body["report_page"]  # the run's HTML page, beside its JSON copy in the bucket
    assert body == dict(stored(aws, result), run_id="exec-1", truncated=False, report_page=page)
    notification = json.loads(envelope["Body"])
    subject = notification["Subject"]
    assert subject == "spyglass fleet prod: 3 stale, 0 errors of 9 on 4 hosts, 1 unscanned"
    from handler.aws.fleetreport import message
    from handler.aws.sns import Location

    bucket, key = result["report_location"].removeprefix("s3://").split("/", 1)
    assert result["report_page"] == page["uri"] == f"s3://{bucket}/{key.removesuffix('.json')}.html"
    stored_page = aws.client("s3").get_object(Bucket=bucket, Key=page["key"])
    html = stored_page["Body"].read().decode()
    assert stored_page["ContentType"].startswith("text/html") and "docker-0003" in html and "batch-failed" in html
    from handler.aws.report_page import PageLink

    link = PageLink(page["bucket"], page["key"], page["url"], 1_796_076_060.0 + 86_400)
    sent = message(stored(aws, result), run_id="exec-1", location=Location(bucket, key), page=link)
    variants = json.loads(sent.message)
    text = variants["email"]
    assert variants["default"] == text and variants["sqs"] == raw["Body"]
    assert text.splitlines()[1] == link.line() and page["url"].startswith("https://")
    assert "1 endpoints went unscanned (1 batches failed, 0 not started)" in text
    assert "registry.example.com/app-1:1.1 is stale on 3 of 4 hosts: docker-0000, docker-0001, docker-0002" in text
    assert "not listed: docker-0003 (batch-failed)" in text and result["report_location"] in text
    attributes = {k: v["StringValue"] for k, v in raw["MessageAttributes"].items()}
    assert attributes | {"scan_id": "-"} == {"fleet": "prod", "status": "errors", "stale_count": "3",
                                             "error_count": "1", "scanned_count": "9", "outdated_count": "0",
                                             "unreachable_count": "1", "unscanned_count": "1", "scan_id": "-",
                                             "truncated": "false"}
    assert len(attributes) <= 10  # SNS's limit


def test_the_metrics_line_counts_unscanned_endpoints_for_the_alarm(aws):
    from .test_metrics import check_emf

    fleet_list(aws, 3)
    writer = MapRunWriter(aws)
    map_output = writer.write(SUCCEEDED=[child([0], writer.run)],
                              FAILED=[child([1, 2], writer.run, "FAILED", error="Lambda.Unknown", cause="")])
    stream = io.StringIO()
    import contextlib
    with contextlib.redirect_stdout(stream):
        run(aws, writer.event(map_output), stream=io.StringIO())
    [line] = [json.loads(text) for text in stream.getvalue().splitlines() if '"fleet metrics"' in text]
    values = check_emf(line)
    assert (values["UnscannedEndpoints"], values["FailedBatches"], values["FleetEndpoints"]) == (2, 1, 3)


def test_notify_on_change_compares_the_fleet_with_its_last_delivered_report(aws):
    fleet_list(aws, 2)
    environment = env(aws, NOTIFY="change")
    results = []
    for statuses in (("fresh", "stale"), ("fresh", "stale"), ("stale", "stale")):
        writer = MapRunWriter(aws, run=f"exec-{len(results)}")
        output = writer.write(SUCCEEDED=[child([0, 1], writer.run, output=batch_report([0, 1], statuses))])
        results.append(run(aws, writer.event(output), environment))
    assert [r["notified"] for r in results] == [True, False, True]
    assert results[1]["notify_reason"] == "unchanged since the last delivered report"
    assert len(aws.receive(aws.raw_queue)) == 2


def test_notify_stale_sends_nothing_for_a_fleet_where_all_is_fresh(aws):
    fleet_list(aws, 2)
    writer = MapRunWriter(aws)
    output = writer.write(SUCCEEDED=[child([0, 1], writer.run, output=batch_report([0, 1], ("fresh",)))])
    result = run(aws, writer.event(output), env(aws, NOTIFY="stale"))
    assert result["status"] == "ok" and not result["notified"] and aws.receive(aws.raw_queue) == []
    assert stored(aws, result)["summary"]["fresh"] == 2


def test_after_a_failed_map_the_manifest_is_found_under_the_runs_prefix(aws):
    fleet_list(aws, 3)
    writer = MapRunWriter(aws)
    writer.write(SUCCEEDED=[child([0], writer.run)],
                 FAILED=[child([1], writer.run, "FAILED", error="Lambda.Unknown", cause="")],
                 PENDING=[child([2], writer.run, "PENDING")])
    error = {"Error": "States.ExceedToleratedFailureThreshold", "Cause": "The specified tolerated failure threshold was exceeded"}
    result = run(aws, writer.event(map_error=error))
    doc = stored(aws, result)
    assert [by_host(doc)[host(i)]["reason"] for i in range(3)] == [None, "batch-failed", "not-started"]
    assert doc["run"]["map_error"].startswith("States.ExceedToleratedFailureThreshold: The specified")


def test_when_no_batch_ran_every_endpoint_of_the_list_is_reported_unscanned(aws):
    fleet_list(aws, 3)
    writer = MapRunWriter(aws)  # nothing written: the Map failed before any child execution
    result = run(aws, writer.event(map_error={"Error": "States.ItemReaderFailed", "Cause": "Access denied"}))
    doc = stored(aws, result)
    assert [e["reason"] for e in doc["endpoints"]] == ["not-scanned"] * 3
    assert doc["summary"]["endpoints"] == 3 and doc["run"]["unscanned_endpoints"] == 3 and result["notified"]


def test_a_batch_report_too_large_for_a_state_is_read_from_where_the_batch_stored_it(aws):
    fleet_list(aws, 2)
    key = "reports/batches/exec-1/batch-1.json"
    aws.client("s3").put_object(Bucket=aws.bucket, Key=key, Body=json.dumps(batch_report([0, 1])))
    writer = MapRunWriter(aws)
    pointer = {"schema_version": 2, "report_location": {"bucket": aws.bucket, "key": key}}
    output = writer.write(SUCCEEDED=[child([0, 1], writer.run, output=pointer)])
    doc = stored(aws, run(aws, writer.event(output)))
    assert [e["status"] for e in doc["endpoints"]] == ["stale", "stale"] and doc["run"]["unscanned_endpoints"] == 0


def test_an_unreadable_stored_batch_report_makes_its_endpoints_unscanned_not_lost(aws):
    fleet_list(aws, 2)
    writer = MapRunWriter(aws)
    pointer = {"schema_version": 2, "report_location": {"bucket": aws.bucket, "key": "reports/batches/gone.json"}}
    output = writer.write(SUCCEEDED=[child([0, 1], writer.run, output=pointer)])
    doc = stored(aws, run(aws, writer.event(output)))
    assert [e["reason"] for e in doc["endpoints"]] == ["batch-failed", "batch-failed"]
    assert "NoSuchKey" in doc["endpoints"][0]["error"]


def test_a_fleet_too_large_for_sns_sends_the_summary_and_the_endpoints_that_need_a_look(aws):
    count = 1000
    fleet_list(aws, count)
    writer = MapRunWriter(aws)
    batches = [child(list(range(start, start + 50)), writer.run,
                     output=batch_report(range(start, start + 50), ("fresh",) * 9 + ("stale" if start == 0 else "fresh",)))
               for start in range(0, count, 50)]
    result = run(aws, writer.event(writer.write(SUCCEEDED=batches)))
    [raw] = aws.receive(aws.raw_queue)
    body = json.loads(raw["Body"])
    assert body["truncated"] is True and body["omitted_endpoints"] == count - 50
    assert len(body["endpoints"]) == 50 and all(len(e["containers"]) == 1 for e in body["endpoints"])
    assert body["report_location"]["uri"] == result["report_location"]
    assert raw["MessageAttributes"]["truncated"]["StringValue"] == "true"
    assert len(stored(aws, result)["endpoints"]) == count
    assert result["message_bytes"] <= 262_144


def test_when_not_even_the_endpoints_that_need_a_look_fit_as_many_as_fit_are_sent(aws):
    count = 1000
    fleet_list(aws, count)
    writer = MapRunWriter(aws)
    batches = [child(list(range(start, start + 50)), writer.run,
                     output=batch_report(range(start, start + 50), ("fresh",) * 9 + ("stale",)))
               for start in range(0, count, 50)]
    result = run(aws, writer.event(writer.write(SUCCEEDED=batches)))
    [raw] = aws.receive(aws.raw_queue)
    body = json.loads(raw["Body"])
    kept = len(body["endpoints"])
    assert 0 < kept < count and body["omitted_endpoints"] == count - kept
    assert result["message_bytes"] <= 262_144 and result["message_bytes"] > 200_000  # filled, not emptied


def test_an_invalid_event_names_every_offending_field(aws):
    with pytest.raises(InvalidEventError) as caught:
        run(aws, {"run": "x", "fleet": {"bucket": "b"}, "outcome": []})
    for field in ("name:", "results:", "fleet:", "outcome:"):
        assert field in str(caught.value)


def test_a_failed_publish_fails_the_invocation_so_the_state_machine_retries(aws):
    from handler.aws.sns import DeliveryError

    fleet_list(aws, 1)
    writer = MapRunWriter(aws)
    output = writer.write(SUCCEEDED=[child([0], writer.run)])
    with pytest.raises(DeliveryError, match="NotFound"):
        run(aws, writer.event(output), env(aws, SNS_TOPIC_ARN=aws.topic_arn + "-missing"))


def test_the_fleet_fingerprint_of_a_document_is_the_reports_own():
    from engine.report import UNREACHABLE, EndpointResult, Report
    from handler.outcome import document_fingerprint, fingerprint

    containers = tuple(container(i, status) for i, status in enumerate(["stale", "error", "fresh", "stale"]))
    report = Report("prod", 1_700_000_000.0, 1_700_000_060.0, (
        EndpointResult(host(0), containers[:2], name="a", api_version="1.45"),
        EndpointResult(host(1), containers[2:], name="b", api_version="1.45"),
        EndpointResult(host(2), failure=UNREACHABLE, reason="connection-refused", error="refused")))
    assert document_fingerprint(report.to_dict()) == fingerprint(report)
    moved = Report("prod", 1.0, 2.0, (report.endpoints[1], report.endpoints[0], report.endpoints[2]))
    assert document_fingerprint(moved.to_dict()) == fingerprint(report)  # order never counts
    fewer = Report("prod", 1.0, 2.0, report.endpoints[:2])
    assert document_fingerprint(fewer.to_dict()) != fingerprint(report)


def test_the_run_sends_its_one_report_to_the_notify_urls_from_the_secret_and_a_failing_one_is_a_metric(aws):
    pytest.importorskip("apprise", reason="the notify extra: pip install 'spyglass[notify]'")
    from tests.notify.servers import Webhooks
    from tests.reportdoc import read_back
    from .test_lambda import notify_metric

    token = "tok-fleet-5d7c19"
    fleet_list(aws, 3)
    writer = MapRunWriter(aws)
    as_written = read_back(batch_report([0, 1]))  # containers in the engine's order, counts filled in
    map_output = writer.write(SUCCEEDED=[child([0, 1], writer.run, output=as_written)],
                              FAILED=[child([2], writer.run, "FAILED", error="Lambda.Unknown", cause="")])
    stream, printed = io.StringIO(), io.StringIO()
    with Webhooks() as hooks:
        aws.put_secret("spyglass/notify", json.dumps([f"json://{hooks.authority}/hooks/{token}",
                                                      f"form://{hooks.authority}/fail/{token}"]))
        environment = env(aws, SPYGLASS_NOTIFY_SECRET="spyglass/notify", SPYGLASS_LOG_LEVEL="debug")
        import contextlib
        with contextlib.redirect_stdout(printed):
            result = run(aws, writer.event(map_output), environment, stream=stream)
    [delivery] = hooks.to(f"/hooks/{token}")
    payload = json.loads(delivery.body)
    report = json.loads(payload["message"])
    jsonschema.validate(report, SCHEMA)
    assert report == {k: v for k, v in stored(aws, result).items() if k != "run"}  # the stored report, whole
    assert payload["title"] == "spyglass: prod: 2 stale, 0 errors (6 containers on 3 endpoints, 1 not listed)"
    assert result["notified"] and len(aws.receive(aws.raw_queue)) == 1  # SNS as before, once
    assert result["notify_sent"] == [f"notify URL 1 (json://{hooks.authority}…)"]
    assert result["notify_failed"] == [f"notify URL 2 (form://{hooks.authority}…)"]
    log = stream.getvalue()
    assert "notify URL 2" in log and "not notified" in log and token not in log + printed.getvalue()
    assert notify_metric(printed.getvalue())["NotifyFailures"] == 1


def test_under_notify_change_an_unchanged_run_sends_to_no_url_and_a_failed_url_is_tried_again(aws):
    pytest.importorskip("apprise", reason="the notify extra: pip install 'spyglass[notify]'")
    from tests.notify.servers import Webhooks

    fleet_list(aws, 2)
    results = []
    with Webhooks() as hooks:
        good, failing = f"json://{hooks.authority}/hooks/fleet", f"json://{hooks.authority}/fail/fleet"
        for urls in ([good, failing], [good], [good]):  # the failure keeps the state unrecorded
            writer = MapRunWriter(aws, run=f"exec-{len(results)}")
            output = writer.write(SUCCEEDED=[child([0, 1], writer.run)])
            environment = env(aws, NOTIFY="change", SPYGLASS_NOTIFY=",".join(urls))
            results.append(run(aws, writer.event(output), environment))
    assert [r["notified"] for r in results] == [True, True, False]
    assert results[0]["notify_failed"] == [f"notify URL 2 (json://{hooks.authority}…)"]
    assert results[2]["notify_reason"] == "unchanged since the last delivered report"
    assert len(hooks.to("/hooks/fleet")) == 2 and len(aws.receive(aws.raw_queue)) == 2


def test_without_a_topic_the_notify_urls_still_get_the_run(aws):
    pytest.importorskip("apprise", reason="the notify extra: pip install 'spyglass[notify]'")
    from tests.notify.servers import Webhooks

    fleet_list(aws, 1)
    writer = MapRunWriter(aws)
    output = writer.write(SUCCEEDED=[child([0], writer.run)])
    with Webhooks() as hooks:
        environment = env(aws, SPYGLASS_NOTIFY=f"json://{hooks.authority}/hooks/fleet")
        del environment["SNS_TOPIC_ARN"]
        result = run(aws, writer.event(output), environment)
    assert not result["notified"] and result["notify_sent"] and len(hooks.to("/hooks/fleet")) == 1
    assert aws.receive(aws.raw_queue) == []


def test_with_neither_a_topic_nor_a_notify_url_nothing_is_decided_and_no_state_is_read(aws):
    fleet_list(aws, 1)
    writer = MapRunWriter(aws)
    output = writer.write(SUCCEEDED=[child([0], writer.run)])
    environment = env(aws, NOTIFY="change", STATE_TABLE="no-such-table")
    del environment["SNS_TOPIC_ARN"]
    stream = io.StringIO()
    result = run(aws, writer.event(output), environment, stream=stream)
    assert not result["notified"] and result["notify_reason"] == "no SNS_TOPIC_ARN set"
    assert "notification skipped: no SNS_TOPIC_ARN set" in stream.getvalue()
    assert "notifying anyway" not in stream.getvalue()  # the missing table was never asked


def test_a_version_checked_container_with_nothing_newer_is_not_outdated_in_the_document_fingerprint():
    from dataclasses import replace

    from engine.report import EndpointResult, Report
    from engine.versions import Newer
    from handler.outcome import document_fingerprint, fingerprint

    checked = replace(container(1, "fresh"), newer=Newer())  # its tags were listed; nothing newer
    report = Report("prod", 1_700_000_000.0, 1_700_000_060.0,
                    (EndpointResult(host(0), (checked,), name="a", api_version="1.45"),))
    unchecked = Report("prod", 1.0, 2.0, (EndpointResult(host(0), (container(1, "fresh"),), name="a"),))
    assert document_fingerprint(report.to_dict()) == fingerprint(report) == fingerprint(unchecked)
