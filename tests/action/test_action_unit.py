"""handler.action without the stack: workflow-command escaping, the outputs file, masks, early exits.

The early exits use addresses nothing answers on (a missing socket, TEST-NET-1): a
configuration error must stop the run before any connection is tried.
"""
from __future__ import annotations

import base64
import io
import json

import pytest

from handler.action import (INPUTS, Commands, env_name, escape_data, escape_property, main, mask_values,
                            read_inputs, write_outputs)
from tests.action.runner import parse_output_file, simulate
from tests.stack.listener import CountingListener

UNROUTABLE = "tcp://192.0.2.1:2376"

KEY = """-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIGx0c3BpZGVyc2VjcmV0a2V5bWF0ZXJpYWwxMjM0NTY3ODkwoAoGCCqG
SM49AwEHoUQDQgAE0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL
-----END EC PRIVATE KEY-----
"""


@pytest.mark.parametrize("text, data, prop", [
    ("plain", "plain", "plain"),
    ("50% done", "50%25 done", "50%25 done"),
    ("two\nlines\r", "two%0Alines%0D", "two%0Alines%0D"),
    ("a:b,c", "a:b,c", "a%3Ab%2Cc"),
    ("%0A", "%250A", "%250A"),
])
def test_escaping_follows_the_workflow_command_rules(text, data, prop):
    assert escape_data(text) == data and escape_property(text) == prop


def test_no_outside_text_can_start_a_command_line_of_its_own():
    out = io.StringIO()
    Commands(out).issue("warning", "name\n::error::injected", title="x, y: z")
    assert out.getvalue() == "::warning title=x%2C y%3A z::name%0A::error::injected\n"


def test_outputs_use_the_delimiter_form_for_anything_but_plain_words(tmp_path):
    path = tmp_path / "out"
    values = {"status": "ok", "count": "3", "stale": '[{"name":"a b"}]', "odd": "line one\nstale=forged"}
    write_outputs(str(path), values)
    text = path.read_text()
    assert "status=ok\n" in text and "count=3\n" in text and "\nstale=forged" in text
    assert parse_output_file(text) == values


def test_outputs_are_appended_to_what_earlier_steps_wrote(tmp_path):
    path = tmp_path / "out"
    path.write_text("earlier=1\n")
    write_outputs(str(path), {"status": "stale"})
    assert parse_output_file(path.read_text()) == {"earlier": "1", "status": "stale"}


def test_masks_cover_pem_lines_but_not_the_armor():
    masks = mask_values(read_inputs({"INPUT_TLS_KEY": KEY}))
    assert masks == [line for line in KEY.splitlines() if not line.startswith("-----")]


def test_masks_cover_every_credential_inside_the_docker_config_and_the_decoded_auth():
    auth = base64.b64encode(b"bob:s3cret-pass").decode()
    config = {"auths": {"reg.example": {"auth": auth}, "other.example": {"username": "u", "password": "pw-1"},
                        "ecr.example": {"identitytoken": "id-token"}},
              "HttpHeaders": {"X-Meta": "header-secret"}, "credHelpers": {"gcr.io": "gcloud"}}
    masks = mask_values(read_inputs({"INPUT_DOCKER_CONFIG": json.dumps(config, indent=2)}))
    assert set(masks) == {auth, "bob:s3cret-pass", "s3cret-pass", "pw-1", "id-token", "header-secret"}


def test_a_docker_config_that_is_not_json_is_masked_whole():
    assert mask_values(read_inputs({"INPUT_DOCKER_CONFIG": "not json\n  at all  \n"})) == ["not json", "at all"]


def test_blank_inputs_take_the_declared_defaults():
    inputs = read_inputs({"INPUT_TIMEOUT": "  ", "INPUT_HOST": " tcp://h:2376 "})
    assert inputs["timeout"] == "120" and inputs["fail-on-stale"] == "false" and inputs["host"] == "tcp://h:2376"


class Recording(dict):
    """An environment that notes every variable looked up in it."""

    def __init__(self, *args):
        super().__init__(*args)
        self.asked: set[str] = set()

    def get(self, key, default=None):
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.asked.add(key)
        return super().__getitem__(key)


def test_the_entry_reads_exactly_the_declared_inputs(tmp_path):
    env = Recording({"INPUT_HOST": f"unix://{tmp_path}/none.sock", "INPUT_TIMEOUT": "5"})
    assert main(env, stdout=io.StringIO(), stderr=io.StringIO(), home=tmp_path) == 3
    assert {key for key in env.asked if key.startswith("INPUT_")} == {env_name(name) for name in INPUTS}


def test_an_unreachable_daemon_exits_3_with_an_error_line_and_a_summary(tmp_path):
    run = simulate(tmp_path, {"host": f"unix://{tmp_path}/nothing.sock", "timeout": "5"})
    assert run.code == 3 and run.output_file == ""
    [error] = run.commands("error")
    assert "cannot scan" in error.message and "exit 3" in error.message
    assert run.summary.startswith("### 🔴 spyglass could not scan") and "Traceback" not in run.stderr


@pytest.mark.parametrize("inputs, named", [
    ({"fail-on-stale": "maybe"}, "fail-on-stale"),
    ({"label-enable": "ture"}, "label-enable"),  # yes/no, 1/0, on/off are booleans now, as everywhere
    ({"concurrency": "0"}, "concurrency"),
    ({"include-stopped": "maybe"}, "include-stopped"),
    ({"token-cache": "redis:x"}, "token-cache"),
    ({"timeout": "soon"}, "timeout"),
    ({"timeout": "0"}, "timeout"),
    ({"docker-config": "auths: {}"}, "docker-config"),
    ({"registry-ca": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, "registry-ca"),
    ({"tls-cert": KEY}, "cert and key"),
    ({"notify": "sometimes"}, "notify"),
    ({"notify": "change"}, "change needs the state-file input"),  # a runner keeps no state of its own
    ({"notify": "Change", "state-file": "  "}, "actions/cache"),
])
def test_bad_inputs_exit_2_before_any_connection_and_name_the_input(tmp_path, inputs, named):
    with CountingListener() as daemon:
        run = simulate(tmp_path, {"host": daemon.address, **inputs})
        assert daemon.connections() == 0
    assert run.code == 2 and run.output_file == ""
    [error] = run.commands("error")
    assert "configuration error" in error.message and named in error.message
    assert str(tmp_path) not in error.message  # a private file is named by its input, not its path
    assert "auths: {}" not in error.message and "MHcCAQEE" not in run.stdout.replace("::add-mask::MHcCAQEE", "")


def test_the_secret_folder_is_removed_when_the_run_fails(tmp_path):
    run = simulate(tmp_path, {"host": UNROUTABLE, "tls-key": KEY, "tls-cert": KEY, "timeout": "x"})
    assert run.code == 2
    assert list(run.runner_temp.iterdir()) == []


def test_masks_are_printed_before_a_configuration_error(tmp_path):
    run = simulate(tmp_path, {"host": UNROUTABLE, "docker-config": "{not json", "tls-key": KEY})
    first = run.stdout.splitlines()[:3]
    assert first == ["::add-mask::MHcCAQEEIGx0c3BpZGVyc2VjcmV0a2V5bWF0ZXJpYWwxMjM0NTY3ODkwoAoGCCqG",
                     "::add-mask::SM49AwEHoUQDQgAE0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL",
                     "::add-mask::{not json"]


def test_output_html_is_refused_with_where_the_page_goes_instead(tmp_path):
    from engine.errors import ConfigurationError
    from handler.action import read_settings

    with pytest.raises(ConfigurationError) as refused:
        read_settings({env_name("output"): "html", env_name("host"): "tcp://127.0.0.1:1"}, tmp_path)
    assert "output (Action input)" in str(refused.value) and "report-html" in str(refused.value)

def test_notify_change_is_taken_with_a_state_file_relative_to_the_workspace(tmp_path):
    from handler.action import read_settings

    values = read_settings({env_name("notify"): "change", env_name("state-file"): ".spyglass/state.json"}, tmp_path)
    assert (values["notify"], values["state_file"]) == ("change", ".spyglass/state.json")
    assert read_settings({env_name("state-file"): "~/s.json"}, tmp_path)["state_file"] == str(tmp_path / "s.json")


def test_the_refusal_of_change_names_the_input_and_says_how_to_keep_the_file(tmp_path):
    from engine.errors import ConfigurationError
    from handler.action import read_settings

    with pytest.raises(ConfigurationError) as refused:
        read_settings({env_name("notify"): "change", env_name("timeout"): "soon"}, tmp_path)
    message = str(refused.value)
    assert message.startswith("timeout (Action input)")  # every problem at once
    assert "notify (Action input): change needs the state-file input" in message
    assert "actions/cache" in message and "docs/github-action.md" in message


# -- the fleet input ---------------------------------------------------------------------------

def test_the_fleet_input_masks_the_pem_inside_it_and_leaves_hosts_readable():
    fleet = json.dumps([{"host": "tcp://web-1.example:2376", "name": "web-1", "client_key": KEY}])
    masks = mask_values(read_inputs({env_name("fleet"): fleet}))
    assert "MHcCAQEEIGx0c3BpZGVyc2VjcmV0a2V5bWF0ZXJpYWwxMjM0NTY3ODkwoAoGCCqG" in masks
    assert not any("web-1" in mask for mask in masks)


def test_fleet_items_become_endpoints_with_their_pem_in_private_files(tmp_path):
    seen = {}

    def scan(config, **kwargs):
        seen["endpoints"] = [(e.name, e.daemon.host, e.daemon.client_key) for e in config.endpoints]
        seen["key"] = open(config.endpoints[1].daemon.client_key).read()
        seen["fleet_name"] = config.fleet_name
        raise KeyboardInterrupt  # enough seen: stop before anything is reported

    fleet = json.dumps([{"host": "tcp://web-1.example:2376", "name": "web-1"},
                        {"host": "tcp://db-1.example:2376", "client_cert": KEY, "client_key": KEY}])
    with pytest.raises(KeyboardInterrupt):
        simulate(tmp_path, {"fleet": fleet, "timeout": "5"}, scan=scan)
    (first, second) = seen["endpoints"]
    assert first[:2] == ("web-1", "tcp://web-1.example:2376") and second[1] == "tcp://db-1.example:2376"
    assert seen["key"].strip() == KEY.strip() and "runner-temp" in second[2] and seen["fleet_name"] == "fleet"


def test_a_bad_fleet_item_exits_2_naming_it(tmp_path):
    run = simulate(tmp_path, {"fleet": json.dumps([{"host": "tcp://a.example:2376", "scope": 5}])})
    assert run.code == 2
    assert "fleet item 1 (tcp://a.example:2376): scope: expected a string, got a number" in run.stdout


def test_a_state_file_that_cannot_be_written_exits_2_after_saying_what_was_published(tmp_path):
    from tests.notify.test_delivery import TOPIC, Publisher
    from tests.unit.test_report import sample

    (tmp_path / "a-file").write_text("")
    publisher = Publisher()
    run = simulate(tmp_path, {"host": UNROUTABLE, "notify": "change", "sns-topic-arn": TOPIC,
                              "state-file": str(tmp_path / "a-file" / "state.json")},
                   scan=lambda config, **kwargs: sample(), load_publisher=publisher.load)
    assert run.code == 2 and len(publisher.published) == 1
    assert f"report published to {TOPIC} (message m-1)" in run.stdout
    [error] = [e for e in run.commands("error") if e.message.startswith("notify:")]  # not the gone container's
    assert error.message.startswith("notify: configuration error: write state file") and "a-file" in error.message
