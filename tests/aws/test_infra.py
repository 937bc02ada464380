"""infra/: the template passes cfn-lint and says what the handler expects; the package builds reproducibly."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from pathlib import Path

import pytest

from handler.aws.dynamodb import TTL_ATTRIBUTE
from handler.aws.settings import EndpointSpec, targets_for

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


def test_the_functions_are_python_3_12_on_arm64_and_their_handlers_exist(template):
    functions = resources(template, "AWS::Serverless::Function")
    assert set(functions) == {"ScannerFunction", "AggregatorFunction"}  # the scans; the fleet run's merge
    for function in functions.values():
        props = function["Properties"]
        assert (props["Runtime"], props["Architectures"]) == ("python3.12", ["arm64"])
        module, _, name = props["Handler"].rpartition(".")
        assert callable(getattr(importlib.import_module(module), name))
        assert props["CodeUri"] == "build/spyglass-lambda.zip"


def test_every_environment_variable_the_template_sets_is_documented(template):
    documented = (ROOT / "docs" / "lambda.md").read_text()
    from handler import settings as table
    read = {row.env for row in table.rows(table.LAMBDA)}
    for function in resources(template, "AWS::Serverless::Function").values():
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
                branches = statement["Fn::If"][1:] if "Fn::If" in statement else [statement]
                yield from (b for b in branches if b != {"Ref": "AWS::NoValue"})


def test_iam_is_least_privilege(template):
    for statement in statements(template):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), statement
        if statement.get("Resource") == "*":
            assert actions == ["ecr:GetAuthorizationToken"], statement  # the one action without resources


def test_a_batch_of_fleet_items_becomes_an_event_the_handler_accepts(template):
    [machine] = resources(template, "AWS::StepFunctions::StateMachine").values()
    batcher = machine["Properties"]["Definition"]["States"]["ScanBatches"]["ItemBatcher"]
    assert set(batcher["BatchInput"]) == {"correlation_id.$"}
    items = json.loads((ROOT / "infra" / "fleet.example.json").read_text())
    # What ItemBatcher gives each child: the items under "Items", BatchInput beside them.
    targets = targets_for({"Items": items, "BatchInput": {"correlation_id": "exec-1"}}, EndpointSpec())
    assert [spec.host for spec in targets.endpoints] == [item["host"] for item in items]
    assert targets.correlation_id == "exec-1" and targets.batch and targets.fleet is None


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
        assert packager.main(["--deps-dir", str(deps), "--output", str(output), "--no-bytecode"]) == 0
    assert hashlib.sha256(outputs[0].read_bytes()).digest() == hashlib.sha256(outputs[1].read_bytes()).digest()
    import zipfile
    names = zipfile.ZipFile(outputs[0]).namelist()
    assert "handler/aws/lambda_function.py" in names and "engine/scan.py" in names and "somelib/__init__.py" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith("bin/") or n.startswith("tests/")]
    assert names == sorted(names)


def target_python(packager) -> str:
    try:
        return packager.target_python(None)
    except packager.NoTargetPython as exc:
        pytest.skip(str(exc))


def fake_deps(tmp_path: Path) -> Path:
    deps = tmp_path / "deps"
    (deps / "somelib" / "__pycache__").mkdir(parents=True)
    (deps / "somelib" / "__init__.py").write_text("VALUE = 1\n")
    (deps / "somelib" / "__pycache__" / "__init__.cpython-312.pyc").write_bytes(b"stale bytecode from the host")
    return deps


def test_bytecode_for_3_12_keeps_the_zip_byte_for_byte_reproducible(tmp_path):
    packager = load_packager()
    python = target_python(packager)
    deps = fake_deps(tmp_path)
    outputs = [tmp_path / "a.zip", tmp_path / "b.zip"]
    for output in outputs:
        assert packager.main(["--deps-dir", str(deps), "--output", str(output), "--python", python]) == 0
    assert outputs[0].read_bytes() == outputs[1].read_bytes()
    import zipfile
    archive = zipfile.ZipFile(outputs[0])
    names = set(archive.namelist())
    sources = [n for n in names if n.endswith(".py")]
    assert "engine/scan.py" in sources and "somelib/__init__.py" in sources
    for source in sources:
        folder, _, module = source.rpartition("/")
        assert f"{folder}/__pycache__/{module[:-3]}.cpython-312.pyc".lstrip("/") in names, source
    compiled = archive.read("somelib/__pycache__/__init__.cpython-312.pyc")
    assert compiled != b"stale bytecode from the host"
    assert int.from_bytes(compiled[4:8], "little") == 0b01  # PEP 552: hash-based, source never checked
    assert b"/var/task/somelib/__init__.py" in compiled  # the path Lambda runs it from, not the build's


def test_check_runs_the_handler_from_the_zip_alone_with_python_3_12_from_bytecode(tmp_path, capsys):
    import shutil
    import sysconfig

    packager = load_packager()
    python = target_python(packager)
    deps = tmp_path / "deps"
    site = Path(sysconfig.get_path("purelib"))
    for name in ("docker", "requests", "urllib3", "certifi", "idna", "charset_normalizer"):
        shutil.copytree(site / name, deps / name, ignore=shutil.ignore_patterns("__pycache__"))
    output = tmp_path / "spyglass-lambda.zip"
    assert packager.main(["--deps-dir", str(deps), "--output", str(output), "--python", python, "--check"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    found = re.search(r"cold imports \d+ ms, (\d+) modules from the zip, (\d+) of them from bytecode; "
                      r"one invocation: errors", line)
    assert found and found[1] == found[2] and int(found[1]) > 50, line


def test_without_a_3_12_interpreter_the_build_says_what_to_do(tmp_path, capsys):
    packager = load_packager()
    missing = tmp_path / "python3.12"
    code = packager.main(["--deps-dir", str(fake_deps(tmp_path)), "--output", str(tmp_path / "x.zip"),
                          "--python", str(missing)])
    assert code == 2 and not (tmp_path / "x.zip").exists()
    message = capsys.readouterr().err
    assert "no Python 3.12 interpreter" in message and str(missing) in message and "--no-bytecode" in message


def test_the_package_carries_the_version_for_importlib_metadata(tmp_path):
    """The zip holds sources, not an install: a generated dist-info lets engine/version.py answer."""
    import subprocess
    import sys
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    output = tmp_path / "lambda.zip"
    (tmp_path / "deps").mkdir()
    assert load_packager().main(["--deps-dir", str(tmp_path / "deps"), "--output", str(output),
                                       "--no-bytecode"]) == 0
    code = ("import sys; sys.path[:] = [sys.argv[1]] + [p for p in sys.path if 'site-packages' not in p]; "
            "import engine.version; print(engine.version.__version__, engine.version.user_agent())")
    done = subprocess.run([sys.executable, "-I", "-c", code, str(output)], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.stdout.split() == [version, f"spyglass/{version}"], done.stderr


def test_every_runtime_dependency_is_pinned_with_a_hash():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {re.split(r"[<>=!~ \[]", d)[0].lower() for d in project["dependencies"]}
    text = (ROOT / "infra" / "lambda-requirements.txt").read_text()
    pinned = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\\n\s+--hash=sha256:[0-9a-f]{64}", text, re.M))
    assert wanted <= {name.lower() for name in pinned}


# -- what a deploy with missing parameters would get wrong ----------------------------------

def test_rules_refuse_a_stack_without_an_endpoint_alarm_address_or_security_group(template):
    rules = template["Rules"]
    endpoint = rules["EndpointOrFleet"]["Assertions"][0]["Assert"]["Fn::Or"]
    assert {c["Fn::Not"][0]["Fn::Equals"][0]["Ref"] for c in endpoint} == {"DockerHost", "FleetListBucket"}
    alarms = rules["AlarmsReachSomeone"]["Assertions"][0]["Assert"]["Fn::Or"]
    assert {c["Fn::Not"][0]["Fn::Equals"][0]["Ref"] for c in alarms} == {"NotificationEmail", "AlarmTopicArn"}
    vpc = rules["SecurityGroupsWithSubnets"]
    assert vpc["RuleCondition"] == {"Fn::Not": [{"Fn::EachMemberEquals": [{"Ref": "SubnetIds"}, ""]}]}
    assert vpc["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::EachMemberEquals": [{"Ref": "SecurityGroupIds"}, ""]}]}


def test_every_alarm_tells_the_alarm_topic_when_it_fires_and_when_it_clears(template):
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    target = [{"Fn::If": ["OwnAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}]
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == target == alarm["Properties"]["OKActions"], name
    assert {(a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms.values()} >= {
        ("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles"), ("spyglass", "Stale")}


def test_the_topics_take_the_optional_key_and_the_function_may_use_it(template):
    for topic in resources(template, "AWS::SNS::Topic").values():
        assert topic["Properties"]["KmsMasterKeyId"] == {
            "Fn::If": ["HasTopicKey", {"Ref": "TopicKmsKeyArn"}, {"Ref": "AWS::NoValue"}]}
    key_statements = [s for s in statements(template) if s.get("Resource") == {"Ref": "TopicKmsKeyArn"}]
    assert key_statements  # the scanner's role and, in fleet mode, the aggregator's: both publish
    assert all(s["Action"] == ["kms:GenerateDataKey", "kms:Decrypt"] for s in key_statements)


def test_the_aggregation_sends_to_the_notify_urls_of_the_secret_and_may_read_only_that_prefix(template):
    functions = resources(template, "AWS::Serverless::Function")
    aggregator = functions["AggregatorFunction"]["Properties"]["Environment"]["Variables"]
    assert aggregator["SPYGLASS_NOTIFY_SECRET"] == {"Ref": "NotifyUrlsSecret"}
    role = resources(template, "AWS::IAM::Role")["AggregatorRole"]["Properties"]
    [notify] = [p["Fn::If"] for p in role["Policies"] if "Fn::If" in p and p["Fn::If"][0] == "FleetNotifySecret"]
    assert notify[2] == {"Ref": "AWS::NoValue"}  # no secret given: no grant
    read, key = notify[1]["PolicyDocument"]["Statement"]
    assert read["Action"] == "secretsmanager:GetSecretValue" and read["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${SecretsPrefix}*"}
    assert key["Fn::If"][0] == "HasSecretsKey" and key["Fn::If"][1]["Action"] == "kms:Decrypt"
    watched = {a["Properties"]["Dimensions"][0]["Value"]["Ref"]
               for a in resources(template, "AWS::CloudWatch::Alarm").values()
               if a["Properties"]["MetricName"] == "NotifyFailures"}
    assert watched == {"ScannerFunction", "AggregatorFunction"}
