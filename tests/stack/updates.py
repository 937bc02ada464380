"""Stale containers made on the stack's daemon for the update tests (tests/integration/test_update.py,
tests/action/test_action_update.py): images imported here with chosen defaults, an old version
pushed and then a new one over it, the local tag back on the old one, as after a pull long ago.

Everything one App makes carries its unique prefix, and `remove()` takes it all away again.
"""
from __future__ import annotations

import secrets

from .images import import_image, push

W = "com.centurylinklabs.watchtower."
# PID 1 a shell that leaves on SIGTERM at once (a bare sleep would ignore it until the stop timeout;
# the shell runs its trap only once a foreground command ends, so it waits on a background sleep).
TRAP = 'CMD ["/bin/sh", "-c", "trap \'exit 0\' TERM; while true; do sleep 1 & wait $!; done"]'
HEALTHY = 'HEALTHCHECK --interval=1s --retries=1 CMD ["/bin/sh", "-c", "exit 0"]'
UNHEALTHY = 'HEALTHCHECK --interval=1s --retries=1 CMD ["/bin/sh", "-c", "exit 1"]'


class App:
    """Images and containers of one test, all removed at the end."""

    def __init__(self, stack):
        self.stack, self.client = stack, stack.daemon.admin
        self.prefix = f"up{secrets.token_hex(3)}"
        self.registry = stack.plain.address

    def repo(self, name: str) -> str:
        return f"{self.registry}/{self.prefix}/{name}"

    def publish(self, name: str, changes: list[str]) -> tuple[str, str]:
        """repo:1 built and pushed; (image ID, digest)."""
        image = import_image(self.client, self.repo(name), "1", changes)
        return image, push(self.client, self.repo(name), "1")

    def stale(self, name: str, old: list[str], new: list[str]) -> tuple[str, str]:
        """repo:1 pushed as old, then new pushed over it, and the local tag back on old (as after a
        pull long ago); returns (old digest, new digest)."""
        old_image, old_digest = self.publish(name, old)
        new_image, new_digest = self.publish(name, new)
        self.client.remove_image(new_image, force=True)
        self.client.tag(old_image, self.repo(name), "1")
        return old_digest, new_digest

    def run(self, name: str, image: str, *, start: bool = True, **host) -> str:
        extra = {k: host.pop(k) for k in ("environment", "command", "labels", "networking_config") if k in host}
        host.setdefault("network_mode", "none")
        created = self.client.create_container(self.repo(image), name=f"{self.prefix}-{name}",
                                               host_config=self.client.create_host_config(**host), **extra)
        if start:
            self.client.start(created["Id"])
        return created["Id"]

    def name(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def inspect(self, name: str) -> dict:
        return self.client.inspect_container(self.name(name))

    def ours(self) -> list[str]:
        return sorted(n.lstrip("/") for c in self.client.containers(all=True) for n in c["Names"]
                      if n.lstrip("/").startswith(self.prefix) and "/" not in n.lstrip("/"))

    def read(self, name: str, command: str) -> str:
        run = self.client.exec_create(self.name(name), ["sh", "-c", command])
        return self.client.exec_start(run["Id"]).decode().strip()

    def remove(self) -> None:
        for name in self.ours():
            self.client.remove_container(name, force=True, v=True)
        for network in self.client.networks(names=[self.prefix]):
            self.client.remove_network(network["Id"])
