"""The demo fleet and the pull-without-recreate phase on every engine and store that can be had.

    engine          store                        from
    own             classic (vfs)                the machine's dockerd (Debian 12: 20.10)
    26.1.5          classic (vfs), containerd    Debian trixie's docker.io, unpacked (tests/stack/engines.py)
    28.5.2          classic (vfs), containerd    Debian forky's docker.io, unpacked

Each stack runs the scanner twice, in order: the demo fleet as built, then after the phase
(tests/stack/pulled.py); every container's verdict is asserted, and the Engine API calls each scan
cost. Run alone with `pytest -m engines`.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from handler.cli import main
from tests.reportdoc import containers_of
from tests.stack import build_demo_fleet
from tests.stack.pulled import pull_without_recreate

pytestmark = [pytest.mark.engines, pytest.mark.integration]


def scan(stack) -> tuple[dict, list, int]:
    """The JSON report and the Engine API calls (paths without query) of one CLI scan, and how many
    containers the daemon listed by image ID then."""
    listed = stack.daemon.admin.containers(all=True)
    by_id = sum(c["Image"].startswith("sha256:") or c["Image"] == c["ImageID"] for c in listed)
    mark = stack.daemon.mark()
    out, err = io.StringIO(), io.StringIO()
    code = main(["scan", "--output", "json", *stack.scan_args()], env=stack.env(), stdout=out, stderr=err,
                home=Path(stack.workdir))
    assert code == 0, err.getvalue()
    assert "Traceback" not in err.getvalue()
    calls = [c.path.split("?")[0] for c in stack.daemon.api_calls_since(mark)]
    return json.loads(out.getvalue()), calls, by_id


def verdicts(report: dict, expected: dict) -> dict:
    found = {c["name"]: (c["status"], c["reason"]) for c in containers_of(report)}
    return {name: found.get(name) for name in expected}


@pytest.fixture(scope="module")
def phases(engine_stack):
    """Both scans of one stack, in order: {phase: (expected, report, engine calls, listed by ID)}."""
    _, _, stack = engine_stack
    expected = build_demo_fleet(stack)
    clean = (dict(expected), *scan(stack))
    expected |= pull_without_recreate(stack)
    return {"clean": clean, "pulled": (expected, *scan(stack))}


def test_the_engine_is_the_one_named(engine_stack):
    key, spec, stack = engine_stack
    info = stack.daemon.admin.info()
    if spec.release:
        assert info["ServerVersion"].startswith(spec.release + "+"), info["ServerVersion"]
    snapshotter = ["driver-type", "io.containerd.snapshotter.v1"] in (info.get("DriverStatus") or [])
    assert snapshotter == (spec.image_store == "containerd"), (key, info["Driver"], info.get("DriverStatus"))


@pytest.mark.parametrize("phase", ["clean", "pulled"])
def test_every_case_gets_its_verdict(phases, phase):
    expected, report, _, _ = phases[phase]
    assert verdicts(report, expected) == expected


@pytest.mark.parametrize("phase", ["clean", "pulled"])
def test_the_engine_api_calls_stay_the_listing_plus_one_inspect_per_container_listed_by_image_id(
        engine_stack, phases, phase):
    _, spec, _ = engine_stack
    _, _, calls, by_id = phases[phase]
    listing = [c for c in calls if c == "/_ping" or c.endswith(("/containers/json", "/images/json"))]
    inspects = [c for c in calls if c not in listing]
    assert sorted(c.rsplit("/", 2)[-2] if c != "/_ping" else c for c in listing) == [
        "/_ping", "/_ping", "containers", "images"], calls
    if spec.image_store == "containerd":  # the ImageID is the digest: no image is ever inspected
        assert all("/containers/" in c for c in inspects) and len(inspects) == by_id, calls
    else:
        assert len([c for c in inspects if "/containers/" in c]) == by_id, calls
    assert (phase == "clean") == (not by_id)


def test_an_archive_that_cannot_be_reached_makes_the_engine_unavailable_with_the_reason(tmp_path):
    # What the matrix skips on: no network, or a mirror that is down, is never a failure.
    import shutil

    from tests.stack.engines import EngineUnavailable, engine_tree

    if not shutil.which("apt-get"):
        pytest.skip("no apt-get: the matrix fetches its engines with it")

    with pytest.raises(EngineUnavailable, match=r"no docker\.io 26\.1\.5 in Debian trixie, forky, sid \(.*127\.0\.0\.1"):
        engine_tree("26.1.5", tmp_path, archive="http://127.0.0.1:9/debian")
