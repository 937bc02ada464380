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
        build_parser({}).parse_args(["scan", "--help"])
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


@pytest.mark.parametrize("argv", [["scan", "--concurrency", "0"], ["scan", "--timeout", "-1"],
                                  ["scan", "--output", "yaml"], ["bogus"]])
def test_usage_errors_exit_2(argv, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        run(argv, tmp_path=tmp_path)
    assert exit_.value.code == EXIT_CONFIG


def test_a_malformed_docker_config_is_a_configuration_error(tmp_path):
    config = tmp_path / "config.json"
    config.write_text('{"auths": {"reg": {"auth": "%%%"}}')
    code, _, err = run(["scan", "--docker-config", str(config), "-H", "tcp://192.0.2.1:2376"], tmp_path=tmp_path)
    assert code == EXIT_CONFIG and str(config) in err and "%%%" not in err


def test_an_unreachable_daemon_exits_3_without_a_traceback(tmp_path):
    code, out, err = run(["scan", "-H", f"unix://{tmp_path}/nothing.sock", "--timeout", "5"], tmp_path=tmp_path)
    assert code == 3 and out == ""
    assert "cannot scan" in err and "Traceback" not in err
