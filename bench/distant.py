"""The integration stack with every server behind a delaying front, and a third registry.

    servers (tests/stack)                       what clients are told
    token server  https://127.0.0.1:T/token     realm https://127.0.0.1:T'/token
    "secure"      TLS + token auth              127.0.0.1:A'  (public and private/ repositories)
    "open"        TLS, anonymous                127.0.0.1:B'
    "plain"       http, anonymous               127.0.0.1:C'
    dockerd       mutual TLS on 127.0.0.1:D     DOCKER_HOST=tcp://127.0.0.1:D'

Images are pushed through the fronts (at delay 0), so the references the
containers carry, and so the scanner's requests, name the front ports. The
daemon is told that the fronts are insecure registries, as the stack tells it
about the servers. This is `tests.stack.Stack` with its start sequence
re-stated here: the stack offers no hook to put something between its servers
and their clients (see docs/performance.md for the change that would).
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.stack import DockerDaemon, Registry, RegistryHttp, Stack, TokenAuth, TokenServer, make_pki
from tests.stack.fleet import SERVICE
from tests.stack.images import make_image, push
from tests.stack.tokens import Signer

from .proxy import Network

REGISTRIES = ("secure", "open", "plain")


class DistantStack(Stack):
    """`start(workdir)` brings the servers and their fronts up; `stop()` takes all of it down."""

    def __init__(self, *, storage_driver: str = "overlay2", handshake: bool = True):
        super().__init__(storage_driver=storage_driver)
        self.network = Network(0.0, handshake=handshake)
        self.open: Registry | None = None

    def _start_all(self) -> None:
        self.pki = make_pki(self.workdir / "pki")
        self._started(self.network)  # first in, last out: the servers stop behind live fronts
        self.token_server = self._started(TokenServer(
            signer=Signer.from_files(self.pki.signing.cert, self.pki.signing.key),
            tls=self.pki.registry, policy=self._policy(), service=SERVICE))
        token_front = self.network.front("token", self.token_server.port)
        token_auth = TokenAuth(realm=f"https://{token_front.address}/token", service=SERVICE,
                               issuer=self.token_server.issuer, rootcertbundle=self.pki.ca)
        self.secure = self._started(Registry(self.workdir / "secure", tls=self.pki.registry, ca=self.pki.ca,
                                             token_auth=token_auth))
        self.open = self._started(Registry(self.workdir / "open", tls=self.pki.registry, ca=self.pki.ca))
        self.plain = self._started(Registry(self.workdir / "plain"))
        for name in REGISTRIES:
            self.network.front(name, self.registry(name).port)
        self.daemon = self._started(DockerDaemon(
            self.workdir / "dockerd", self.pki, storage_driver=self.storage_driver,
            insecure_registries=[self.address(name) for name in REGISTRIES]))
        self.network.front("daemon", self.daemon.port)
        self._write_docker_config()

    # -- addresses as clients see them ---------------------------------------------

    def registry(self, name: str) -> Registry:
        return {"secure": self.secure, "open": self.open, "plain": self.plain}[name]

    def address(self, name: str) -> str:
        """host:port of the front of `name` (a registry, "daemon" or "token")."""
        return self.network.fronts[name].address

    def env(self) -> dict[str, str]:
        return {"DOCKER_HOST": f"tcp://{self.address('daemon')}", "DOCKER_TLS_VERIFY": "1",
                "DOCKER_CERT_PATH": str(self.daemon.cert_dir), "DOCKER_CONFIG": str(self.docker_config_dir)}

    def scan_args(self) -> list[str]:
        return ["--registry-ca", str(self.registry_ca), "--docker-config", str(self.docker_config),
                "--insecure-registry", self.address("plain")]

    def _write_docker_config(self) -> None:
        auth = base64.b64encode(f"{self.alice.username}:{self.alice.password}".encode()).decode()
        self.docker_config_dir.mkdir(parents=True, exist_ok=True)
        self.docker_config.write_text(json.dumps({"auths": {self.address("secure"): {"auth": auth}}}, indent=2))
        self.docker_config.chmod(0o600)

    # -- set-up through the fronts -------------------------------------------------

    def http(self, name: str) -> RegistryHttp:
        """Admin HTTP access to a registry through its front (caller closes it)."""
        if name == "plain":
            return RegistryHttp(self.address(name), scheme="http")
        credentials = (self.admin_account.username, self.admin_account.password) if name == "secure" else None
        return RegistryHttp(self.address(name), ca=self.pki.ca, credentials=credentials)

    def publish_to(self, name: str, repository: str, tag: str, variant: str) -> tuple[str, str]:
        """Make and push `<front of name>/repository:tag`; returns (image ID, manifest digest)."""
        client, image = self.daemon.admin, f"{self.address(name)}/{repository}"
        image_id = make_image(client, image, tag, variant)
        auth = self.admin_account.auth_config() if name == "secure" else None
        return image_id, push(client, image, tag, auth)

    @property
    def logs(self) -> dict[str, Path]:
        return {"daemon": self.daemon.log, **{name: self.registry(name).access_log for name in REGISTRIES}}
