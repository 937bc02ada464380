"""Registries on loopback, as the docker daemon treats them: plain http without --insecure-registry,
yet verified TLS first, and a bad certificate still a `tls` error with nothing sent over http.

The stack's plain registry and its token-auth registry both listen on 127.0.0.1.
"""
from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from handler.cli import main
from tests.faults.world import loopback_host_name
from tests.stack import logfile, run_container, untag
from tests.reportdoc import containers_of

SCOPE = "loopback"
LABELS = {"com.centurylinklabs.watchtower.scope": SCOPE}


def scan(stack, *args):
    out, err = io.StringIO(), io.StringIO()
    code = main(["scan", "--output", "json", "--scope", SCOPE, *args], env=stack.env(), stdout=out, stderr=err,
                home=Path(stack.workdir))
    return code, (json.loads(out.getvalue()) if out.getvalue().strip() else None), err.getvalue()


def without(args: list[str], flag: str) -> list[str]:
    i = args.index(flag)
    return args[:i] + args[i + 2:]


@pytest.fixture(scope="module")
def plain_fleet(stack):
    """loop-fresh and loop-stale from the plain registry; loop-stale's tag moved in the registry only."""
    plain = stack.plain.address
    stack.publish(stack.plain, "loop/fresh", "1", "loop-fresh")
    stack.publish(stack.plain, "loop/stale", "1", "loop-stale-old")
    ids = [run_container(stack.daemon.admin, "loop-fresh", f"{plain}/loop/fresh:1", labels=LABELS),
           run_container(stack.daemon.admin, "loop-stale", f"{plain}/loop/stale:1", labels=LABELS)]
    stack.publish(stack.plain, "loop/stale", "next", "loop-stale-new")
    untag(stack.daemon.admin, f"{plain}/loop/stale:next")
    with stack.plain_http() as registry:
        registry.copy_tag("loop/stale", "next", "1")
    yield {"loop-fresh": "fresh", "loop-stale": "stale"}
    for container in ids:
        stack.daemon.admin.remove_container(container, force=True)


def test_a_loopback_registry_speaking_plain_http_needs_no_insecure_flag(stack, plain_fleet):
    mark = stack.plain.mark()
    code, report, err = scan(stack, *without(stack.scan_args(), "--insecure-registry"))
    assert code == 0, err
    # verified https was tried first and found no TLS there; then one ping and one HEAD per image over
    # http, and one tags list per repository (tag 1 is a version: issue 12) over http too
    requests = [(r.method, r.path.split("/manifests/")[0]) for r in stack.plain.requests_since(mark)]
    assert sorted(requests) == [("GET", "/v2/"), ("GET", "/v2/loop/fresh/tags/list?n=1000"),
                                ("GET", "/v2/loop/stale/tags/list?n=1000"), ("HEAD", "/v2/loop/fresh"),
                                ("HEAD", "/v2/loop/stale")]
    assert {c["name"]: c["status"] for c in containers_of(report)} == plain_fleet
    stale = next(c for c in containers_of(report) if c["name"] == "loop-stale")
    with stack.plain_http() as registry:
        assert stale["remote_digest"] == registry.digest_of("loop/stale", "1")
    warnings = [line for line in err.splitlines() if "speaks plain http" in line]
    assert len(warnings) == 1 and stack.plain.address in warnings[0]


def test_a_loopback_registry_with_an_untrusted_certificate_is_a_tls_error_without_http(stack, plain_fleet):
    secure = stack.secure.address
    stack.publish(stack.secure, "loop/secure", "1", "loop-secure")
    run_container(stack.daemon.admin, "loop-secure", f"{secure}/loop/secure:1", labels=LABELS)
    try:
        access, app = stack.secure.mark(), logfile.mark(stack.secure.app_log)
        # without --registry-ca the stack's CA is unknown: the registry's certificate is untrusted
        code, report, err = scan(stack, *without(stack.scan_args(), "--registry-ca"), "loop-secure")
        handshakes = _refused_handshakes_logged(stack.secure.app_log, app)
    finally:
        stack.daemon.admin.remove_container("loop-secure", force=True)
    assert code == 0, err
    (entry,) = containers_of(report)
    assert (entry["status"], entry["reason"]) == ("error", "tls") and secure in entry["error"]
    assert stack.secure.requests_since(access) == []  # not one HTTP request reached it
    assert any("TLS handshake error" in line for line in handshakes), handshakes  # it saw our refusal...
    assert not [line for line in handshakes if "HTTP request to an HTTPS server" in line]  # ...and no http after


def _refused_handshakes_logged(app_log: Path, mark: int, wait: float = 5.0) -> list[str]:
    """The registry's log lines since mark, once our refused handshake is among them (the registry
    writes that line after the scan has already moved on)."""
    deadline = time.monotonic() + wait
    while True:
        lines = logfile.lines_since(app_log, mark)
        if any("TLS handshake error" in line for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_the_same_plain_registry_under_a_name_is_https_only_unless_named_insecure(stack, plain_fleet):
    host_name = loopback_host_name()
    if host_name is None:
        pytest.skip("this machine's name does not resolve to loopback only")
    named = f"{host_name}:{stack.plain.port}"  # reaches the plain registry, but is no loopback literal
    stack.daemon.admin.tag(f"{stack.plain.address}/loop/fresh:1", f"{named}/loop/fresh", "1")
    run_container(stack.daemon.admin, "loop-named", f"{named}/loop/fresh:1", labels=LABELS)
    try:
        args = without(stack.scan_args(), "--insecure-registry")
        mark = stack.plain.mark()
        _, refused, _ = scan(stack, *args, "loop-named")
        requests_when_refused = stack.plain.requests_since(mark)
        _, allowed, _ = scan(stack, *args, "--insecure-registry", named, "loop-named")
    finally:
        stack.daemon.admin.remove_container("loop-named", force=True)
        untag(stack.daemon.admin, f"{named}/loop/fresh:1")
    (entry,) = containers_of(refused)
    assert (entry["status"], entry["reason"]) == ("error", "tls")
    assert requests_when_refused == []  # https only: the plain registry logged no request
    assert [c["status"] for c in containers_of(allowed)] == ["fresh"]
