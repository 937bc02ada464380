"""The scan's metrics line: valid embedded metric format within CloudWatch's limits, one per invocation."""
from __future__ import annotations

import io
import json

import jsonschema

from engine.report import ContainerResult, RegistrySummary, Report
from handler.aws import metrics

from .test_lambda import closed_port, run

# The EMF specification's structure (docs.aws.amazon.com, "Embedded metric format specification"),
# with CloudWatch's limits: at most 30 dimensions per set, 100 metrics per directive.
EMF_SCHEMA = {
    "type": "object",
    "required": ["_aws"],
    "properties": {"_aws": {
        "type": "object",
        "required": ["Timestamp", "CloudWatchMetrics"],
        "properties": {
            "Timestamp": {"type": "integer", "minimum": 0},
            "CloudWatchMetrics": {"type": "array", "minItems": 1, "items": {
                "type": "object",
                "required": ["Namespace", "Dimensions", "Metrics"],
                "properties": {
                    "Namespace": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[^:].*$"},
                    "Dimensions": {"type": "array", "items": {
                        "type": "array", "maxItems": 30, "items": {"type": "string", "minLength": 1, "maxLength": 250}}},
                    "Metrics": {"type": "array", "maxItems": 100, "items": {
                        "type": "object", "required": ["Name"],
                        "properties": {"Name": {"type": "string", "minLength": 1, "maxLength": 1024},
                                       "Unit": {"enum": ["Seconds", "Microseconds", "Milliseconds", "Bytes",
                                                         "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits",
                                                         "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent",
                                                         "Count", "Bytes/Second", "Kilobytes/Second",
                                                         "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
                                                         "Bits/Second", "Kilobits/Second", "Megabits/Second",
                                                         "Gigabits/Second", "Terabits/Second", "Count/Second",
                                                         "None"]}}}}}}}}}},
}


def check_emf(document: dict) -> dict:
    """Validate one EMF object as CloudWatch would; returns {metric name: value}."""
    jsonschema.validate(document, EMF_SCHEMA)
    values = {}
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            for name in dimension_set:  # each dimension's value is a top-level string of at most 1024 characters
                assert isinstance(document[name], str) and 0 < len(document[name]) <= 1024, name
        for metric in directive["Metrics"]:
            value = document[metric["Name"]]
            assert isinstance(value, (int, float)) and not isinstance(value, bool), metric
            values[metric["Name"]] = value
    return values


def emf_lines(text: str) -> list[dict]:
    return [doc for doc in map(json.loads, filter(None, text.splitlines())) if "_aws" in doc]


def report(*statuses: str, requests: tuple[int, ...] = ()) -> Report:
    containers = tuple(ContainerResult(id=f"c{i}", name=f"web-{i}", image="nginx:1", status=status)
                       for i, status in enumerate(statuses))
    registries = tuple(RegistrySummary(name=f"r{i}.example", requests={"head": n, "token": 1})
                       for i, n in enumerate(requests))
    return Report.single("tcp://docker-01:2376", 1_700_000_000.0, 1_700_000_002.5, containers, registries)


def test_a_scan_becomes_one_valid_emf_line_with_its_counts():
    stream = io.StringIO()
    metrics.emit(report("stale", "stale", "fresh", "error", "skipped", requests=(3, 4)), endpoint_failed=False,
                 function_name="spyglass-ScannerFunction-1", properties={"scan_id": "s-1"}, stream=stream)
    [document] = emf_lines(stream.getvalue())
    assert check_emf(document) == {"Stale": 2, "Errors": 1, "Scanned": 5, "UnreachableEndpoints": 0,
                                   "Duration": 2500, "RegistryRequests": 9}
    assert document["_aws"]["Timestamp"] == 1_700_000_002_500
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "spyglass"
    assert document["scan_id"] == "s-1" and document["FunctionName"] == "spyglass-ScannerFunction-1"


def test_the_dimensions_stay_bounded_however_many_containers_and_registries():
    document = metrics.emf_document(metrics.ScanMetrics.of(report(*["stale"] * 500, requests=(1,) * 50),
                                                           endpoint_failed=False),
                                    function_name="f", timestamp_ms=0, properties={})
    check_emf(document)
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["FunctionName"]]
    assert len(directive["Metrics"]) == len(metrics.METRICS) <= 100
    assert not [key for key in document if key.startswith("web-") or key.endswith(".example")]


def test_an_invocation_writes_one_metrics_line_and_an_unreachable_endpoint_counts(aws, capsys):
    env = {"DOCKER_HOST": f"tcp://127.0.0.1:{closed_port()}", "SNS_TOPIC_ARN": aws.topic_arn}
    result, _ = run(env, aws)
    [document] = emf_lines(capsys.readouterr().out)
    values = check_emf(document)
    assert values["UnreachableEndpoints"] == 1 and values["Scanned"] == 0
    assert document["FunctionName"] == "spyglass" and document["scan_id"] == result["scan_id"]
    assert document["endpoint"] == result["endpoint"] and document["status"] == "errors"
