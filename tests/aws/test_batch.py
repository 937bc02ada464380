"""An invocation over many endpoints: the fleet list from S3, a batch's output for Step Functions (moto S3)."""
from __future__ import annotations

import json

import pytest

from engine.errors import ConfigurationError
from handler.aws.batch import STATE_OUTPUT_BYTES, batch_output, fleet_endpoints
from handler.aws.fleetreport import resolve_offloaded
from handler.aws.resultwriter import BatchOutcome, ResultReader
from handler.aws.settings import EndpointSpec, Location, InvalidEventError

from .test_aggregate import batch_report

ROOT = __import__("pathlib").Path(__file__).parents[2]
DEFAULT = EndpointSpec(tls_secret="spyglass/shared")


def put(aws, key: str, body) -> Location:
    aws.client("s3").put_object(Bucket=aws.bucket, Key=key, Body=body if isinstance(body, bytes) else
                                json.dumps(body).encode())
    return Location(aws.bucket, key)


def test_the_example_fleet_list_reads_from_s3_with_the_environments_defaults(aws):
    items = json.loads((ROOT / "infra" / "fleet.example.json").read_text())
    specs = fleet_endpoints(put(aws, "fleet.json", items), DEFAULT, s3=aws.client("s3"))
    assert [s.host for s in specs] == [i["host"] for i in items]
    assert [s.tls_secret for s in specs] == [i["tls_secret"] for i in items]
    assert specs[1].label_enable and specs[2].names == ("runner", "cache") and specs[2].scope == "ci"


def test_a_bad_fleet_list_names_every_bad_item_and_scans_nothing(aws):
    location = put(aws, "fleet.json", [{"host": "tcp://a:2376", "name": "a"}, {"host": "http://b"},
                                       {"host": "tcp://c:2376", "colour": "red"}, "tcp://d:2376"])
    with pytest.raises(InvalidEventError) as caught:
        fleet_endpoints(location, DEFAULT, s3=aws.client("s3"))
    message = str(caught.value)
    assert "fleet item 2 (http://b): host" in message and "fleet item 3 (tcp://c:2376): colour: unknown field" in message
    assert "fleet item 4: expected an object" in message and "fleet item 1" not in message


@pytest.mark.parametrize("body, match", [(b"[not json", "not JSON"), (json.dumps([]).encode(), "fleet: expected a non-empty JSON list")])
def test_a_fleet_list_that_is_no_list_is_a_clear_error(aws, body, match):
    with pytest.raises(ConfigurationError, match=match):
        fleet_endpoints(put(aws, "fleet.json", body), DEFAULT, s3=aws.client("s3"))


def test_a_missing_fleet_list_names_the_object(aws):
    with pytest.raises(ConfigurationError, match=r"s3://spyglass-reports-test/nowhere.json: NoSuchKey"):
        fleet_endpoints(Location(aws.bucket, "nowhere.json"), DEFAULT, s3=aws.client("s3"))


def test_a_small_batch_report_is_the_output_itself(aws):
    doc = batch_report([0, 1])
    assert batch_output(doc, s3=aws.client("s3"), bucket=aws.bucket, prefix="reports/", run_id="r",
                        request_id="q") is doc


def test_a_batch_report_too_large_for_a_state_goes_to_s3_and_the_aggregation_reads_it_back(aws):
    doc = batch_report(range(100), statuses=("fresh",) * 40)
    assert len(json.dumps(doc)) > STATE_OUTPUT_BYTES
    output = batch_output(doc, s3=aws.client("s3"), bucket=aws.bucket, prefix="reports/", run_id="exec/1",
                          request_id="req-1")
    assert output["report_location"] == {"bucket": aws.bucket, "key": "reports/batches/exec_1/req-1.json"}
    assert len(json.dumps(output)) < 1000 and output["summary"] == doc["summary"]
    [resolved] = resolve_offloaded([BatchOutcome("b", "SUCCEEDED", report=output)],
                                   ResultReader(aws.client("s3")).offloaded)
    assert resolved.report == doc


def test_without_a_bucket_a_batch_too_large_is_a_configuration_error(aws):
    doc = batch_report(range(100), statuses=("fresh",) * 40)
    with pytest.raises(ConfigurationError, match="smaller batches"):
        batch_output(doc, s3=aws.client("s3"), bucket="", prefix="reports/", run_id="r", request_id="q")
