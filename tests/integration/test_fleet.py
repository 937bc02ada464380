"""A fleet against real daemons: `spyglass scan --fleet FILE` over three dockerds and two endpoints
that cannot be listed, one report, the registry work shared.

    endpoint   daemon                                    containers                       expected
    main       the stack's (the demo fleet)              the demo fleet's                 its verdicts
    fleet-a    a dockerd of its own: data root, port,    web-1 (demo/web:1)               fresh
               CA and client certificate                 stale (demo/stale:1, old digest) stale
    fleet-b    likewise                                  web-1, stale as fleet-a          fresh, stale
                                                         plain (plain registry)           fresh
                                                         private (alice's repository)     fresh
    closed     a port nobody listens on                                                   unreachable connection-refused
    wrong-ca   fleet-b's port with fleet-a's CA and certificate                           unreachable tls-handshake

Every daemon pulls from the stack's two registries; one scan asks each distinct reference once.
"""
from __future__ import annotations

import io
import json
import socket
import time
from collections import Counter
from pathlib import Path

import jsonschema
import pytest

from engine.report import schema
from handler.cli import main
from tests.reportdoc import assert_reads_back, containers_of
from tests.stack import pull, run_container


@pytest.fixture(scope="module")
def extra_daemons(stack, demo_fleet):
    """Two more dockerds on the stack's registries, each with its own PKI; their start-up time is kept."""
    from tests.stack.dockerd import DockerDaemon
    from tests.stack.pki import make_pki

    daemons, seconds = [], {}
    try:
        for name in ("fleet-a", "fleet-b"):
            started = time.monotonic()
            daemon = DockerDaemon(stack.workdir / name, make_pki(stack.workdir / name / "pki"),
                                  insecure_registries=[stack.secure.address, stack.plain.address],
                                  storage_driver=stack.storage_driver)
            daemons.append(daemon)
            daemon.start()
            _populate(stack, daemon, with_more=name == "fleet-b")
            seconds[name] = round(time.monotonic() - started, 2)
        print(f"\nextra daemons started and populated in {seconds} s")
        yield daemons
    finally:
        for daemon in daemons:
            daemon.stop()


def _populate(stack, daemon, *, with_more: bool) -> None:
    secure, admin = stack.secure.address, stack.admin_account.auth_config()
    pull(daemon.admin, f"{secure}/demo/web", "1", admin)
    run_container(daemon.admin, "web-1", f"{secure}/demo/web:1")
    # The digest the stack's daemon pulled before the tag moved: run under the tag, it is stale here too.
    old = next(d for d in stack.daemon.admin.inspect_image(f"{secure}/demo/stale:1")["RepoDigests"]
               if d.startswith(f"{secure}/demo/stale@"))
    image = pull(daemon.admin, f"{secure}/demo/stale", old.split("@", 1)[1], admin)
    daemon.admin.tag(image, f"{secure}/demo/stale", "1")
    run_container(daemon.admin, "stale", f"{secure}/demo/stale:1")
    if with_more:
        pull(daemon.admin, f"{stack.plain.address}/demo/plain", "1")
        run_container(daemon.admin, "plain", f"{stack.plain.address}/demo/plain:1")
        pull(daemon.admin, f"{secure}/private/app", "1", admin)
        run_container(daemon.admin, "private", f"{secure}/private/app:1")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fleet_file(tmp_path: Path, stack, demo_fleet, daemons) -> Path:
    a, b = daemons
    items = [
        {"host": stack.daemon.host, "name": "main", "tls_verify": True, "cert_path": str(stack.daemon.cert_dir),
         "names": sorted(demo_fleet)},
        {"host": a.host, "name": "fleet-a", "tls_verify": True, "cert_path": str(a.cert_dir)},
        {"host": b.host, "name": "fleet-b", "tls_verify": True, "cert_path": str(b.cert_dir)},
        {"host": f"tcp://127.0.0.1:{_closed_port()}", "name": "closed"},
        {"host": b.host, "name": "wrong-ca", "tls_verify": True, "cert_path": str(a.cert_dir)},
    ]
    path = tmp_path / "prod.json"
    path.write_text(json.dumps(items))
    return path


def scan_fleet(stack, path: Path, *args) -> tuple[int, dict, str]:
    out, err = io.StringIO(), io.StringIO()
    env = {"DOCKER_CONFIG": str(stack.docker_config_dir)}
    code = main(["scan", "--output", "json", "--fleet", str(path), *stack.scan_args(), *args], env=env,
                stdout=out, stderr=err, home=Path(stack.workdir))
    return code, (json.loads(out.getvalue()) if out.getvalue() else {}), err.getvalue()


def test_one_report_with_each_endpoints_verdicts_and_the_unlisted_isolated(stack, demo_fleet, extra_daemons,
                                                                           tmp_path):
    started = time.monotonic()
    code, report, err = scan_fleet(stack, fleet_file(tmp_path, stack, demo_fleet, extra_daemons))
    print(f"\nfleet scan of 5 endpoints: {time.monotonic() - started:.2f} s")
    assert code == 0, err
    jsonschema.validate(report, schema())
    assert_reads_back(report)  # Report.from_dict, as the Lambda's fleet notify path reads it
    assert report["name"] == "prod" and report["status"] == "errors"  # two endpoints not listed, one container gone
    endpoints = {e["name"]: e for e in report["endpoints"]}
    assert list(endpoints) == ["main", "fleet-a", "fleet-b", "closed", "wrong-ca"]
    outcomes = {name: {c["name"]: (c["status"], c["reason"]) for c in e["containers"]} for name, e in endpoints.items()}
    assert outcomes["main"] == demo_fleet
    assert outcomes["fleet-a"] == {"web-1": ("fresh", None), "stale": ("stale", None)}
    assert outcomes["fleet-b"] == {"web-1": ("fresh", None), "stale": ("stale", None), "plain": ("fresh", None),
                                   "private": ("fresh", None)}
    assert [endpoints["fleet-a"]["status"], endpoints["fleet-b"]["status"]] == ["stale", "stale"]
    assert (endpoints["closed"]["status"], endpoints["closed"]["reason"]) == ("unreachable", "connection-refused")
    assert (endpoints["wrong-ca"]["status"], endpoints["wrong-ca"]["reason"]) == ("unreachable", "tls-handshake")
    assert report["summary"]["endpoints"] == 5 and report["summary"]["unreachable"] == 2
    assert report["summary"]["stale"] == sum(s == ("stale", None) for o in outcomes.values() for s in o.values())


def test_the_registry_work_is_shared_heads_are_distinct_references_one_ping_and_token_per_registry(
        stack, demo_fleet, extra_daemons, tmp_path):
    marks = stack.secure.mark(), stack.plain.mark(), stack.token_server.mark()
    code, report, err = scan_fleet(stack, fleet_file(tmp_path, stack, demo_fleet, extra_daemons), "--versions", "off")
    assert code == 0, err
    looked_up = [c for c in containers_of(report) if c["status"] in ("fresh", "stale", "error")
                 and c["reason"] not in ("daemon-error", "invalid-reference")]
    by_registry = {stack.secure.address: set(), stack.plain.address: set()}
    for c in looked_up:
        by_registry[c["registry"]].add(c["reference"])
    assert len(looked_up) > len(by_registry[stack.secure.address]) + len(by_registry[stack.plain.address])  # shared
    secure_log, plain_log = stack.secure.requests_since(marks[0]), stack.plain.requests_since(marks[1])
    secure = Counter(r.method for r in secure_log if "/manifests/" in r.path)
    plain = Counter(r.method for r in plain_log if "/manifests/" in r.path)
    assert secure["HEAD"] == len(by_registry[stack.secure.address])
    assert plain["HEAD"] == len(by_registry[stack.plain.address])
    assert [r.path for r in secure_log].count("/v2/") == 1 and [r.path for r in plain_log].count("/v2/") == 1
    tokens = stack.token_server.requests_since(marks[2])
    repositories = {r.rsplit(":", 1)[0] for r in by_registry[stack.secure.address]}
    assert [(t.username, len(t.scopes)) for t in tokens] == [("alice", len(repositories))]
    stats = {r["name"]: r["requests"] for r in report["registries"]}
    assert stats[stack.secure.address]["ping"] == 1 and stats[stack.secure.address]["token"] == 1
    assert stats[stack.plain.address].get("token", 0) == 0  # its ping counts the https try before http


def test_text_output_opens_with_the_fleet_and_names_the_hosts_of_each_stale_image(stack, demo_fleet, extra_daemons,
                                                                                 tmp_path):
    out, err = io.StringIO(), io.StringIO()
    path = fleet_file(tmp_path, stack, demo_fleet, extra_daemons)
    code = main(["scan", "--output", "text", "--fleet", str(path), *stack.scan_args(), "--fail-on-error"],
                env={"DOCKER_CONFIG": str(stack.docker_config_dir)}, stdout=out, stderr=err,
                home=Path(stack.workdir))
    assert code == 1  # --fail-on-error: endpoints not listed (and the demo's gone tag)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("prod: 5 endpoints (2 not listed), ")
    stale = next(line for line in lines if "demo/stale:1 is stale on" in line)
    assert "on 3 of 3 hosts" in stale and "main (stale)" in stale and "fleet-b (stale)" in stale
    assert any(line.strip().startswith("closed (tcp://127.0.0.1:") and "connection-refused" in line for line in lines)
