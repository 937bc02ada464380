"""The fleet state machine's definition, walked state by state (infra/template.yaml).

cfn-lint checks the definition against the States Language schema (tests/aws/test_infra.py); this
checks what the schema cannot: that every transition lands on a state, every state is reachable,
the batches' throttles are waited out for minutes, a failed Map still reaches the aggregation, the
numbers the Map reads are in its input, and every ARN is built from the partition.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
LAMBDA_TRANSIENT = {"Lambda.TooManyRequestsException", "Lambda.ServiceException", "Lambda.AWSLambdaException",
                    "Lambda.SdkClientException"}


@pytest.fixture(scope="module")
def template():
    from cfnlint.decode import decode

    data, errors = decode(str(TEMPLATE))
    assert not errors
    return data


@pytest.fixture(scope="module")
def machine(template):
    return template["Resources"]["FleetStateMachine"]["Properties"]


@pytest.fixture(scope="module")
def definition(machine):
    return machine["Definition"]


def walk(states: dict):
    """(name, state, the states dict it belongs to) for every state, Map processors included."""
    for name, state in states.items():
        yield name, state, states
        if state["Type"] == "Map":
            yield from walk(state["ItemProcessor"]["States"])


def targets(state: dict) -> list[str]:
    found = [state[k] for k in ("Next", "Default") if k in state]
    found += [choice["Next"] for choice in state.get("Choices", [])]
    found += [catch["Next"] for catch in state.get("Catch", [])]
    return found


def test_every_transition_lands_on_a_state_of_its_own_level_and_every_state_is_reachable(definition):
    def check(states: dict, start: str) -> None:
        assert start in states
        for name, state in states.items():
            for target in targets(state):
                assert target in states, f"{name} -> {target}"
            ends = state.get("End") is True or state["Type"] in ("Succeed", "Fail", "Choice")
            assert ends or "Next" in state, f"{name} neither ends nor goes on"
        reached, frontier = set(), [start]
        while frontier:
            name = frontier.pop()
            if name not in reached:
                reached.add(name)
                frontier += targets(states[name])
        assert reached == set(states), set(states) - reached
        for state in states.values():
            if state["Type"] == "Map":
                check(state["ItemProcessor"]["States"], state["ItemProcessor"]["StartAt"])

    check(definition["States"], definition["StartAt"])


def test_every_task_retries_lambdas_transient_errors_with_backoff(definition):
    tasks = [(name, state) for name, state, _ in walk(definition["States"]) if state["Type"] == "Task"]
    assert {name for name, _ in tasks} == {"ScanBatch", "Aggregate"}
    for name, task in tasks:
        covered = {error for rule in task["Retry"] for error in rule["ErrorEquals"]}
        assert LAMBDA_TRANSIENT <= covered, name
        for rule in task["Retry"]:
            assert rule["BackoffRate"] >= 2 and rule["MaxAttempts"] >= 3, (name, rule)


def retry_wait_caps(rule: dict) -> list[float]:
    """The cap of each wait before a retry (full jitter waits a random time up to it)."""
    caps, wait = [], float(rule["IntervalSeconds"])
    for _ in range(rule["MaxAttempts"]):
        caps.append(min(wait, rule.get("MaxDelaySeconds", float("inf"))))
        wait *= rule["BackoffRate"]
    return caps


def test_a_throttled_batch_waits_out_a_burst_of_minutes_before_it_counts_as_failed(definition):
    scan = definition["States"]["ScanBatches"]["ItemProcessor"]["States"]["ScanBatch"]
    [rule] = [r for r in scan["Retry"] if "Lambda.TooManyRequestsException" in r["ErrorEquals"]]
    caps = retry_wait_caps(rule)
    assert sum(caps) >= 600  # 5 + 10 + 20 + 40 + 80 + 5 x 120 s = 755 s: more than ten minutes
    assert max(caps) <= 120 and rule["JitterStrategy"] == "FULL"  # no batch sleeps for long at once
    assert sum(caps) < 900  # and the run is not held for more than a quarter of an hour


def test_a_failed_map_still_reaches_the_aggregation_and_then_fails_the_run(definition):
    states = definition["States"]
    scan = states["ScanBatches"]
    [catch] = scan["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"] and catch["Next"] == "Aggregate"
    assert catch["ResultPath"] == "$.map_error" and scan["ResultPath"] == "$.map" and scan["Next"] == "Aggregate"
    choice = states[states["Aggregate"]["Next"]]
    [rule] = choice["Choices"]
    assert rule == {"Variable": "$.map_error", "IsPresent": True, "Next": "FleetRunFailed"}
    assert states["FleetRunFailed"]["Type"] == "Fail" and states[choice["Default"]]["Type"] == "Succeed"
    assert "ToleratedFailurePercentage" not in scan  # 100 % tolerated would hide a run where nothing ran
    assert "ToleratedFailurePercentagePath" in scan


def test_the_map_batches_items_and_writes_its_results_to_the_report_bucket(machine, definition):
    scan = definition["States"]["ScanBatches"]
    assert scan["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert scan["ItemBatcher"]["MaxItemsPerBatchPath"] == "$.batch_size"
    writer = scan["ResultWriter"]
    assert writer["Resource"] == "arn:${Partition}:states:::s3:putObject"
    assert writer["Parameters"] == {"Bucket": "${ResultsBucket}", "Prefix.$": "$.results_prefix"}
    assert machine["DefinitionSubstitutions"]["ResultsBucket"] == {"Ref": "ReportBucket"}
    assert "ResultSelector" in definition["States"]["Aggregate"]  # a small state: not the fleet report


def test_the_map_reads_only_what_prepare_passes_and_the_schedule_gives_prepare_every_field(template, definition):
    prepare = definition["States"]["Prepare"]["Parameters"]
    passed = {key.removesuffix(".$") for key in prepare}
    scan = definition["States"]["ScanBatches"]
    read = {scan["MaxConcurrencyPath"], scan["ItemBatcher"]["MaxItemsPerBatchPath"],
            scan["ToleratedFailurePercentagePath"], scan["ResultWriter"]["Parameters"]["Prefix.$"]}
    assert {path.removeprefix("$.") for path in read} <= passed
    from_input = {value.removeprefix("$.") for value in prepare.values() if value.startswith("$.")}
    schedule_input = template["Resources"]["Schedule"]["Properties"]["Target"]["Input"]["Fn::If"][1]["Fn::Sub"]
    example = json.loads(re.sub(r"\$\{\w+\}", "1", schedule_input))
    assert set(example) == from_input == {"max_concurrency", "batch_size", "tolerated_failure_percentage"}
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    assert all(f'"{field}"' in deploy for field in from_input)  # the manual start-execution input names them


def test_every_arn_in_the_definition_is_built_from_the_partition(machine, definition):
    text = json.dumps(definition)
    assert "arn:aws:" not in text
    substitutions = machine["DefinitionSubstitutions"]
    used = set(re.findall(r"\$\{(\w+)\}", text))
    assert used == set(substitutions), used ^ set(substitutions)
    for name, state, _ in walk(definition["States"]):
        for resource in [state.get("Resource"), state.get("ItemReader", {}).get("Resource"),
                         state.get("ResultWriter", {}).get("Resource")]:
            if resource is None:
                continue
            if resource.startswith("arn:"):
                assert resource.startswith("arn:${Partition}:"), (name, resource)
            else:
                [key] = re.fullmatch(r"\$\{(\w+)\}", resource).groups()
                assert "${AWS::Partition}" in json.dumps(substitutions[key]), (name, key)
    assert substitutions["Partition"] == {"Ref": "AWS::Partition"}


def test_the_roles_allow_what_the_result_writer_and_the_aggregation_need(template):
    fleet = template["Resources"]["FleetRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    [writer] = [s for s in fleet if s.get("Sid") == "ResultWriter"]
    assert set(writer["Action"]) == {"s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts",
                                     "s3:AbortMultipartUpload"}
    assert writer["Resource"] == {"Fn::Sub": "${ReportBucket.Arn}/fleet-results/*"}
    invoke = [s for s in fleet if s.get("Sid") == "ScanAndAggregate"][0]["Resource"]
    assert {"Fn::GetAtt": ["AggregatorFunction", "Arn"]} in invoke
    aggregator = template["Resources"]["AggregatorRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    actions = {s["Sid"]: s["Action"] for s in aggregator}
    assert actions["ReadResults"] == "s3:GetObject" and actions["StoreFleetReport"] == "s3:PutObject"
    assert actions["Publish"] == "sns:Publish" and actions["FindManifestAfterAFailedMap"] == "s3:ListBucket"


def test_alarms_watch_throttles_unscanned_endpoints_and_failed_runs(template):
    alarms = {name: a["Properties"] for name, a in template["Resources"].items()
              if a["Type"] == "AWS::CloudWatch::Alarm"}
    watched = {(a["Namespace"], a["MetricName"], json.dumps(a.get("Dimensions"))) for a in alarms.values()}
    scanner = json.dumps([{"Name": "FunctionName", "Value": {"Ref": "ScannerFunction"}}])
    aggregator = json.dumps([{"Name": "FunctionName", "Value": {"Ref": "AggregatorFunction"}}])
    assert ("AWS/Lambda", "Throttles", scanner) in watched
    assert ("spyglass", "UnscannedEndpoints", aggregator) in watched
    assert ("AWS/Lambda", "Errors", aggregator) in watched
    assert any(a["MetricName"] == "ExecutionsFailed" for a in alarms.values())
    unscanned = alarms["FleetUnscannedAlarm"]
    assert (unscanned["Threshold"], unscanned["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_the_default_concurrency_is_one_a_new_account_can_hold(template):
    parameters = template["Parameters"]
    assert parameters["FleetMaxConcurrency"]["Default"] == 10
    assert parameters["FleetBatchSize"]["Default"] >= 2  # batches share lookups
