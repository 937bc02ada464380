"""The CLI's own contract: help, exit codes for configuration errors, before any network call."""
import io

import pytest

from handler.cli import EXIT_CONFIG, build_parser, main
from tests.stack.listener import CountingListener


def run(argv, env=None, tmp_path=None):
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, env=env or {}, stdout=out, stderr=err, home=tmp_path)
    return code, out.getvalue(), err.getvalue()


def test_help_documents_every_option_with_its_environment_variable(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["scan", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for option, variable in [("--host", "DOCKER_HOST"), ("--registry-ca", "SPYGLASS_REGISTRY_CA"),
                             ("--insecure-registry", "SPYGLASS_INSECURE_REGISTRIES"),
                             ("--docker-config", "DOCKER_CONFIG"), ("--timeout", "SPYGLASS_TIMEOUT"),
                             ("--concurrency", "SPYGLASS_CONCURRENCY"), ("--log-format", "SPYGLASS_LOG_FORMAT")]:
        assert option in text and variable in text


@pytest.mark.parametrize("content", [None, "", "garbage", "-----BEGIN CERTIFICATE-----\nAAAA\n"])
def test_a_bad_registry_ca_with_validate_exits_2_before_connecting_and_names_the_file(tmp_path, content):
    bundle = tmp_path / "registry-ca.pem"
    if content is not None:
        bundle.write_text(content)
    with CountingListener() as daemon:
        code, out, err = run(["scan", "--registry-ca", str(bundle), "--registry-ca-validate", "-H", daemon.address],
                             tmp_path=tmp_path)
        assert daemon.connections() == 0
    assert code == EXIT_CONFIG and out == ""
    assert str(bundle) in err and "Traceback" not in err


def test_an_unknown_command_is_a_usage_error_exit_2(tmp_path):
    with pytest.raises(SystemExit) as exit_:
        run(["bogus"], tmp_path=tmp_path)
    assert exit_.value.code == EXIT_CONFIG


# The values are parsed by the settings table after argparse (one rule for flags, variables, inputs
# and events), so a bad value is exit 2 with a message naming the flag, not argparse's SystemExit.
@pytest.mark.parametrize("argv, named", [
    (["scan", "--concurrency", "0"], "--concurrency (flag): 0 is less than 1"),
    (["scan", "--timeout", "-1"], "--timeout (flag): -1 is not more than 0"),
    (["scan", "--output", "yaml"], "--output (flag): 'yaml' is not one of json, text, markdown"),
    (["scan", "--token-cache", "redis:x"], "--token-cache (flag): 'redis:x' is not 'memory' or 'dynamodb:TABLE'"),
])
def test_bad_flag_values_exit_2_naming_the_flag(argv, named, tmp_path):
    code, out, err = run(argv, tmp_path=tmp_path)
    assert code == EXIT_CONFIG and out == ""
    assert named in err and "Traceback" not in err


def test_every_bad_value_of_a_run_is_named_at_once(tmp_path):
    code, _, err = run(["scan", "--concurrency", "x"], env={"SPYGLASS_LABEL_ENABLE": "ture",
                                                             "SPYGLASS_TIMEOUT": "soon"}, tmp_path=tmp_path)
    assert code == EXIT_CONFIG
    assert "--concurrency (flag): 'x' is not a whole number" in err
    assert "SPYGLASS_LABEL_ENABLE (environment variable): 'ture' is not a boolean" in err
    assert "SPYGLASS_TIMEOUT (environment variable): 'soon' is not a number" in err


def test_a_flag_wins_over_its_variable_and_the_variable_over_the_default(tmp_path):
    from handler.cli import read_settings

    env = {"SPYGLASS_CONCURRENCY": "3", "SPYGLASS_LABEL_ENABLE": "yes", "SPYGLASS_NAMES": "a,b"}
    values = read_settings(["scan", "--concurrency", "5", "--no-label-enable"], env, tmp_path)
    assert (values["concurrency"], values["label_enable"], values["names"]) == (5, False, ("a", "b"))
    values = read_settings(["scan", "web"], env, tmp_path)
    assert (values["concurrency"], values["label_enable"], values["names"]) == (3, True, ("web",))
    values = read_settings(["scan"], {}, tmp_path)
    assert (values["concurrency"], values["timeout"], values["docker_config"]) == (8, 120.0, str(tmp_path / ".docker"))


def test_the_notify_policy_change_is_the_cli_s_too_with_a_state_file(tmp_path):
    # Issue 15 brings NOTIFY=change to the CLI (its state in a local file), so it is no longer refused.
    from handler.cli import read_settings
    values = read_settings(["scan", "--notify-when", "change", "--state-file", "~/s.json"], {}, tmp_path)
    assert (values["notify"], values["state_file"]) == ("change", str(tmp_path / "s.json"))
    assert read_settings(["scan", "--notify-policy", "Stale"], {}, tmp_path)["notify"] == "stale"
    code, _, err = run(["scan", "--notify-when", "sometimes"], tmp_path=tmp_path)
    assert code == EXIT_CONFIG and "--notify-policy" in err and "change" in err


def test_a_malformed_docker_config_is_a_configuration_error(tmp_path):
    config = tmp_path / "config.json"
    config.write_text('{"auths": {"reg": {"auth": "%%%"}}')
    code, _, err = run(["scan", "--docker-config", str(config), "-H", "tcp://192.0.2.1:2376"], tmp_path=tmp_path)
    assert code == EXIT_CONFIG and str(config) in err and "%%%" not in err


def test_an_unreachable_daemon_exits_3_without_a_traceback(tmp_path):
    code, out, err = run(["scan", "-H", f"unix://{tmp_path}/nothing.sock", "--timeout", "5"], tmp_path=tmp_path)
    assert code == 3 and out == ""
    assert "cannot scan" in err and "Traceback" not in err
