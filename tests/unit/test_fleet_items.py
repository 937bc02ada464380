"""Fleet items (handler/fleet.py): parsed by the settings table's kinds, left-out fields take the run's."""
import io
import json
from pathlib import Path

import pytest

from engine.errors import ConfigurationError
from handler.cli import main
from handler.fleet import LAMBDA_FIELDS, RunTLS, endpoint_configs, parse_fleet, read_fleet_file

ROOT = Path(__file__).resolve().parents[2]


def pem_folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for file in ("ca.pem", "cert.pem", "key.pem"):
        (folder / file).write_text(f"{name} {file}\n")
    return folder


def test_every_field_is_parsed_by_its_kind():
    (item,) = parse_fleet([{"host": "10.0.0.5:2376", "name": "web-1", "tls_verify": "yes", "names": "app, db",
                            "label_enable": False, "scope": "prod", "include_stopped": "1"}])
    assert item.host == "tcp://10.0.0.5:2376"  # the docker CLI's default scheme
    assert item.given == {"host": "tcp://10.0.0.5:2376", "name": "web-1", "tls_verify": True, "names": ("app", "db"),
                          "label_enable": False, "scope": "prod", "include_stopped": True}


@pytest.mark.parametrize("document, problem", [
    ({}, "expected a non-empty JSON list of endpoint objects, got an object"),
    ([], "got an empty list"),
    (["tcp://a:2376"], "fleet item 1: expected an object, got a string"),
    ([{"name": "x"}], "fleet item 1: host: required"),
    ([{"host": "ftp://a"}], "fleet item 1 (ftp://a): host: 'ftp://a' is not a daemon address"),
    ([{"host": "tcp://a:1", "tls_verify": "maybe"}], "fleet item 1 (tcp://a:1): tls_verify: 'maybe' is not a boolean"),
    ([{"host": "tcp://a:1", "colour": "red"}], "fleet item 1 (tcp://a:1): colour: unknown field"),
    ([{"host": "tcp://a:1", "scope": ""}], "fleet item 1 (tcp://a:1): scope: no value"),
    ([{"host": "tcp://a:1", "tls_secret": "s"}], "tls_secret: unknown field"),
    ([{"host": "tcp://a:1", "cert_path": "/c", "ca_cert": "/ca.pem"}], "cert_path and ca_cert: give one or the other"),
])
def test_a_bad_item_is_named_with_what_is_wrong(document, problem):
    with pytest.raises(ConfigurationError, match=None) as caught:
        parse_fleet(document)
    assert problem in str(caught.value)


def test_every_bad_item_is_named_at_once():
    with pytest.raises(ConfigurationError) as caught:
        parse_fleet([{"host": "tcp://a:1"}, {"host": "tcp://b:1", "names": 3}, {"host": "tcp://c:1", "x": 1}])
    assert "fleet item 2 (tcp://b:1): names" in str(caught.value) and "fleet item 3 (tcp://c:1): x" in str(caught.value)


def test_the_lambda_example_fleet_is_valid_with_the_lambda_fields():
    items = parse_fleet(json.loads((ROOT / "infra" / "fleet.example.json").read_text()), fields=LAMBDA_FIELDS)
    assert [item.get("tls_secret") for item in items] == ["spyglass/docker-01", "ssm:/spyglass/docker-02",
                                                           "spyglass/build-01"]


def test_left_out_fields_take_the_runs_tls_and_a_cert_path_takes_none_of_it(tmp_path):
    run = pem_folder(tmp_path, "run")
    own = pem_folder(tmp_path, "own")
    items = parse_fleet([{"host": "tcp://a:2376"}, {"host": "tcp://b:2376", "cert_path": str(own)},
                         {"host": "tcp://c:2376", "ca_cert": str(own / "ca.pem"), "tls_verify": False},
                         {"host": "unix:///var/run/docker.sock"}])
    given = endpoint_configs(items, ("tcp://cli:2376",), RunTLS(True, cert_dir=str(run)), timeout=5)
    cli, a, b, c, local = (e.daemon for e in given)
    assert (cli.ca_cert, cli.client_cert, cli.tls_verify) == (str(run / "ca.pem"), str(run / "cert.pem"), True)
    assert (a.ca_cert, a.client_key) == (str(run / "ca.pem"), str(run / "key.pem"))
    assert (b.ca_cert, b.client_cert, b.client_key) == (str(own / "ca.pem"), str(own / "cert.pem"), str(own / "key.pem"))
    assert (c.ca_cert, c.client_cert, c.tls_verify) == (str(own / "ca.pem"), str(run / "cert.pem"), False)
    assert (local.tls_verify, local.client_cert) == (False, None)


def test_an_item_that_cannot_work_is_named(tmp_path):
    items = parse_fleet([{"host": "tcp://a:2376", "tls_verify": True, "cert_path": str(tmp_path)}])
    with pytest.raises(ConfigurationError, match=r"fleet item 1 \(tcp://a:2376\): TLS verification asked for"):
        endpoint_configs(items, (), RunTLS(), timeout=5)


def test_a_missing_or_broken_fleet_file_is_named(tmp_path):
    with pytest.raises(ConfigurationError, match="read fleet file .*nothing.json"):
        read_fleet_file(str(tmp_path / "nothing.json"))
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    with pytest.raises(ConfigurationError, match="fleet file .*broken.json: not valid JSON"):
        read_fleet_file(str(broken))


def run_cli(tmp_path, *argv, env=None):
    out, err = io.StringIO(), io.StringIO()
    code = main(["scan", *argv], env=env or {}, stdout=out, stderr=err, home=tmp_path)
    return code, out.getvalue(), err.getvalue()


def test_the_cli_refuses_a_bad_fleet_file_with_exit_2_before_any_scan(tmp_path):
    fleet = tmp_path / "prod.json"
    fleet.write_text(json.dumps([{"host": "tcp://127.0.0.1:9", "include_stopped": "sometimes"}]))
    code, out, err = run_cli(tmp_path, "--fleet", str(fleet))
    assert code == 2 and out == ""
    assert "fleet item 1 (tcp://127.0.0.1:9): include_stopped: 'sometimes' is not a boolean" in err


def test_the_cli_exits_3_only_when_no_endpoint_could_be_listed(tmp_path):
    code, out, err = run_cli(tmp_path, "-H", "tcp://127.0.0.1:9", "-H", "tcp://127.0.0.1:7", "-o", "json")
    assert code == 3 and out == ""
    assert "no endpoint of tcp://127.0.0.1:9,tcp://127.0.0.1:7 could be listed" in err
    assert "connection-refused" in err and "Traceback" not in err
