"""The Action's entry logic against the real stack, in a simulated runner.

The secret inputs are what a workflow passes from repository secrets: the PEM contents of
the daemon's client certificate folder, and the contents of a docker config.json holding
alice's credentials. One scan of the demo fleet is shared by the tests that only read it.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from engine.report import schema
from handler.action import INPUT_DEFAULTS, OUTPUTS
from handler.compose import run_scan
from tests.action.runner import parse_output_file, simulate
from tests.reportdoc import containers_of

SCHEMA = schema()


def stack_inputs(stack, names=()) -> dict[str, str]:
    cert_dir = Path(stack.env()["DOCKER_CERT_PATH"])
    return {
        "host": stack.env()["DOCKER_HOST"],
        "tls-ca": (cert_dir / "ca.pem").read_text(),
        "tls-cert": (cert_dir / "cert.pem").read_text(),
        "tls-key": (cert_dir / "key.pem").read_text(),
        "registry-ca": Path(stack.registry_ca).read_text(),
        "docker-config": stack.docker_config.read_text(),
        "insecure-registries": stack.plain.address,
        "names": "\n".join(names),  # one rule for lists everywhere: commas or newlines, not spaces
    }


def secrets_of(stack) -> list[str]:
    """Strings that must never be written anywhere but an add-mask command."""
    cert_dir = Path(stack.env()["DOCKER_CERT_PATH"])
    key_lines = [line for line in (cert_dir / "key.pem").read_text().splitlines() if "-----" not in line]
    auth = json.loads(stack.docker_config.read_text())["auths"][stack.secure.address]["auth"]
    return key_lines + [stack.alice.password, auth, stack.admin_account.password]


class Recorder:
    """The real scan, noting what the secret folder looked like while it ran."""

    def __init__(self):
        self.folder: Path | None = None
        self.modes: dict[str, int] = {}

    def __call__(self, config, **kwargs):
        key = Path(config.daemon.client_key)
        self.folder = key.parent
        self.modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [self.folder, *self.folder.iterdir()]}
        return run_scan(config, **kwargs)


@pytest.fixture(scope="module")
def fleet_run(stack, demo_fleet, tmp_path_factory):
    recorder = Recorder()
    run = simulate(tmp_path_factory.mktemp("action"), stack_inputs(stack, demo_fleet),
                   extra_env={"RUNNER_DEBUG": "1"}, scan=recorder)
    run.scans.append(recorder)
    return run


def test_the_outputs_file_holds_every_output_and_the_counts(fleet_run, demo_fleet):
    assert fleet_run.code == 0, fleet_run.stdout + fleet_run.stderr
    outputs = fleet_run.outputs
    assert sorted(outputs) == sorted(OUTPUTS)
    expected = [status for status, _ in demo_fleet.values()]
    assert outputs["status"] == "errors"  # gone: not-found
    assert outputs["stale-count"] == "1" == str(expected.count("stale"))
    assert outputs["error-count"] == str(expected.count("error"))
    assert outputs["fresh-count"] == str(expected.count("fresh"))


def test_report_path_is_the_json_report_under_runner_temp(fleet_run, demo_fleet):
    path = Path(fleet_run.outputs["report-path"])
    assert path.parent == fleet_run.runner_temp
    report = json.loads(path.read_text())
    jsonschema.validate(report, SCHEMA)
    assert {c["name"]: (c["status"], c["reason"]) for c in containers_of(report)} == demo_fleet


def test_report_html_path_is_the_page_of_the_same_report_under_runner_temp(fleet_run):
    from tests.html.page import parse

    path = Path(fleet_run.outputs["report-html-path"])
    assert path.parent == fleet_run.runner_temp and path.suffix == ".html"
    summary = json.loads(Path(fleet_run.outputs["report-path"]).read_text())["summary"]
    page = parse(path.read_text())
    for key in ("stale", "outdated", "errors", "unreachable", "fresh", "skipped"):
        assert int(page.by_id(f"count-{key}").text) == summary[key], key


def test_the_stale_output_lists_the_stale_container_with_its_digests(fleet_run, stack):
    stale = json.loads(fleet_run.outputs["stale"])
    assert [entry["name"] for entry in stale] == ["stale"]
    entry = stale[0]
    with stack.secure_http() as registry:
        assert entry["remote_digest"] == registry.digest_of("demo/stale", "1")
    assert entry["local_digests"] and entry["remote_digest"] not in entry["local_digests"]
    assert entry["image"] == entry["reference"] == f"{stack.secure.address}/demo/stale:1"
    assert "\n" not in fleet_run.outputs["stale"]


def test_the_summary_reads_summary_line_then_attention_table_then_collapsed_rest(fleet_run, demo_fleet):
    lines = fleet_run.summary.rstrip("\n").splitlines()
    assert lines[0].startswith("### 🔴 spyglass:") and "1 stale" in lines[0] and "1 error" in lines[0]
    details = lines.index(next(line for line in lines if line.startswith("<details>")))
    attention = [line for line in lines[1:details] if line.startswith("| ") and not line.startswith("| Status")]
    assert [row.split(" | ")[0:2] for row in attention] == [["| stale", "stale"], ["| error", "gone"]]
    quiet = [name for name, (status, _) in demo_fleet.items() if status in ("fresh", "skipped")]
    assert f"{len(quiet)} fresh or skipped" in lines[details]
    rest = "\n".join(lines[details:])
    assert all(f"| {name} |" in rest for name in quiet)
    assert lines[-1] == "</details>"


def test_one_warning_per_stale_and_one_error_per_errored_container(fleet_run, stack):
    warnings, errors = fleet_run.commands("warning"), fleet_run.commands("error")
    assert [w.properties["title"] for w in warnings] == ["Stale container stale"]
    assert stack.secure.address + "/demo/stale:1" in warnings[0].message
    assert [e.properties["title"] for e in errors] == ["Container not checked gone"]
    assert "not-found" in errors[0].message


def test_masks_come_before_anything_else_and_cover_the_secrets(fleet_run, stack):
    lines = fleet_run.stdout.splitlines()
    masks = [c.message for c in fleet_run.commands("add-mask")]
    assert all(line.startswith("::add-mask::") for line in lines[:len(masks)])
    assert set(secrets_of(stack)) - {stack.admin_account.password} <= set(masks)


def test_no_secret_reaches_outputs_summary_logs_or_report(fleet_run, stack):
    report = Path(fleet_run.outputs["report-path"]).read_text()
    page = Path(fleet_run.outputs["report-html-path"]).read_text()
    logged = [line for line in fleet_run.stdout.splitlines() if not line.startswith("::add-mask::")]
    everything = "\n".join([fleet_run.output_file, fleet_run.summary, fleet_run.stderr, report, page, *logged])
    assert "PRIVATE KEY" not in everything
    for secret in secrets_of(stack):
        assert secret not in everything
    assert "DEBUG" in fleet_run.stderr  # RUNNER_DEBUG=1 was on: the debug logs were checked too


def test_the_secret_folder_was_private_while_the_scan_ran_and_is_gone_after(fleet_run):
    recorder = fleet_run.scans[0]
    assert recorder.folder.parent == fleet_run.runner_temp
    assert recorder.modes.pop(recorder.folder.name) == 0o700
    assert recorder.modes == {name: 0o600 for name in
                              ("tls-ca.pem", "tls-cert.pem", "tls-key.pem", "registry-ca.pem", "config.json")}
    assert not recorder.folder.exists()
    assert sorted(p.name for p in fleet_run.runner_temp.iterdir()) == sorted(
        Path(fleet_run.outputs[name]).name for name in ("report-path", "report-html-path"))


def test_the_log_shows_the_text_report_with_workflow_commands_stopped(fleet_run):
    lines = fleet_run.stdout.splitlines()
    start = lines.index("::group::spyglass report")
    token = lines[start + 1].removeprefix("::stop-commands::")
    assert len(token) >= 32 and f"::{token}::" in lines
    end = lines.index(f"::{token}::")
    assert "1 stale" in lines[start + 2] and any(line.startswith("STATUS") for line in lines[start:end])
    assert lines[end + 1] == "::endgroup::"


def test_fail_on_stale_fails_the_step_and_says_why(stack, demo_fleet, tmp_path):
    run = simulate(tmp_path, stack_inputs(stack, ["stale", "web-1"]) | {"fail-on-stale": "true"})
    assert run.code == 1
    assert run.outputs["status"] == "stale"
    assert any("fail-on-stale" in e.message for e in run.commands("error"))


def test_fail_on_error_fails_the_step(stack, demo_fleet, tmp_path):
    run = simulate(tmp_path, stack_inputs(stack, ["gone"]) | {"fail-on-error": "true"})
    assert run.code == 1 and run.outputs["status"] == "errors"
    assert [e.properties.get("title") for e in run.commands("error")] == ["Container not checked gone", "spyglass"]


def test_an_all_fresh_scan_is_ok_with_an_empty_stale_list(stack, demo_fleet, tmp_path):
    run = simulate(tmp_path, stack_inputs(stack, ["web-1", "private"]))
    assert run.code == 0
    assert (run.outputs["status"], run.outputs["stale"], run.outputs["fresh-count"]) == ("ok", "[]", "2")
    assert run.commands("warning") == [] and run.commands("error") == []
    assert run.summary.startswith("### ✅ spyglass:")


def test_without_tls_inputs_the_daemon_refuses_and_the_step_exits_3(stack, demo_fleet, tmp_path):
    inputs = stack_inputs(stack, ["web-1"])
    for name in ("tls-cert", "tls-key"):
        del inputs[name]
    run = simulate(tmp_path, inputs)
    assert run.code == 3 and run.output_file == ""
    assert "cannot scan" in run.commands("error")[0].message
    assert "could not scan" in run.summary and "Traceback" not in run.stderr


def test_sns_topic_without_a_publisher_in_this_build_is_a_warning(stack, demo_fleet, tmp_path):
    inputs = stack_inputs(stack, ["web-1"]) | {"sns-topic-arn": "arn:aws:sns:us-east-1:123456789012:spyglass"}
    run = simulate(tmp_path, inputs, load_publisher=lambda: (None, "boto3 is not installed"))
    assert run.code == 0 and run.outputs["status"] == "ok"
    [warning] = run.commands("warning")
    assert "SNS delivery is not available" in warning.message and "boto3" in warning.message


@pytest.fixture
def sns_queue(monkeypatch):
    """A moto SNS topic with a raw-delivery SQS subscription: (topic ARN, receive())."""
    moto = pytest.importorskip("moto", reason="moto is needed for the SNS delivery test")
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_SESSION_TOKEN",
                 "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    import boto3

    with moto.mock_aws():
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        topic = sns.create_topic(Name="spyglass-action")["TopicArn"]
        url = sqs.create_queue(QueueName="spyglass-action")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})

        def receive() -> list[dict]:
            answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            return [json.loads(m["Body"]) for m in answer.get("Messages", [])]

        yield topic, receive


def test_sns_topic_publishes_the_report_through_handler_aws_sns(stack, demo_fleet, tmp_path, sns_queue):
    topic, receive = sns_queue
    run = simulate(tmp_path, stack_inputs(stack, ["stale", "web-1"]) | {"sns-topic-arn": topic})
    assert run.code == 0, run.stdout + run.stderr
    [message] = receive()
    assert message["status"] == "stale" and message["summary"]["stale"] == 1
    assert f"report published to {topic}" in run.stdout
    assert stack.alice.password not in json.dumps(message)


def test_notify_stale_publishes_nothing_for_an_all_fresh_scan(stack, demo_fleet, tmp_path, sns_queue):
    topic, receive = sns_queue
    run = simulate(tmp_path, stack_inputs(stack, ["web-1"]) | {"sns-topic-arn": topic, "notify": "stale"})
    assert run.code == 0 and run.outputs["status"] == "ok"
    assert receive() == [] and "nothing published" in run.stdout


def test_a_failed_sns_delivery_is_an_error_and_exit_3_after_the_outputs(stack, demo_fleet, tmp_path):
    def refuse(report, *, topic_arn):
        from handler.aws.sns import DeliveryError
        raise DeliveryError(f"publish to {topic_arn}: AuthorizationError")

    inputs = stack_inputs(stack, ["web-1"]) | {"sns-topic-arn": "arn:aws:sns:us-east-1:123456789012:t"}
    run = simulate(tmp_path, inputs, load_publisher=lambda: (refuse, ""))
    assert run.code == 3 and run.outputs["status"] == "ok"
    [error] = run.commands("error")
    assert "SNS delivery" in error.message and "AuthorizationError" in error.message


def test_docker_config_credentials_are_what_open_the_private_repository(stack, demo_fleet, tmp_path):
    inputs = stack_inputs(stack, ["private"]) | {"docker-config": "{}"}
    run = simulate(tmp_path, inputs)
    assert run.outputs["status"] == "errors"
    assert "unauthorized" in run.commands("error")[0].message



def test_action_yml_scan_step_runs_as_the_runner_would_run_it(stack, demo_fleet, tmp_path):
    """The scan step's env block and command, expanded as the runner does, in a workspace with a decoy
    `handler` package: -I keeps the workspace off sys.path, so the installed spyglass runs."""
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read action.yml")
    action = yaml.safe_load((Path(__file__).parents[2] / "action.yml").read_text())
    [step] = [s for s in action["runs"]["steps"] if s.get("id") == "scan"]
    inputs = INPUT_DEFAULTS | stack_inputs(stack, ["stale"])
    env = {name: re.sub(r"\$\{\{ inputs\.([a-z-]+) \}\}", lambda m: inputs[m[1]], value)
           for name, value in step["env"].items()}
    runner_temp, workspace = tmp_path / "runner-temp", tmp_path / "workspace"
    python = runner_temp / "spyglass-venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    # Not a symlink to sys.executable: an interpreter finds its venv by the pyvenv.cfg beside the path it
    # was started as, so a link from elsewhere would run the base Python without this venv's packages.
    python.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} \"$@\"\n")
    python.chmod(0o755)
    (workspace / "handler").mkdir(parents=True)
    (workspace / "handler" / "__init__.py").write_text("")
    (workspace / "handler" / "action.py").write_text("raise SystemExit('the workspace decoy ran')\n")
    outputs, summary = tmp_path / "output", tmp_path / "summary"
    env |= {"RUNNER_TEMP": str(runner_temp), "GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(summary),
            "HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    done = subprocess.run([step["shell"], "-c", step["run"]], cwd=workspace, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert parse_output_file(outputs.read_text())["status"] == "stale"
    assert summary.read_text().startswith("### 🟡 spyglass:")


def test_the_inputs_the_action_gained_reach_the_scan(stack, demo_fleet, tmp_path):
    """include-stopped, concurrency, report-file, report-html, output and log-level, from the settings table."""
    report_file, page_file = tmp_path / "workspace" / "spyglass.json", tmp_path / "workspace" / "page" / "spyglass.html"
    inputs = stack_inputs(stack, ["stopped", "web-1"]) | {
        "include-stopped": "Yes", "concurrency": "2", "report-file": str(report_file), "output": "json",
        "log-level": "debug", "report-html": str(page_file)}
    run = simulate(tmp_path, inputs)
    assert run.code == 0, run.stdout + run.stderr
    assert run.outputs["report-path"] == str(report_file)
    assert run.outputs["report-html-path"] == str(page_file) and "web-1" in page_file.read_text()
    report = json.loads(report_file.read_text())
    assert {c["name"]: c["status"] for c in containers_of(report)} == {"stopped": "fresh", "web-1": "fresh"}
    logged = run.stdout[run.stdout.index("spyglass report"):]
    assert '"containers"' in logged  # output: json prints the JSON report in the log group
    assert "secret inputs go to" in run.stderr  # log-level: debug


def test_notify_urls_get_the_scan_and_a_failing_one_is_an_error_with_fail_on_notify_error(stack, demo_fleet,
                                                                                         tmp_path):
    pytest.importorskip("apprise", reason="the notify extra: pip install 'spyglass[notify]'")
    from tests.notify.servers import Webhooks

    password, token = "Pw-action-5e1d77", "tok-action-90b3c1"
    with Webhooks() as hooks:
        urls = f"json://{hooks.authority}/hooks/{token}\nform://u:{password}@{hooks.authority}/fail/{token}"
        run = simulate(tmp_path, stack_inputs(stack, demo_fleet) | {
            "notify-urls": urls, "fail-on-notify-error": "true", "notify": "stale"},
            extra_env={"RUNNER_DEBUG": "1", "GITHUB_SERVER_URL": "https://github.example",
                       "GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "7"})
        [hook] = hooks.to(f"/hooks/{token}")
    assert run.code == 4, run.stdout + run.stderr
    jsonschema.validate(json.loads(json.loads(hook.body)["message"]), SCHEMA)
    assert run.outputs["status"] == "errors" and "spyglass" in run.summary  # the report still lands
    [error] = [c for c in run.commands("error") if "not notified" in c.message]
    assert error.message.startswith(f"notify URL 2 (form://{hooks.authority}…): not notified")
    masks = {c.message for c in run.commands("add-mask")}
    assert {password, token} <= masks
    logged = "\n".join(line for line in (run.stdout + run.stderr).splitlines() if not line.startswith("::add-mask::"))
    assert password not in logged and token not in logged


def test_notify_change_sends_once_per_change_with_the_state_file_a_workflow_caches(stack, demo_fleet, tmp_path):
    """Runs of a scheduled workflow, the state file carried between them as actions/cache would."""
    pytest.importorskip("apprise", reason="the notify extra: pip install 'spyglass[notify]'")
    from tests.notify.servers import Webhooks

    state = tmp_path / "workspace" / ".spyglass" / "state.json"

    def run(n: int, hooks):
        (tmp_path / f"run-{n}").mkdir()
        return simulate(tmp_path / f"run-{n}", stack_inputs(stack, ["stale", "web-1"]) | {
            "notify": "change", "state-file": str(state), "notify-urls": f"json://{hooks.authority}/change"})

    with Webhooks() as hooks:
        first = run(1, hooks)
        assert first.code == 0, first.stdout + first.stderr
        assert len(hooks.to("/change")) == 1 and f"change recorded in {state}" in first.stdout
        name = json.loads(json.loads(hooks.to("/change")[0].body)["message"])["name"]
        assert list(json.loads(state.read_text())["endpoints"]) == [name]

        second = run(2, hooks)  # the same stale set: nothing is sent, and the log says why
        assert second.code == 0 and len(hooks.to("/change")) == 1
        assert "notify URLs: nothing sent: unchanged since the last delivered report (notify: change)" in second.stdout
        assert second.commands("warning") == first.commands("warning")  # the stale container's alone

        state.unlink()  # a cache entry expired (seven days unused) or was deleted: the next run sends again
        third = run(3, hooks)
        assert third.code == 0 and len(hooks.to("/change")) == 2 and state.is_file()

        state.write_text("{not json")  # a corrupt file: a warning and a send, a repeat rather than a loss
        fourth = run(4, hooks)
        assert fourth.code == 0 and len(hooks.to("/change")) == 3
    [warning] = [w for w in fourth.commands("warning") if "state file" in w.message]
    assert str(state) in warning.message and "never notified" in warning.message
    assert list(json.loads(state.read_text())["endpoints"]) == [name]  # replaced by the delivery


def test_notify_change_records_nothing_when_a_url_failed_so_the_next_run_tries_again(stack, demo_fleet, tmp_path):
    pytest.importorskip("apprise", reason="the notify extra: pip install 'spyglass[notify]'")
    from tests.notify.servers import Webhooks

    state = tmp_path / "state.json"
    with Webhooks() as hooks:
        for n in (1, 2):
            (tmp_path / f"run-{n}").mkdir()
            run = simulate(tmp_path / f"run-{n}", stack_inputs(stack, ["stale"]) | {
                "notify": "change", "state-file": str(state),
                "notify-urls": f"json://{hooks.authority}/change\njson://{hooks.authority}/fail"})
            assert run.code == 0 and any("not notified" in w.message for w in run.commands("warning"))
        assert len(hooks.to("/change")) == 2 and len(hooks.to("/fail")) == 2
    assert not state.exists()
