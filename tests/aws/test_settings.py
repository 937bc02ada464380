"""The Lambda's environment variables and the event's endpoint overrides."""
from __future__ import annotations

import pytest

from engine.errors import ConfigurationError
from handler.aws.settings import EndpointSpec, InvalidEventError, Targets, settings_from_env, targets_for

DEFAULT = EndpointSpec(host="tcp://docker-01:2376", tls_secret="spyglass/docker-01", names=("web",))


def test_defaults():
    settings = settings_from_env({})
    assert (settings.notify, settings.concurrency, settings.timeout) == ("always", 8, None)
    assert settings.delivery_margin == 10.0
    assert settings.token_table == settings.state_table == "" and settings.endpoint == EndpointSpec()


def test_every_variable_is_read():
    settings = settings_from_env({
        "DOCKER_HOST": "tcp://docker-01:2376", "SPYGLASS_TLS_SECRET": "ssm:/spyglass/docker-01",
        "SPYGLASS_NAMES": "web, api ,", "SPYGLASS_LABEL_ENABLE": "true", "SPYGLASS_SCOPE": "prod",
        "SPYGLASS_INCLUDE_STOPPED": "1", "SNS_TOPIC_ARN": "arn:aws:sns:eu-west-1:1:t", "REPORT_BUCKET": "b",
        "REPORT_PREFIX": "x/", "NOTIFY": "change", "TOKEN_CACHE": "dynamodb:spyglass",
        "SPYGLASS_REGISTRY_AUTH_SECRET": "spyglass/registries", "SPYGLASS_REGISTRY_CA": "/opt/ca.pem",
        "SPYGLASS_INSECURE_REGISTRIES": "a:5000,b", "SPYGLASS_CONCURRENCY": "4", "SPYGLASS_TIMEOUT": "60",
        "SPYGLASS_DELIVERY_MARGIN": "15", "SPYGLASS_LOG_LEVEL": "DEBUG", "AWS_REGION": "eu-west-1"})
    assert settings.endpoint == EndpointSpec("tcp://docker-01:2376", "ssm:/spyglass/docker-01", ("web", "api"),
                                             True, "prod", True)
    assert settings.topic_arn == "arn:aws:sns:eu-west-1:1:t"
    assert (settings.report_bucket, settings.report_prefix) == ("b", "x/")
    assert (settings.notify, settings.token_table, settings.state_table) == ("change", "spyglass", "spyglass")
    assert settings.insecure_registries == ("a:5000", "b") and settings.registry_ca == "/opt/ca.pem"
    assert (settings.concurrency, settings.timeout, settings.delivery_margin) == (4, 60.0, 15.0)
    assert settings.log_level == "debug"


def test_a_bad_registry_ca_stops_the_invocation_unless_validation_is_turned_off():
    assert settings_from_env({}).registry_ca_validate is True
    assert settings_from_env({"SPYGLASS_REGISTRY_CA_VALIDATE": "false"}).registry_ca_validate is False


def test_every_bad_variable_is_named_at_once():
    with pytest.raises(ConfigurationError) as caught:
        settings_from_env({"NOTIFY": "change", "SPYGLASS_TIMEOUT": "0", "SPYGLASS_CONCURRENCY": "two",
                           "SPYGLASS_LABEL_ENABLE": "maybe", "DOCKER_HOST": "docker-01"})
    message = str(caught.value)
    for name in ("NOTIFY=change", "SPYGLASS_TIMEOUT", "SPYGLASS_CONCURRENCY", "SPYGLASS_LABEL_ENABLE", "DOCKER_HOST"):
        assert name in message


def test_state_table_can_differ_from_the_token_table():
    settings = settings_from_env({"NOTIFY": "change", "STATE_TABLE": "state", "TOKEN_CACHE": "dynamodb:tokens"})
    assert (settings.token_table, settings.state_table) == ("tokens", "state")


@pytest.mark.parametrize("event", [
    None, {},
    {"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events", "account": "1",
     "time": "2025-01-01T00:00:00Z", "region": "us-east-1", "resources": [], "detail": {}},
])
def test_a_scheduled_or_empty_event_scans_the_environment_endpoint(event):
    assert targets_for(event, DEFAULT) == Targets((DEFAULT,), "")


def test_the_event_overrides_field_by_field():
    targets = targets_for({"endpoint": {"host": "tcp://docker-02:2376", "names": ["api"],
                                        "label_enable": True, "scope": "blue"},
                           "correlation_id": "run-1/docker-02"}, DEFAULT)
    assert targets.endpoints == (EndpointSpec("tcp://docker-02:2376", "spyglass/docker-01", ("api",), True, "blue",
                                              False),)
    assert targets.correlation_id == "run-1/docker-02"


@pytest.mark.parametrize("event, fields", [
    ([1], ["expected a JSON object, got an array"]),
    ({"endpoint": "tcp://x:2376"}, ["endpoint: expected an object, got a string"]),
    # A boolean field takes JSON true/false or the table's words (yes/no...): "ture" is neither.
    ({"endpoint": {"host": 5, "tls_secret": "", "names": [1], "label_enable": "ture", "scope": None}},
     ["endpoint: host", "endpoint: tls_secret", "endpoint: names", "endpoint: label_enable", "endpoint: scope"]),
    ({"endpoint": {"hots": "tcp://x:1"}, "Endpoint": {}}, ["endpoint: hots: unknown field", "Endpoint: unknown field"]),
    ({"correlation_id": 7}, ["correlation_id"]),
])
def test_an_invalid_event_lists_every_offending_field(event, fields):
    with pytest.raises(InvalidEventError) as caught:
        targets_for(event, DEFAULT)
    for field in fields:
        assert field in str(caught.value)


def test_without_any_host_the_event_is_refused():
    with pytest.raises(InvalidEventError, match="endpoint: host: required"):
        targets_for({}, EndpointSpec())


def test_versions_reach_the_lambda_settings():
    assert settings_from_env({}).versions == "major"
    assert settings_from_env({"SPYGLASS_VERSIONS": "off"}).versions == "off"


# -- events naming several endpoints ------------------------------------------------------------

def test_an_endpoints_list_is_scanned_together_each_item_over_the_environment():
    targets = targets_for({"endpoints": [{"host": "tcp://a:2376", "name": "web-a"},
                                         {"host": "tcp://b:2376", "tls_secret": "spyglass/b", "names": "x, y"}],
                           "correlation_id": "run-9"}, DEFAULT)
    assert [(s.host, s.name, s.tls_secret, s.names) for s in targets.endpoints] == [
        ("tcp://a:2376", "web-a", "spyglass/docker-01", ("web",)), ("tcp://b:2376", "", "spyglass/b", ("x", "y"))]
    assert targets.correlation_id == "run-9" and not targets.batch and targets.fleet is None


def test_a_fleet_location_is_read_later_and_a_batch_carries_its_run_in_batch_input():
    from handler.aws.settings import Location

    fleet = targets_for({"fleet": {"bucket": "cfg", "key": "spyglass/fleet.json"}}, DEFAULT)
    assert fleet.fleet == Location("cfg", "spyglass/fleet.json") and fleet.endpoints == ()
    batch = targets_for({"Items": [{"host": "tcp://a:2376"}], "BatchInput": {"correlation_id": "exec-3"}}, DEFAULT)
    assert batch.batch and batch.correlation_id == "exec-3" and batch.endpoints[0].host == "tcp://a:2376"


@pytest.mark.parametrize("event, fields", [
    ({"endpoints": []}, ["endpoints: expected a non-empty JSON list"]),
    ({"endpoints": [{"host": "tcp://a:1"}], "fleet": {"bucket": "b", "key": "k"}}, ["endpoints and fleet: give one"]),
    ({"endpoints": [{"host": "http://a"}, 7, {"name": 3, "host": "tcp://c:1"}]},
     ["endpoints: fleet item 1 (http://a): host", "fleet item 2: expected an object",
      "fleet item 3 (tcp://c:1): name"]),
    ({"fleet": {"bucket": "b"}}, ['fleet: expected {"bucket"']),
    ({"endpoints": [{"host": "tcp://a:1"}] * 1001}, ["at most 1000"]),
])
def test_an_invalid_list_event_names_every_offending_item(event, fields):
    with pytest.raises(InvalidEventError) as caught:
        targets_for(event, DEFAULT)
    for field in fields:
        assert field in str(caught.value)


def test_an_item_without_a_host_is_refused_when_the_environment_has_none():
    with pytest.raises(InvalidEventError, match=r"endpoints: fleet item 2: host: required"):
        targets_for({"endpoints": [{"host": "tcp://a:1"}, {"names": ["x"]}]}, EndpointSpec())
