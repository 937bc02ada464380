"""infra/: the template passes cfn-lint and says what the handler expects; the package builds reproducibly."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from pathlib import Path

import pytest

from handler.aws.dynamodb import TTL_ATTRIBUTE
from handler.aws.settings import endpoint_for, EndpointSpec

ROOT = Path(__file__).parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"


@pytest.fixture(scope="module")
def template():
    from cfnlint.decode import decode

    data, errors = decode(str(TEMPLATE))
    assert not errors
    return data


def resources(template, kind):
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def test_the_template_passes_cfn_lint_with_informational_checks():
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(TEMPLATE, config=ManualArgs(regions=["us-east-1", "eu-central-1", "ap-southeast-2"],
                                                    include_checks=["I"]))
    assert [str(m) for m in matches] == []


def test_the_function_is_python_3_12_on_arm64_and_its_handler_exists(template):
    [function] = resources(template, "AWS::Serverless::Function").values()
    props = function["Properties"]
    assert (props["Runtime"], props["Architectures"]) == ("python3.12", ["arm64"])
    module, _, name = props["Handler"].rpartition(".")
    assert callable(getattr(importlib.import_module(module), name))
    assert props["CodeUri"] == "build/spyglass-lambda.zip"


def test_every_environment_variable_the_template_sets_is_documented(template):
    [function] = resources(template, "AWS::Serverless::Function").values()
    documented = (ROOT / "docs" / "lambda.md").read_text()
    from handler import settings as table
    read = {row.env for row in table.rows(table.LAMBDA)}
    for name in function["Properties"]["Environment"]["Variables"]:
        assert f"`{name}`" in documented and name in read, name


def test_schedule_table_and_alarm(template):
    [schedule] = resources(template, "AWS::Scheduler::Schedule").values()
    assert schedule["Properties"]["ScheduleExpression"] == {"Ref": "ScheduleExpression"}
    assert "DeadLetterConfig" in schedule["Properties"]["Target"]
    [table] = resources(template, "AWS::DynamoDB::Table").values()
    assert table["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["Properties"]["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    assert table["Properties"]["SSESpecification"]["SSEEnabled"] is True
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    assert any(a["Properties"]["MetricName"] == "Errors" and a["Properties"]["Namespace"] == "AWS/Lambda"
               for a in alarms.values())
    [invoke_config] = resources(template, "AWS::Lambda::EventInvokeConfig").values()
    assert "OnFailure" in invoke_config["Properties"]["DestinationConfig"]


def statements(template):
    for role in resources(template, "AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            if "Fn::If" in policy:
                policy = policy["Fn::If"][1]
            for statement in policy["PolicyDocument"]["Statement"]:
                yield from (statement["Fn::If"][1:] if "Fn::If" in statement else [statement])


def test_iam_is_least_privilege(template):
    for statement in statements(template):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), statement
        if statement.get("Resource") == "*":
            assert actions == ["ecr:GetAuthorizationToken"], statement  # the one action without resources


def test_a_fleet_item_becomes_an_event_the_handler_accepts(template):
    [machine] = resources(template, "AWS::StepFunctions::StateMachine").values()
    selector = machine["Properties"]["Definition"]["States"]["ScanEndpoints"]["ItemSelector"]
    assert set(selector) == {"endpoint.$", "correlation_id.$"}
    for item in json.loads((ROOT / "infra" / "fleet.example.json").read_text()):
        spec, correlation = endpoint_for({"endpoint": item, "correlation_id": "exec-1"}, EndpointSpec())
        assert spec.host == item["host"] and correlation == "exec-1"


# -- packaging ----------------------------------------------------------------------

def load_packager():
    spec = importlib.util.spec_from_file_location("spyglass_package", ROOT / "infra" / "package.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_package_is_reproducible_and_holds_only_sources(tmp_path):
    deps = tmp_path / "deps"
    (deps / "somelib").mkdir(parents=True)
    (deps / "somelib" / "__init__.py").write_text("VALUE = 1\n")
    (deps / "somelib" / "__pycache__").mkdir()
    (deps / "somelib" / "__pycache__" / "x.cpython-312.pyc").write_bytes(b"\0")
    (deps / "bin").mkdir()
    (deps / "bin" / "somelib-cli").write_text("#!/host/python\n")
    packager = load_packager()
    outputs = [tmp_path / "a.zip", tmp_path / "b.zip"]
    for output in outputs:
        assert packager.main(["--deps-dir", str(deps), "--output", str(output)]) == 0
    assert hashlib.sha256(outputs[0].read_bytes()).digest() == hashlib.sha256(outputs[1].read_bytes()).digest()
    import zipfile
    names = zipfile.ZipFile(outputs[0]).namelist()
    assert "handler/aws/lambda_function.py" in names and "engine/scan.py" in names and "somelib/__init__.py" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith("bin/") or n.startswith("tests/")]
    assert names == sorted(names)


def test_every_runtime_dependency_is_pinned_with_a_hash():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {re.split(r"[<>=!~ \[]", d)[0].lower() for d in project["dependencies"]}
    text = (ROOT / "infra" / "lambda-requirements.txt").read_text()
    pinned = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\\n\s+--hash=sha256:[0-9a-f]{64}", text, re.M))
    assert wanted <= {name.lower() for name in pinned}
