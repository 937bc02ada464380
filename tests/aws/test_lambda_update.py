"""The Lambda with APPLY=true on the real stack: the scan, the update, one SNS message carrying both."""
from __future__ import annotations

import json

import jsonschema
import pytest

from handler.aws.settings import settings_from_env
from tests.stack.updates import HEALTHY, TRAP, App

from .conftest import SCHEMA, FakeContext
from .test_lambda_stack import by_name, lambda_env, run  # noqa: F401 - lambda_env is a fixture


def test_apply_is_off_unless_asked_for():
    assert settings_from_env({}).apply is False
    settings = settings_from_env({"APPLY": "true", "SPYGLASS_ROLLING": "yes", "SPYGLASS_HEALTH_TIMEOUT": "30"})
    assert settings.apply is True and settings.update["rolling"] is True
    assert settings.update["health_timeout"] == 30.0


@pytest.fixture
def app(stack):
    made = App(stack)
    yield made
    made.remove()


def test_apply_updates_and_one_message_carries_the_actions(app, aws, lambda_env):  # noqa: F811
    app.stale("lam", [TRAP, HEALTHY, "ENV V=1"], [TRAP, HEALTHY, "ENV V=2"])
    before = app.run("lam", "lam:1")
    env = lambda_env | {"APPLY": "true", "SPYGLASS_NAMES": app.name("lam")}

    result, _ = run(env, aws=aws)

    [raw], [envelope] = aws.receive(aws.raw_queue), aws.receive(aws.envelope_queue)
    report = json.loads(raw["Body"])
    jsonschema.validate(report, SCHEMA)
    assert by_name(report)[app.name("lam")]["action"]["action"] == "updated"
    attributes = json.loads(envelope["Body"])["MessageAttributes"]
    assert attributes["updated_count"]["Value"] == "1" and attributes["rolled_back_count"]["Value"] == "0"
    assert app.inspect("lam")["Id"] != before


def test_apply_updates_only_what_can_finish_before_the_delivery_margin(app, aws, lambda_env):  # noqa: F811
    # 50 s left, 10 kept for delivery: 40 s for the scan and the update. quick (no health check) needs
    # about 9 s; slow needs its 60 s health timeout alone, so it is not started.
    app.stale("quick", [TRAP, "ENV V=1"], [TRAP, "ENV V=2"])
    app.stale("slow", [TRAP, HEALTHY, "ENV V=1"], [TRAP, HEALTHY, "ENV V=2"])
    quick, slow = app.run("quick", "quick:1"), app.run("slow", "slow:1")
    env = lambda_env | {"APPLY": "true", "SPYGLASS_NAMES": f"{app.name('quick')},{app.name('slow')}",
                        "SPYGLASS_STOP_TIMEOUT": "1", "SPYGLASS_DELIVERY_MARGIN": "10"}

    run(env, aws=aws, context=FakeContext(remaining_seconds=50.0))

    [raw] = aws.receive(aws.raw_queue)
    containers = by_name(json.loads(raw["Body"]))
    assert containers[app.name("quick")]["action"]["action"] == "updated"
    assert containers[app.name("slow")]["action"]["reason"] == "no-time-left"
    assert app.inspect("quick")["Id"] != quick and app.inspect("slow")["Id"] == slow
    assert app.ours() == [app.name("quick"), app.name("slow")]  # nothing aside
