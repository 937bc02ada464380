"""The settings table: one parser per type, the same rule in every place, errors naming setting and source."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from engine.errors import ConfigurationError
from handler import settings as table
from handler.settings import (BOOL, HOST, LIST, TABLE, Choice, Number, Setting, TokenCache, Whole, action_inputs,
                              environment, flags, resolve)


@pytest.mark.parametrize("kind, text, value", [
    (BOOL, "true", True), (BOOL, "TRUE", True), (BOOL, " Yes ", True), (BOOL, "1", True), (BOOL, "on", True),
    (BOOL, "false", False), (BOOL, "No", False), (BOOL, "0", False), (BOOL, "OFF", False),
    (Whole(low=1), "8", 8), (Whole(low=1), " 1 ", 1), (Whole(low=1, high=3), "3", 3),
    (Number(above=0), "0.5", 0.5), (Number(above=0), "120", 120.0), (Number(at_least=0), "0", 0.0),
    (Choice("json", "text"), "JSON", "json"),
    (LIST, "a,b", ("a", "b")), (LIST, " a , ,b ,", ("a", "b")), (LIST, "a\nb,c\n\n", ("a", "b", "c")),
    (LIST, "", ()), (LIST, "web api", ("web api",)),
    (HOST, "tcp://docker-01:2376", "tcp://docker-01:2376"),
    (HOST, "docker-01:2376", "tcp://docker-01:2376"), (HOST, "[::1]:2376", "tcp://[::1]:2376"), (HOST, " unix:///var/run/docker.sock ",
                                                             "unix:///var/run/docker.sock"),
    (TokenCache(), "memory", ""), (TokenCache(), "dynamodb:spyglass-tokens", "spyglass-tokens"),
    (TABLE, "arn:aws:dynamodb:eu-west-1:123456789012:table/tokens", "arn:aws:dynamodb:eu-west-1:123456789012:table/tokens"),
])
def test_a_good_value_parses(kind, text, value):
    assert kind.parse(text) == value


@pytest.mark.parametrize("kind, text, problem", [
    (BOOL, "ture", "'ture' is not a boolean (use true/false, 1/0, yes/no)"),
    (BOOL, "2", "'2' is not a boolean"), (BOOL, "y", "'y' is not a boolean"),
    (Whole(low=1), "two", "'two' is not a whole number"), (Whole(low=1), "1.5", "'1.5' is not a whole number"),
    (Whole(low=1), "0", "0 is less than 1"), (Whole(low=1, high=3), "4", "4 is more than 3"),
    (Number(above=0), "soon", "'soon' is not a number"), (Number(above=0), "0", "0 is not more than 0"),
    (Number(above=0), "inf", "'inf' is not a finite number"), (Number(above=0), "nan", "not a finite number"),
    (Number(at_least=0), "-1", "-1 is less than 0"),
    (Choice("json", "text"), "yaml", "'yaml' is not one of json, text"),
    (HOST, "docker-01", "'docker-01' is not a daemon address"), (HOST, "tcp://a b", "not a daemon"),
    (TokenCache(), "redis:x", "'redis:x' is not 'memory' or 'dynamodb:TABLE'"),
    (TokenCache(), "dynamodb:", "is not 'memory' or 'dynamodb:TABLE'"),
    (TABLE, "x", "'x' is not a DynamoDB table name or ARN"),
])
def test_a_bad_value_says_why(kind, text, problem):
    with pytest.raises(ValueError) as caught:
        kind.parse(text)
    assert problem in str(caught.value)


@pytest.mark.parametrize("kind, value, parsed", [
    (BOOL, True, True), (BOOL, "yes", True), (LIST, ["web", " api "], ("web", "api")), (LIST, "web,api", ("web", "api")),
    (Whole(low=1), 4, 4), (HOST, "tcp://h:1", "tcp://h:1"),
])
def test_an_event_value_may_be_json_or_text(kind, value, parsed):
    assert kind.native(value) == parsed


@pytest.mark.parametrize("kind, value", [(BOOL, 1), (BOOL, None), (LIST, [1]), (LIST, {}), (Whole(low=1), True),
                                         (HOST, 5)])
def test_an_event_value_of_the_wrong_json_type_is_refused(kind, value):
    with pytest.raises(ValueError, match="expected"):
        kind.native(value)


# -- the same bad value, named by the source it came from ------------------------------------------------------

BAD_BOOLEAN = "'ture' is not a boolean (use true/false, 1/0, yes/no)"


def test_each_source_names_the_setting_as_the_user_wrote_it():
    cases = [
        (table.CLI, environment({"SPYGLASS_LABEL_ENABLE": "ture"}, table.CLI),
         f"SPYGLASS_LABEL_ENABLE (environment variable): {BAD_BOOLEAN}"),
        (table.CLI, flags({"concurrency": "x"}), "--concurrency (flag): 'x' is not a whole number"),
        (table.ACTION, action_inputs({"INPUT_LABEL_ENABLE": "ture"}), f"label-enable (Action input): {BAD_BOOLEAN}"),
        (table.LAMBDA, environment({"SPYGLASS_LABEL_ENABLE": "ture"}, table.LAMBDA),
         f"SPYGLASS_LABEL_ENABLE (environment variable): {BAD_BOOLEAN}"),
    ]
    for place, source, message in cases:
        with pytest.raises(ConfigurationError) as caught:
            resolve(place, [source])
        assert str(caught.value) == message


def test_a_lambda_event_field_is_named_as_its_endpoint_item():
    from handler.aws.settings import EndpointSpec, targets_for

    with pytest.raises(ConfigurationError) as caught:
        targets_for({"endpoint": {"label_enable": "ture"}}, EndpointSpec(host="tcp://h:1"))
    assert str(caught.value) == f"invalid event, nothing scanned: endpoint: label_enable: {BAD_BOOLEAN}"


def test_every_problem_of_every_source_is_reported_at_once():
    with pytest.raises(ConfigurationError) as caught:
        resolve(table.CLI, [flags({"timeout": "0", "output": "yaml"}),
                            environment({"SPYGLASS_CONCURRENCY": "many", "DOCKER_TLS_VERIFY": "sure"}, table.CLI)])
    message = str(caught.value)
    for name in ("--timeout (flag)", "--output (flag)", "SPYGLASS_CONCURRENCY (environment variable)",
                 "DOCKER_TLS_VERIFY (environment variable)"):
        assert name in message


def test_a_secret_value_is_never_quoted(monkeypatch):
    row = Setting("pem", Choice("a"), "a secret", (table.CLI,), flags=("--pem",), secret=True)
    monkeypatch.setattr(table, "SETTINGS", table.SETTINGS + (row,))
    problems: list[str] = []
    table.read(table.Source("flag", {"pem": "PRIVATE-KEY-MATERIAL"}, {"pem": "--pem"}), table.CLI, problems)
    assert len(problems) == 1 and "PRIVATE-KEY-MATERIAL" not in problems[0] and "--pem (flag)" in problems[0]


# -- precedence and defaults ---------------------------------------------------------------------------------

def test_cli_flag_over_environment_over_default():
    env = environment({"SPYGLASS_CONCURRENCY": "3", "SPYGLASS_TIMEOUT": "30"}, table.CLI)
    values = resolve(table.CLI, [flags({"concurrency": "5"}), env])
    assert (values["concurrency"], values["timeout"], values["log_level"]) == (5, 30.0, "warning")


def test_lambda_event_over_environment_over_default():
    from handler.aws.settings import settings_from_env, targets_for

    settings = settings_from_env({"DOCKER_HOST": "tcp://h:1", "SPYGLASS_LABEL_ENABLE": "true", "SPYGLASS_SCOPE": "prod"})
    (spec,) = targets_for({"endpoint": {"label_enable": False}}, settings.endpoint).endpoints
    assert (spec.label_enable, spec.scope, spec.include_stopped) == (False, "prod", False)
    assert (settings.timeout, settings.log_level, settings.registry_ca_validate) == (None, "info", True)


def test_the_action_reads_inputs_and_only_the_docker_cli_variables_of_the_runner():
    env = {"INPUT_CONCURRENCY": "2", "SPYGLASS_CONCURRENCY": "9", "SPYGLASS_LABEL_ENABLE": "ture",
           "DOCKER_HOST": "tcp://runner-host:2376", "DOCKER_CONFIG": "/cfg"}
    values = resolve(table.ACTION, [action_inputs(env), environment(env, table.ACTION)], home=Path("/home/u"))
    assert (values["concurrency"], values["label_enable"]) == (2, False)
    assert (values["host"], values["docker_config"], values["cert_path"]) == ("tcp://runner-host:2376", "/cfg",
                                                                              "/home/u/.docker")
    assert values["registry_ca_validate"] is True  # the Action's default, as before the input existed


def test_a_blank_value_is_no_value_but_a_blank_event_field_is_refused():
    values = resolve(table.CLI, [environment({"SPYGLASS_CONCURRENCY": "  ", "SPYGLASS_SCOPE": ""}, table.CLI)])
    assert (values["concurrency"], values["scope"]) == (8, None)
    from handler.aws.settings import EndpointSpec, targets_for

    with pytest.raises(ConfigurationError, match=r"endpoint: scope: no value"):
        targets_for({"endpoint": {"scope": " "}}, EndpointSpec(host="tcp://h:1"))


def test_a_repeated_flag_adds_to_the_list_with_the_same_split_rule():
    values = resolve(table.CLI, [flags({"insecure_registries": ["a:5000", "b,c\n"]})])
    assert values["insecure_registries"] == ("a:5000", "b", "c")


# -- one table, every place --------------------------------------------------------------------------------

def test_rows_are_complete_and_names_unique():
    assert len(table.BY_NAME) == len(table.SETTINGS)
    for row in table.SETTINGS:
        assert row.help and row.places and set(row.places) <= set(table.PLACES), row.name
        assert set(row.defaults) <= set(row.places), row.name
        for place in row.places:
            row.default_value(place, Path("/home/u"))  # every default parses by its own rule
        if table.CLI in row.places:
            assert row.flags or row.env, row.name
        if table.ACTION in row.places:
            assert row.action_input or row.runner_env, row.name
        if table.LAMBDA in row.places:
            assert row.env, row.name
    for attribute in ("env", "action_input", "event_field"):
        used = [getattr(row, attribute) for row in table.SETTINGS if getattr(row, attribute)]
        assert len(used) == len(set(used)), attribute
    flags_used = [flag for row in table.SETTINGS for flag in row.flags]
    assert len(flags_used) == len(set(flags_used))


def test_scan_config_takes_every_setting_named_as_its_field():
    from dataclasses import fields

    from handler.compose import ScanConfig
    named = {f.name for f in fields(ScanConfig)} - {"daemon", "endpoints", "fleet_name"}  # composed, not read
    assert named <= set(table.BY_NAME)


# -- the same bad value is exit 2 in every place ---------------------------------------------------------------

def _cli(env: dict, tmp_path: Path) -> tuple[int, str]:
    from handler.cli import main
    err = io.StringIO()
    code = main(["scan", "-H", "tcp://192.0.2.1:2376"], env=env, stdout=io.StringIO(), stderr=err, home=tmp_path)
    return code, err.getvalue()


def _action(inputs: dict, tmp_path: Path) -> tuple[int, str]:
    from tests.action.runner import simulate
    run = simulate(tmp_path, {"host": "tcp://192.0.2.1:2376", **inputs})
    return run.code, run.stdout


def _lambda(env: dict, event: dict) -> tuple[int, str]:
    from handler.aws.lambda_function import Runtime, invoke
    logs = io.StringIO()
    try:
        invoke(event, None, env={"DOCKER_HOST": "tcp://192.0.2.1:2376", **env}, runtime=Runtime(clients=object()),
               log_stream=logs)
    except ConfigurationError:
        return 2, logs.getvalue()
    return 0, logs.getvalue()


def test_spyglass_label_enable_ture_is_exit_2_everywhere(tmp_path):
    env = {"SPYGLASS_LABEL_ENABLE": "ture"}
    expected = f"SPYGLASS_LABEL_ENABLE (environment variable): {BAD_BOOLEAN}"
    code, err = _cli(env, tmp_path)
    assert code == 2 and expected in err
    code, logs = _lambda(env, {})
    assert code == 2 and expected in logs
    code, out = _action({"label-enable": "ture"}, tmp_path)
    assert code == 2 and f"label-enable (Action input): {BAD_BOOLEAN}" in out
    code, logs = _lambda({}, {"endpoint": {"label_enable": "ture"}})
    assert code == 2 and f"endpoint: label_enable: {BAD_BOOLEAN}" in logs


@pytest.mark.parametrize("word, value", [("YES", True), ("0", False), ("on", True), ("False", False)])
def test_the_same_boolean_words_work_everywhere(word, value, tmp_path):
    from handler.action import read_settings as action_settings
    from handler.aws.settings import EndpointSpec, settings_from_env, targets_for
    from handler.cli import read_settings as cli_settings

    assert cli_settings(["scan"], {"SPYGLASS_INCLUDE_STOPPED": word}, tmp_path)["include_stopped"] is value
    assert action_settings({"INPUT_INCLUDE_STOPPED": word}, tmp_path)["include_stopped"] is value
    assert settings_from_env({"SPYGLASS_INCLUDE_STOPPED": word}).endpoint.include_stopped is value
    (spec,) = targets_for({"endpoint": {"include_stopped": word}}, EndpointSpec(host="tcp://h:1")).endpoints
    assert spec.include_stopped is value


def test_lists_split_the_same_everywhere(tmp_path):
    from handler.action import read_settings as action_settings
    from handler.aws.settings import EndpointSpec, settings_from_env, targets_for
    from handler.cli import read_settings as cli_settings

    text, expected = " web ,api\n\nworker, ", ("web", "api", "worker")
    assert cli_settings(["scan"], {"SPYGLASS_NAMES": text}, tmp_path)["names"] == expected
    assert cli_settings(["scan", "--insecure-registry", text], {}, tmp_path)["insecure_registries"] == expected
    assert action_settings({"INPUT_NAMES": text}, tmp_path)["names"] == expected
    assert settings_from_env({"SPYGLASS_INSECURE_REGISTRIES": text}).insecure_registries == expected
    (spec,) = targets_for({"endpoint": {"names": text}}, EndpointSpec(host="tcp://h:1")).endpoints
    assert spec.names == expected


def test_versions_is_one_row_read_in_every_place():
    assert resolve(table.CLI, [flags({"versions": "Minor"})])["versions"] == "minor"
    assert resolve(table.CLI, [])["versions"] == "major"
    assert resolve(table.ACTION, [action_inputs({"INPUT_VERSIONS": "off"})])["versions"] == "off"
    assert resolve(table.LAMBDA, [environment({"SPYGLASS_VERSIONS": "patch"}, table.LAMBDA)])["versions"] == "patch"
    with pytest.raises(ConfigurationError, match="--versions"):
        resolve(table.CLI, [flags({"versions": "all"})])
