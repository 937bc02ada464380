"""The whole stack a scan runs against: daemon, registries, token server, credentials.

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
import contextlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .distribution import RegistryHttp
from .dockerd import DockerDaemon
from .engines import EngineTree
from .images import make_image, push
from .pki import Pki, make_pki
from .registry import Registry, TokenAuth
from .tokens import Signer
from .access import AccessPolicy
from .tokenserver import TokenServer

SERVICE = "spyglass-test-registry"
PRIVATE_PREFIX = "private/"


@dataclass(frozen=True)
class Account:
    username: str
    password: str

    def auth_config(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}


class Stack:
    """Everything a scan talks to; `start(workdir)` brings it up, `stop()` takes all of it down."""

    def __init__(self, *, storage_driver: str = "vfs", engine: EngineTree | None = None,
                 image_store: str = "classic") -> None:
        self.storage_driver = storage_driver  # "overlay2" creates containers ~40% faster here
        self.engine = engine  # None: the machine's own dockerd (tests/stack/engines.py fetches others)
        self.image_store = image_store
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
            # Also on Ctrl-C part-way: nothing may outlive us. The start error is the one to report.
            with contextlib.suppress(Exception):
                self.stop()
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
        self.daemon = self._started(DockerDaemon(self.workdir / "dockerd", self.pki, storage_driver=self.storage_driver,
                                                 insecure_registries=[self.secure.address, self.plain.address],
                                                 engine=self.engine, image_store=self.image_store))
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
