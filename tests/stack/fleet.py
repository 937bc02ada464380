"""The whole stack a scan runs against, and a small fleet whose right answers we know.

    Stack.start(workdir)
      1. PKI (throw-away CA and certificates)
      2. token server (thread in this process)
      3. "secure" registry: TLS from the test CA, token auth via (2)
      4. "plain" registry: http, no auth
      5. dockerd: mutual TLS, both registries marked insecure so it can push
      6. docker config.json holding alice's credentials for the secure registry

Any failure part-way stops what already started; `stop()` is safe to call
twice. Users: `admin` pushes everywhere (the fixture's own account); `alice`
may also pull the private repositories under `private/`; anonymous users pull
the public ones.
"""
from __future__ import annotations

import atexit
import base64
import json
import platform
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .distribution import Platform, RegistryHttp
from .dockerd import DockerDaemon
from .images import make_image, pull, push, run_container, untag
from .pki import Pki, make_pki
from .registry import Registry, TokenAuth
from .tokens import Signer
from .tokenserver import AccessPolicy, TokenServer

SERVICE = "spyglass-test-registry"
PRIVATE_PREFIX = "private/"
OPT_OUT_LABEL = "com.centurylinklabs.watchtower.enable"


@dataclass(frozen=True)
class Account:
    username: str
    password: str

    def auth_config(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}


class Stack:
    def __init__(self) -> None:
        self.workdir: Path | None = None
        self.pki: Pki | None = None
        self.admin_account = Account("admin", secrets.token_urlsafe(12))
        self.alice = Account("alice", secrets.token_urlsafe(12))
        self.token_server: TokenServer | None = None
        self.secure: Registry | None = None
        self.plain: Registry | None = None
        self.daemon: DockerDaemon | None = None
        self._stoppers: list[Callable[[], None]] = []

    # -- lifecycle ------------------------------------------------------------

    def start(self, workdir: str | Path) -> Stack:
        self.workdir = Path(workdir)
        # Last line of defence: an interpreter that exits without reaching stop() still stops us.
        atexit.register(self.stop)
        try:
            self._start_all()
        except BaseException:
            self.stop()  # also on Ctrl-C part-way: nothing may outlive us
            raise
        return self

    def stop(self) -> None:
        """Stop in reverse start order; one failing stop does not keep the others running."""
        atexit.unregister(self.stop)
        errors = []
        while self._stoppers:
            try:
                self._stoppers.pop()()
            except Exception as exc:  # noqa: BLE001 - collected and re-raised below
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _start_all(self) -> None:
        self.pki = make_pki(self.workdir / "pki")
        self.token_server = self._started(TokenServer(
            signer=Signer.from_files(self.pki.signing.cert, self.pki.signing.key),
            tls=self.pki.registry, policy=self._policy(), service=SERVICE))
        token_auth = TokenAuth(realm=self.token_server.realm, service=SERVICE,
                               issuer=self.token_server.issuer, rootcertbundle=self.pki.ca)
        self.secure = self._started(Registry(self.workdir / "secure", tls=self.pki.registry, ca=self.pki.ca,
                                             token_auth=token_auth))
        self.plain = self._started(Registry(self.workdir / "plain"))
        self.daemon = self._started(DockerDaemon(self.workdir / "dockerd", self.pki,
                                                 insecure_registries=[self.secure.address, self.plain.address]))
        self._write_docker_config()

    def _started(self, service):
        # Registered before start(): a start that fails half-way still gets its stop().
        self._stoppers.append(service.stop)
        return service.start()

    def _policy(self) -> AccessPolicy:
        return AccessPolicy(
            users={a.username: a.password for a in (self.admin_account, self.alice)},
            admins=frozenset({self.admin_account.username}),
            private=(PRIVATE_PREFIX,),
            private_readers=frozenset({self.alice.username}),
        )

    # -- what a scanner needs -----------------------------------------------------

    @property
    def docker_config_dir(self) -> Path:
        return self.workdir / "docker-config"

    @property
    def docker_config(self) -> Path:
        return self.docker_config_dir / "config.json"

    @property
    def registry_ca(self) -> Path:
        return self.pki.ca

    def env(self) -> dict[str, str]:
        """Environment for a scanner process: the daemon's TLS endpoint and the docker config dir."""
        return self.daemon.env() | {"DOCKER_CONFIG": str(self.docker_config_dir)}

    def scan_args(self) -> list[str]:
        return ["--registry-ca", str(self.registry_ca), "--docker-config", str(self.docker_config),
                "--insecure-registry", self.plain.address]

    def _write_docker_config(self) -> None:
        auth = base64.b64encode(f"{self.alice.username}:{self.alice.password}".encode()).decode()
        self.docker_config_dir.mkdir(parents=True, exist_ok=True)
        self.docker_config.write_text(json.dumps({"auths": {self.secure.address: {"auth": auth}}}, indent=2))
        self.docker_config.chmod(0o600)

    # -- set-up helpers -------------------------------------------------------------

    def secure_http(self) -> RegistryHttp:
        """Admin HTTP access to the secure registry (caller closes it)."""
        return RegistryHttp(self.secure.address, ca=self.pki.ca,
                            credentials=(self.admin_account.username, self.admin_account.password))

    def plain_http(self) -> RegistryHttp:
        return RegistryHttp(self.plain.address, scheme="http")

    def publish(self, registry: Registry, repository: str, tag: str, variant: str) -> tuple[str, str]:
        """Make and push `registry/repository:tag`; returns (image ID, manifest digest)."""
        client, name = self.daemon.admin, f"{registry.address}/{repository}"
        image_id = make_image(client, name, tag, variant)
        auth = self.admin_account.auth_config() if registry is self.secure else None
        return image_id, push(client, name, tag, auth)


@dataclass(frozen=True)
class Expected:
    status: str  # fresh | stale | skipped | error
    reason: str | None = None

    def as_tuple(self) -> tuple[str, str | None]:
        return (self.status, self.reason)


def build_demo_fleet(stack: Stack) -> dict[str, tuple[str, str | None]]:
    """Create the demo containers on the stack's daemon; returns {container name: (status, reason)}.

    Each case uses its own repository, so deleting or moving one tag cannot
    disturb another case.
    """
    expected: dict[str, Expected] = {}
    with stack.secure_http() as registry:
        for build in (_fresh_public, _stale, _private, _plain, _pinned, _never_pushed, _opted_out,
                      _not_running, _multi_platform, _not_found):
            expected.update(build(stack, registry))
    return {name: value.as_tuple() for name, value in expected.items()}


def _fresh_public(stack: Stack, registry: RegistryHttp) -> dict[str, Expected]:
    """Two containers sharing one image whose tag has not moved."""
    stack.publish(stack.secure, "demo/web", "1", "web")
    for name in ("web-1", "web-2"):
        run_container(stack.daemon.admin, name, f"{stack.secure.address}/demo/web:1")
    return {"web-1": Expected("fresh"), "web-2": Expected("fresh")}


def _stale(stack: Stack, registry: RegistryHttp) -> dict[str, Expected]:
    """The registry's tag moves to a new variant; the daemon's own tag stays where it was."""
    stack.publish(stack.secure, "demo/stale", "1", "stale-old")
    run_container(stack.daemon.admin, "stale", f"{stack.secure.address}/demo/stale:1")
    # Push the new variant under a side tag, forget it locally, then move the tag in the registry only.
    stack.publish(stack.secure, "demo/stale", "next", "stale-new")
    untag(stack.daemon.admin, f"{stack.secure.address}/demo/stale:next")
    registry.copy_tag("demo/stale", "next", "1")
    return {"stale": Expected("stale")}


def _private(stack: Stack, registry: RegistryHttp) -> dict[str, Expected]:
    """Needs alice's credentials from the docker config; anonymous lookups are refused."""
    stack.publish(stack.secure, f"{PRIVATE_PREFIX}app", "1", "private")
    run_container(stack.daemon.admin, "private", f"{stack.secure.address}/{PRIVATE_PREFIX}app:1")
    return {"private": Expected("fresh")}


def _plain(stack: Stack, registry: RegistryHttp) -> dict[str, Expected]:
    stack.publish(stack.plain, "demo/plain", "1", "plain")
    run_container(stack.daemon.admin, "plain", f"{stack.plain.address}/demo/plain:1")
    return {"plain": Expected("fresh")}


def _pinned(stack: Stack, registry: RegistryHttp) -> dict[str, Expected]:
    """Run by repo@sha256: there is no tag that could move."""
    _, digest = stack.publish(stack.secure, "demo/pinned", "1", "pinned")
    run_container(stack.daemon.admin, "pinned", f"{stack.secure.address}/demo/pinned@{digest}")
    return {"pinned": Expected("skipped", "pinned-digest")}


def _never_pushed(stack: Stack, registry: RegistryHttp) -> dict[str, Expected]:
    """Imported locally only: the image has no RepoDigests to compare with."""
    make_image(stack.daemon.admin, "local/only", "1", "local-only")
    run_container(stack.daemon.admin, "local-only", "local/only:1")
    return {"local-only": Expected("skipped", "no-repo-digest")}


def _opted_out(stack: Stack, registry: RegistryHttp) -> dict[str, Expected]:
    stack.publish(stack.secure, "demo/optout", "1", "opted-out")
    run_container(stack.daemon.admin, "opted-out", f"{stack.secure.address}/demo/optout:1",
                  labels={OPT_OUT_LABEL: "false"})
    return {"opted-out": Expected("skipped", "disabled-by-label")}


def _not_running(stack: Stack, registry: RegistryHttp) -> dict[str, Expected]:
    stack.publish(stack.secure, "demo/idle", "1", "idle")
    run_container(stack.daemon.admin, "stopped", f"{stack.secure.address}/demo/idle:1", start=False)
    return {"stopped": Expected("skipped", "not-running")}


def _multi_platform(stack: Stack, registry: RegistryHttp) -> dict[str, Expected]:
    """The tag becomes an index over the running manifest plus another platform's: still fresh."""
    name = f"{stack.secure.address}/demo/multi"
    stack.publish(stack.secure, "demo/multi", "multi", "multi-native")
    untag(stack.daemon.admin, f"{name}:multi")  # so the running image arrives by pull, as in real life
    pull(stack.daemon.admin, name, "multi", stack.alice.auth_config())
    run_container(stack.daemon.admin, "multi", f"{name}:multi")
    native, foreign = _native_and_foreign_platforms()
    native_manifest = registry.describe("demo/multi", "multi")
    foreign_manifest = registry.push_synthetic_image("demo/multi", foreign, f"multi-{foreign.architecture}")
    registry.put_index("demo/multi", "multi", [(native_manifest, native), (foreign_manifest, foreign)])
    return {"multi": Expected("fresh")}


def _not_found(stack: Stack, registry: RegistryHttp) -> dict[str, Expected]:
    """The tag is deleted from the registry after the container started."""
    stack.publish(stack.secure, "demo/gone", "1", "gone")
    run_container(stack.daemon.admin, "gone", f"{stack.secure.address}/demo/gone:1")
    registry.delete_tag("demo/gone", "1")
    return {"gone": Expected("error", "not-found")}


def _native_and_foreign_platforms() -> tuple[Platform, Platform]:
    # Images imported on the daemon carry its own architecture, in Go's naming.
    arm64, amd64 = Platform("linux", "arm64", "v8"), Platform("linux", "amd64")
    return (arm64, amd64) if platform.machine() in ("aarch64", "arm64") else (amd64, arm64)
