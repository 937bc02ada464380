"""The fault tests' set-up on the session stack: a proxied registry, a small fleet, and a scan helper.

    containers (scope label spyglass-faults)    image                                   baseline
    f-ok        P/faults/ok:1        pulled through the proxy                        fresh
    f-stale     P/faults/stale:1     pulled through the proxy, tag moved upstream    stale
    f-target    P/faults/target:1    pulled through the proxy; the rules aim here   fresh
    f-private   P/private/faults:1   alice's credentials needed                      fresh
    f-direct    S/faults/ok:1        the secure registry itself, not proxied         fresh
    f-named     H:p/faults/ok:1      the proxy under the machine's own host name     fresh

P is the proxy (127.0.0.1:port), S the stack's token-auth registry, H a host name
that resolves to loopback without being a loopback literal (the machine's name),
so that a realm on 127.0.0.1 counts as internal while the registry does not.
The proxy forwards /v2/ to S and /token to the stack's token server, and
rewrites the registry's realm so token requests come through it as well.

Each fault test applies rules, scans, and checks that the containers it aimed at
carry the right reason while every other one still has its baseline answer.
"""
from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema

from engine.report import schema
from handler.cli import main
from tests.stack import Stack, pull, run_container, untag
from tests.reportdoc import containers_of

from .certs import Authority, bundle
from .proxy import Action, FaultProxy, Upstream, respond

SCOPE = "spyglass-faults"
SCOPE_LABEL = "com.centurylinklabs.watchtower.scope"
ROOT = Path(__file__).parents[2]
SCHEMA = schema()


@dataclass
class ScanResult:
    code: int
    report: dict | None
    stdout: str
    stderr: str
    seconds: float

    def by_name(self) -> dict[str, dict]:
        return {c["name"]: c for c in containers_of(self.report or {"endpoints": []})}

    def outcomes(self) -> dict[str, tuple[str, str | None]]:
        return {name: (c["status"], c["reason"]) for name, c in self.by_name().items()}

    def registry(self, name: str) -> dict:
        return next(r for r in self.report["registries"] if r["name"] == name)


@dataclass
class FaultWorld:
    stack: Stack
    workdir: Path
    authority: Authority  # trusted by the scanner (in the CA bundle)
    rogue: Authority  # trusted by nobody
    proxy: FaultProxy
    ca_bundle: Path
    docker_config: Path
    host_name: str | None
    expected: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    container_ids: list[str] = field(default_factory=list)

    @property
    def named_registry(self) -> str | None:
        return f"{self.host_name}:{self.proxy.port}" if self.host_name else None

    def all_proxied(self, reason: str) -> dict[str, str]:
        """Every container whose registry is the proxy (under either name), with this reason."""
        return {name: reason for name in self.expected if name != "f-direct"}

    @contextlib.contextmanager
    def trap(self, *, tls: bool = True, answer: Action | None = None) -> Iterator[FaultProxy]:
        """A server elsewhere that records whatever reaches it (a foreign realm, a redirect target)."""
        token = json.dumps({"token": "trap-token", "expires_in": 300}).encode()
        server = FaultProxy(tls=self.authority.server("trap", ["127.0.0.1", "localhost"]) if tls else None,
                            default=answer or respond(200, {"Content-Type": "application/json"}, token))
        with server, server.rules():
            yield server

    def args(self, timeout: float) -> list[str]:
        return ["scan", "--output", "json", "--scope", SCOPE, "--registry-ca", str(self.ca_bundle),
                "--docker-config", str(self.docker_config), "--timeout", str(timeout)]

    def scan(self, *extra: str, timeout: float = 20, env: dict | None = None) -> ScanResult:
        """The CLI in this process (logs and report captured)."""
        out, err = io.StringIO(), io.StringIO()
        started = time.monotonic()
        code = main([*self.args(timeout), *extra], env=env or self.stack.env(), stdout=out, stderr=err,
                    home=self.workdir)
        return _result(code, out.getvalue(), err.getvalue(), time.monotonic() - started)

    def scan_process(self, *extra: str, timeout: float = 20, wall: float = 60) -> ScanResult:
        """The CLI as its own process: proves it exits (no thread left blocking the interpreter)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "SPYGLASS_"))}
        env |= self.stack.env() | {"PYTHONPATH": str(ROOT), "HOME": str(self.workdir)}
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "handler.cli", *self.args(timeout), *extra], env=env,
                              capture_output=True, text=True, timeout=wall, cwd=str(ROOT))
        return _result(done.returncode, done.stdout, done.stderr, time.monotonic() - started)

    def check(self, result: ScanResult, affected: dict[str, str], *, code: int = 0) -> None:
        """Aimed-at containers are errors with these reasons; every other one has its baseline answer."""
        assert result.code == code, result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        want = {name: (("error", affected[name]) if name in affected else baseline)
                for name, baseline in self.expected.items()}
        got = result.outcomes()
        assert got == want, _explain(result, want)


def _result(code: int, stdout: str, stderr: str, seconds: float) -> ScanResult:
    report = json.loads(stdout) if stdout.lstrip().startswith("{") else None  # text and markdown stay text
    if report is not None:
        jsonschema.validate(report, SCHEMA)
    return ScanResult(code, report, stdout, stderr, seconds)


def _explain(result: ScanResult, want: dict) -> str:
    lines = [f"{name}: want {want.get(name)} got {(c['status'], c['reason'])} {(c['error'] or '')[:300]}"
             for name, c in sorted(result.by_name().items())]
    return "\n".join(lines + [result.stderr[-2000:]])


def loopback_host_name() -> str | None:
    """This machine's name when it resolves to loopback only (a registry name that is not a literal)."""
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None, socket.AF_INET)}
    except OSError:
        return None
    if not addresses or not all(a.startswith("127.") for a in addresses) or "." in name or name == "localhost":
        return None
    return name


def build_world(stack: Stack, workdir: Path) -> FaultWorld:
    workdir.mkdir(parents=True, exist_ok=True)
    authority = Authority.create(workdir / "pki", "spyglass fault CA")
    rogue = Authority.create(workdir / "rogue", "spyglass rogue CA")
    host_name = loopback_host_name()
    names = ["127.0.0.1", "localhost"] + ([host_name] if host_name else [])
    token_base = f"https://127.0.0.1:{stack.token_server.port}"
    proxy = FaultProxy(
        tls=authority.server("registry-proxy", names),
        upstreams={"/": Upstream(stack.secure.url, ca=stack.pki.ca), "/token": Upstream(token_base, ca=stack.pki.ca)},
        realm_from=token_base,
    ).start()
    world = FaultWorld(stack=stack, workdir=workdir, authority=authority, rogue=rogue, proxy=proxy,
                       ca_bundle=bundle(workdir / "ca-bundle.pem", stack.pki.ca, authority.cert),
                       docker_config=workdir / "docker-config" / "config.json", host_name=host_name)
    _write_docker_config(world)
    try:
        _build_fleet(world)
    except BaseException:
        destroy_world(world)
        raise
    return world


def destroy_world(world: FaultWorld) -> None:
    client = world.stack.daemon.admin
    for container_id in world.container_ids:
        try:
            client.remove_container(container_id, force=True)
        except Exception:  # noqa: BLE001 - gone already; the daemon's own stop sweeps the rest
            pass
    world.proxy.stop()


def _write_docker_config(world: FaultWorld) -> None:
    alice = world.stack.alice
    auth = {"auth": base64.b64encode(f"{alice.username}:{alice.password}".encode()).decode()}
    hosts = [world.stack.secure.address, world.proxy.address] + ([world.named_registry] if world.host_name else [])
    world.docker_config.parent.mkdir(parents=True, exist_ok=True)
    world.docker_config.write_text(json.dumps({"auths": {h: auth for h in hosts}}))
    world.docker_config.chmod(0o600)


def _build_fleet(world: FaultWorld) -> None:
    stack, proxy, admin = world.stack, world.proxy.address, world.stack.daemon.admin
    secure, credentials = stack.secure.address, stack.admin_account.auth_config()
    for repository, variant in (("faults/ok", "faults-ok"), ("faults/stale", "faults-stale-a"),
                                ("faults/target", "faults-target"), ("private/faults", "faults-private")):
        stack.publish(stack.secure, repository, "1", variant)
        pull(admin, f"{proxy}/{repository}", "1", credentials)  # records a RepoDigest under the proxy's name
    # The stale case: a new image under a side tag, forgotten locally, then the tag moved upstream only.
    stack.publish(stack.secure, "faults/stale", "next", "faults-stale-b")
    untag(admin, f"{secure}/faults/stale:next")
    with stack.secure_http() as registry:
        registry.copy_tag("faults/stale", "next", "1")
    containers = {"f-ok": (f"{proxy}/faults/ok:1", "fresh"), "f-stale": (f"{proxy}/faults/stale:1", "stale"),
                  "f-target": (f"{proxy}/faults/target:1", "fresh"),
                  "f-private": (f"{proxy}/private/faults:1", "fresh"), "f-direct": (f"{secure}/faults/ok:1", "fresh")}
    if world.host_name:
        admin.tag(f"{proxy}/faults/ok:1", f"{world.named_registry}/faults/ok", "1")
        containers["f-named"] = (f"{world.named_registry}/faults/ok:1", "fresh")
    for name, (image, status) in containers.items():
        world.container_ids.append(run_container(admin, name, image, labels={SCOPE_LABEL: SCOPE}))
        world.expected[name] = (status, None)
