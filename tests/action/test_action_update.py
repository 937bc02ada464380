"""The Action's apply input against the real stack: the scan, then the update, in one step."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from engine.report import schema
from tests.action.runner import simulate
from tests.reportdoc import containers_of
from tests.action.test_action_stack import stack_inputs
from tests.stack.updates import HEALTHY, TRAP, UNHEALTHY, App


@pytest.fixture
def app(stack):
    made = App(stack)
    yield made
    made.remove()


def test_apply_updates_rolls_back_and_says_so_in_the_outputs(app, tmp_path):
    app.stale("good", [TRAP, HEALTHY, "ENV V=1"], [TRAP, HEALTHY, "ENV V=2"])
    app.stale("bad", [TRAP, HEALTHY], [TRAP, UNHEALTHY])
    good, bad = app.run("good", "good:1"), app.run("bad", "bad:1")
    inputs = stack_inputs(app.stack, [app.name("good"), app.name("bad")]) | {"apply": "true",
                                                                            "health-timeout": "15"}
    run = simulate(tmp_path, inputs)

    assert run.code == 1, run.stdout + run.stderr  # a container was rolled back
    assert run.outputs["updated-count"] == "1" and run.outputs["rolled-back-count"] == "1"
    report = json.loads(Path(run.outputs["report-path"]).read_text())
    jsonschema.validate(report, schema())
    actions = {c["name"]: c["action"]["action"] for c in containers_of(report)}
    assert actions == {app.name("good"): "updated", app.name("bad"): "rolled-back"}
    assert any("1 rolled back" in command.message for command in run.commands("error"))
    assert app.inspect("good")["Id"] != good and app.inspect("bad")["Id"] == bad
    assert "rolled-back" in run.summary


def test_without_apply_the_step_only_scans(app, tmp_path):
    app.stale("left", [TRAP, "ENV V=1"], [TRAP, "ENV V=2"])
    before = app.run("left", "left:1")
    run = simulate(tmp_path, stack_inputs(app.stack, [app.name("left")]))
    assert run.code == 0, run.stdout + run.stderr
    assert run.outputs["stale-count"] == "1"
    assert run.outputs["updated-count"] == "0" and run.outputs["rolled-back-count"] == "0"
    assert app.inspect("left")["Id"] == before
