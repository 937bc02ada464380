"""Daemon faults: a wrong client certificate, a daemon that stops, listings that disagree.

A second fault proxy stands in front of the stack's dockerd: it speaks mutual TLS
to the scanner (its own certificate, the stack's client CA) and to the daemon
(the stack's client certificate), so it sees and can change each Engine API call.
Exit code 3 is for a scan that could list nothing; anything listed is reported.
"""
from __future__ import annotations

import io
import json
import math
import shutil
import threading
import time
from pathlib import Path

import pytest

from handler.cli import main
from tests.stack import run_container
from tests.stack.images import pull, untag

from .proxy import FaultProxy, Rule, Upstream, delay, die, passthrough, respond, rewrite
from tests.reportdoc import containers_of

CONTAINERS = r"^GET /v[\d.]+/containers/json"
IMAGES = r"^GET /v[\d.]+/images/json"
INSPECT_CONTAINER = r"^GET /v[\d.]+/containers/[0-9a-f]{64}/json"
PULLED_SCOPE, PULLED, PULLED_REPOSITORIES = "pulled", 10, 3


@pytest.fixture
def daemon_proxy(world):
    stack = world.stack
    proxy = FaultProxy(tls=world.authority.server("daemon-proxy", ["127.0.0.1"]), client_ca=stack.pki.ca,
                       upstreams={"/": Upstream(f"https://127.0.0.1:{stack.daemon.port}", ca=stack.pki.ca,
                                                client=stack.pki.client)})
    with proxy:
        yield proxy


def _cert_dir(world, name: str, *, ca, cert, key):
    directory = world.workdir / name
    directory.mkdir(exist_ok=True)
    for source, target in ((ca, "ca.pem"), (cert, "cert.pem"), (key, "key.pem")):
        shutil.copyfile(source, directory / target)
    return directory


def _env_for(world, proxy: FaultProxy) -> dict:
    pki = world.stack.pki
    certs = _cert_dir(world, "via-daemon-proxy", ca=world.authority.cert, cert=pki.client.cert, key=pki.client.key)
    return {"DOCKER_HOST": f"tcp://{proxy.address}", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(certs)}


def _target_image_id(world) -> str:
    return world.stack.daemon.admin.inspect_container("f-target")["Image"]


def test_through_the_daemon_proxy_the_fleet_gets_its_baseline(world, daemon_proxy):
    with daemon_proxy.rules():
        result = world.scan(env=_env_for(world, daemon_proxy))
        calls = [r.path.split("?")[0] for r in daemon_proxy.records]
    world.check(result, {})
    # two connections side by side, each negotiating its version (GET /_ping): one lists containers, one images
    assert sorted(calls) == ["/_ping", "/_ping", "/v1.41/containers/json", "/v1.41/images/json"]


def test_a_client_certificate_the_daemon_does_not_trust_is_exit_3(world):
    stranger = world.rogue.client("stranger")
    certs = _cert_dir(world, "stranger", ca=world.stack.pki.ca, cert=stranger.cert, key=stranger.key)
    env = world.stack.env() | {"DOCKER_CERT_PATH": str(certs)}
    result = world.scan(env=env)
    assert result.code == 3 and result.stdout == ""
    assert "cannot scan" in result.stderr and "certificate" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_daemon_certificate_the_client_does_not_trust_is_exit_3(world):
    pki = world.stack.pki
    certs = _cert_dir(world, "wrong-ca", ca=world.rogue.cert, cert=pki.client.cert, key=pki.client.key)
    result = world.scan(env=world.stack.env() | {"DOCKER_CERT_PATH": str(certs)})
    assert result.code == 3 and result.stdout == ""
    assert "TLS certificate verification failed" in result.stderr, result.stderr


def test_a_daemon_that_is_gone_before_the_scan_is_exit_3(world, daemon_proxy):
    env = _env_for(world, daemon_proxy)
    daemon_proxy.kill()
    daemon_proxy.wait_closed()
    result = world.scan(env=env)
    assert result.code == 3 and result.stdout == ""
    assert "connection refused" in result.stderr and "Traceback" not in result.stderr


def test_a_daemon_that_drops_the_image_listing_is_exit_3(world, daemon_proxy):
    """Containers without their images cannot be judged: nothing usable was listed."""
    with daemon_proxy.rules(Rule(IMAGES, die)):
        result = world.scan(env=_env_for(world, daemon_proxy))
    assert result.code == 3 and result.stdout == ""
    assert "cannot scan" in result.stderr
    assert "connection reset" in result.stderr or "the daemon closed the connection" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_daemon_that_stops_after_the_listing_does_not_stop_the_scan(world, daemon_proxy):
    answered, lock = [], threading.Lock()

    def answer_then_die_after_both(exchange):  # the two listings run side by side, in either order
        exchange.reply(exchange.forward())
        exchange.close()  # gracefully: a reset now would discard the answer still in flight
        with lock:
            answered.append(exchange)
            last = len(answered) == 2
        if last:
            exchange.proxy.kill()

    with daemon_proxy.rules(Rule(CONTAINERS, answer_then_die_after_both), Rule(IMAGES, answer_then_die_after_both)):
        result = world.scan(env=_env_for(world, daemon_proxy))
    world.check(result, {})


def test_a_container_without_an_image_reference_is_an_error_of_its_own(world, daemon_proxy):
    def blank(answer):
        containers = json.loads(answer.body)
        for container in containers:
            if "/f-target" in container.get("Names", []):
                container["Image"] = ""
        answer.body = json.dumps(containers).encode()

    with daemon_proxy.rules(Rule(CONTAINERS, rewrite(blank))):
        result = world.scan(env=_env_for(world, daemon_proxy))
    world.check(result, {"f-target": "invalid-reference"})
    assert "no image reference" in result.by_name()["f-target"]["error"]


def test_an_image_removed_between_listing_and_lookup_is_a_daemon_error_for_its_container(world, daemon_proxy):
    image_id = _target_image_id(world)

    def drop(answer):
        answer.body = json.dumps([i for i in json.loads(answer.body) if i["Id"] != image_id]).encode()

    missing = json.dumps({"message": f"No such image: {image_id}"}).encode()
    gone = respond(404, {"Content-Type": "application/json"}, missing)
    with daemon_proxy.rules(Rule(IMAGES, rewrite(drop)), Rule(rf"^GET /v[\d.]+/images/{image_id}/json", gone)):
        result = world.scan(env=_env_for(world, daemon_proxy))
    world.check(result, {"f-target": "daemon-error"})
    assert "No such image" in result.by_name()["f-target"]["error"]


# -- pulled without a recreate: the daemon lists each such container by image ID ----------------------


@pytest.fixture(scope="module")
def pulled_fleet(world):
    """Ten running containers over three tags, then each tag moved upstream and pulled, nothing recreated."""
    stack, admin = world.stack, world.stack.daemon.admin
    names = {}
    for j in range(PULLED_REPOSITORIES):
        stack.publish(stack.secure, f"pulled/app-{j}", "1", f"pulled-{j}-a")
    for n in range(PULLED):
        name, image = f"f-pulled-{n:02d}", f"{stack.secure.address}/pulled/app-{n % PULLED_REPOSITORIES}:1"
        names[name] = image
        world.container_ids.append(run_container(admin, name, image,
                                                 labels={"com.centurylinklabs.watchtower.scope": PULLED_SCOPE}))
    with stack.secure_http() as registry:
        for j in range(PULLED_REPOSITORIES):
            stack.publish(stack.secure, f"pulled/app-{j}", "next", f"pulled-{j}-b")
            untag(admin, f"{stack.secure.address}/pulled/app-{j}:next")
            registry.copy_tag(f"pulled/app-{j}", "next", "1")
            pull(admin, f"{stack.secure.address}/pulled/app-{j}", "1")
    return names


class InFlight:
    """Holds each matching request for a while and counts how many are held at once."""

    def __init__(self, hold: float):
        self.hold, self.now, self.most, self.arrivals = hold, 0, 0, []
        self._lock = threading.Lock()

    def __call__(self, exchange) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.arrivals.append(time.monotonic())
        try:
            exchange.wait(self.hold)
            passthrough(exchange)
        finally:
            with self._lock:
                self.now -= 1

    def waves(self) -> int:
        """Groups of arrivals: a new one starts when a request comes half a hold after the last."""
        times = sorted(self.arrivals)
        return 1 + sum(later - earlier > self.hold / 2 for earlier, later in zip(times, times[1:]))


def test_pulled_containers_are_inspected_side_by_side_up_to_the_concurrency(world, daemon_proxy, pulled_fleet):
    listed = world.stack.daemon.admin.containers(filters={"name": "f-pulled-00"})
    assert listed[0]["Image"].startswith("sha256:")  # what makes the inspects necessary
    concurrency, held = 4, InFlight(0.5)
    with daemon_proxy.rules(Rule(INSPECT_CONTAINER, held)):
        result = world.scan("--scope", PULLED_SCOPE, "--concurrency", str(concurrency),
                            env=_env_for(world, daemon_proxy))
        calls = [r.path.split("?")[0] for r in daemon_proxy.records]
        connections = daemon_proxy.accepted
    assert result.code == 0, result.stderr
    assert {c["name"]: (c["status"], c["image"]) for c in containers_of(result.report)} == {
        name: ("stale", image) for name, image in pulled_fleet.items()}
    assert held.most == concurrency
    assert held.waves() == math.ceil(PULLED / concurrency)
    # the listing's four calls and one inspect per container; the new connections ask no version
    assert sorted(c for c in calls if "/containers/" not in c or c.endswith("containers/json")) == [
        "/_ping", "/_ping", "/v1.41/containers/json", "/v1.41/images/json"]
    assert len([c for c in calls if c.startswith("/v1.41/containers/") and c.count("/") == 4]) == PULLED
    assert connections == concurrency  # the two listing connections, then two more
    assert not [t for t in threading.enumerate() if t.name.startswith("spyglass-daemon")]  # none outlives the scan


def test_a_failed_inspect_costs_its_own_container_only(world, daemon_proxy, pulled_fleet):
    gone = respond(404, {"Content-Type": "application/json"}, json.dumps({"message": "No such container"}).encode())
    target = world.stack.daemon.admin.inspect_container("f-pulled-03")["Id"]
    with daemon_proxy.rules(Rule(rf"^GET /v[\d.]+/containers/{target}/json", gone)):
        result = world.scan("--scope", PULLED_SCOPE, env=_env_for(world, daemon_proxy))
    assert result.code == 0, result.stderr
    outcomes = result.outcomes()
    assert outcomes.pop("f-pulled-03") == ("error", "daemon-error")
    assert set(outcomes.values()) == {("stale", None)} and len(outcomes) == PULLED - 1
    assert "No such container" in result.by_name()["f-pulled-03"]["error"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_slow_listing_shows_its_phases_on_a_terminal_before_the_registries(world, daemon_proxy, pulled_fleet):
    out, err = _Terminal(), _Terminal()
    slow = Rule(CONTAINERS, delay(0.8))
    with daemon_proxy.rules(slow, Rule(INSPECT_CONTAINER, delay(0.1))):
        started = time.monotonic()
        code = main([*world.args(20), "--scope", PULLED_SCOPE, "--output", "text"],
                    env=_env_for(world, daemon_proxy), stdout=out, stderr=err, home=Path(world.workdir))
        took = time.monotonic() - started
    assert code == 0, err.getvalue()
    assert took > 1.0
    lines = [line for line in err.getvalue().split("\r\x1b[K") if line]
    assert "listing containers and images…" in lines
    inspecting = [line for line in lines if line.startswith("inspecting containers: ")]
    assert inspecting and inspecting[-1] == f"inspecting containers: {PULLED}/{PULLED}"
    first_registry = next(i for i, line in enumerate(lines) if line.startswith("checking registries"))
    assert lines.index("listing containers and images…") < lines.index(inspecting[0]) < first_registry
