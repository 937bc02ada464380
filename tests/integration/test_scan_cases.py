"""Cases beyond the demo fleet, each with containers of its own (names start with "case-")."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from handler.cli import main
from tests.stack import run_container
from tests.reportdoc import containers_of

SCOPE = ["--scope", "cases"]
LABELS = {"com.centurylinklabs.watchtower.scope": "cases"}


def scan(stack, *args, env=None):
    out, err = io.StringIO(), io.StringIO()
    code = main(["scan", "--output", "json", *args], env=env or stack.env(), stdout=out, stderr=err,
                home=Path(stack.workdir))
    return code, (json.loads(out.getvalue()) if out.getvalue().strip() else None), err.getvalue()


def default_args(stack, *, docker_config=None):
    args = stack.scan_args()
    if docker_config is not None:
        i = args.index("--docker-config")
        args = args[:i] + ["--docker-config", str(docker_config)] + args[i + 2:]
    return args


@pytest.fixture(scope="module")
def moved_local_tag(stack):
    """A container whose tag was re-pulled locally after it started: the daemon lists it by image ID."""
    name = f"{stack.secure.address}/cases/moved"
    stack.publish(stack.secure, "cases/moved", "1", "moved-a")
    container = run_container(stack.daemon.admin, "case-moved", f"{name}:1", labels=LABELS)
    stack.publish(stack.secure, "cases/moved", "1", "moved-b")  # moves the local tag too
    yield container
    stack.daemon.admin.remove_container(container, force=True)


def test_a_container_listed_by_image_id_is_looked_up_once_and_found_stale(stack, moved_local_tag):
    listed = [c for c in stack.daemon.admin.containers(filters={"name": "case-moved"})]
    assert listed[0]["Image"].startswith("sha256:")  # what makes the fallback necessary
    mark = stack.daemon.mark()
    code, report, err = scan(stack, *SCOPE, *default_args(stack))
    assert code == 0, err
    (entry,) = [c for c in containers_of(report) if c["name"] == "case-moved"]
    assert entry["status"] == "stale"
    assert entry["image"] == f"{stack.secure.address}/cases/moved:1"
    calls = [c.path for c in stack.daemon.api_calls_since(mark)]
    # the listing's four calls (two version negotiations, two lists) and one inspect
    assert len(calls) == 5 and sum("/containers/" in p and p.endswith("/json") for p in calls) == 1, calls


def test_credentials_from_a_credential_helper(stack, demo_fleet, tmp_path, monkeypatch):
    helper = tmp_path / "bin" / "docker-credential-spyglass-test"
    helper.parent.mkdir()
    helper.write_text("#!/bin/sh\n"
                      "read server\n"
                      f"printf '{{\"ServerURL\":\"%s\",\"Username\":\"alice\",\"Secret\":\"{stack.alice.password}\"}}' \"$server\"\n")
    helper.chmod(0o700)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credHelpers": {stack.secure.address: "spyglass-test"}}))
    code, report, err = scan(stack, "private", *default_args(stack, docker_config=config))
    assert code == 0, err
    assert containers_of(report)[0]["status"] == "fresh"
    assert stack.alice.password not in err


def test_a_repository_prefix_key_gives_two_credentials_on_one_host_one_token_each(stack, demo_fleet, tmp_path):
    import base64
    auth = base64.b64encode(f"alice:{stack.alice.password}".encode()).decode()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {f"{stack.secure.address}/private": {"auth": auth}}}))
    mark = stack.token_server.mark()
    code, report, err = scan(stack, "private", "web-1", "stale", *default_args(stack, docker_config=config))
    assert code == 0, err
    assert {c["name"]: c["status"] for c in containers_of(report)} == {"private": "fresh", "web-1": "fresh",
                                                                      "stale": "stale"}
    tokens = sorted(stack.token_server.requests_since(mark), key=lambda t: t.username or "")
    assert [(t.username, sorted(t.scopes)) for t in tokens] == [
        (None, ["repository:demo/stale:pull", "repository:demo/web:pull"]),
        ("alice", ["repository:private/app:pull"])]


def test_json_logs_are_one_object_per_line_with_the_endpoint(stack, demo_fleet):
    code, _, err = scan(stack, "web-1", "--log-format", "json", "--log-level", "info", *default_args(stack))
    assert code == 0
    events = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert events and all({"time", "level", "message"} <= set(e) for e in events)
    assert any(e.get("endpoint") == stack.env()["DOCKER_HOST"] and "summary" in e for e in events)
