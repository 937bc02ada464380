"""Registry operations: the digest behind a tag, a manifest's body, an index's children.

``RegistryClient`` works on any Transport; what a scan gives it is the layered one that
``layered()`` composes, each layer a module of its own:

    RegistryClient   HEAD/GET a manifest; no digest on the HEAD: GET and hash the body
    → AuthTransport  (auth.py) ping once, scheme, Basic or Bearer, one refresh on 401
    → RetryTransport (retry.py) temporary failures again, within the deadline
    → CountingTransport (stats.py) requests by kind for the report
    → HttpPools      (transport.py) one request on a kept-alive connection
"""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import urlsplit

from .auth import AuthTransport
from .authn import ANONYMOUS_KEYCHAIN, Keychain
from .clock import Clock, Deadline, SystemClock
from .errors import RegistryError
from .mediatypes import MANIFEST_ACCEPT, Descriptor, is_index
from .name import Registry
from .retry import Backoff, RetryTransport
from .stats import CountingTransport, RegistryStats
from .status import raise_for_status
from .tokens import TokenCache
from .transport import HttpPools, Request, Response, Transport


class RegistryClient:
    """Manifest requests to one registry, through `transport`; safe to share between threads."""

    def __init__(self, registry: Registry, transport: Transport):
        self.registry = registry
        self._transport = transport

    def head_manifest(self, repository: str, reference: str) -> Descriptor:
        """The digest and media type the registry serves for repository:reference."""
        response = self._manifest("HEAD", repository, reference)
        digest = response.header("Docker-Content-Digest")
        if digest:
            return Descriptor(digest, _media_type(response))
        descriptor, _ = self.get_manifest(repository, reference)
        return descriptor

    def get_manifest(self, repository: str, reference: str) -> tuple[Descriptor, bytes]:
        response = self._manifest("GET", repository, reference)
        digest = "sha256:" + hashlib.sha256(response.body).hexdigest()
        return Descriptor(digest, _media_type(response)), response.body

    def index_children(self, repository: str, reference: str) -> frozenset[str]:
        """Digests of the platform manifests an index lists (empty for a plain manifest)."""
        descriptor, body = self.get_manifest(repository, reference)
        if not is_index(descriptor.media_type):
            return frozenset()
        try:
            manifests = json.loads(body).get("manifests") or []
            return frozenset(m["digest"] for m in manifests if isinstance(m, dict) and isinstance(m.get("digest"), str))
        except (ValueError, AttributeError):
            raise RegistryError(f"read index {self.registry.name}/{repository}:{reference}: not valid JSON",
                                registry=self.registry.name, repository=repository) from None

    def _manifest(self, method: str, repository: str, reference: str) -> Response:
        separator = "@" if ":" in reference else ":"
        operation = f"{method} manifest {self.registry.name}/{repository}{separator}{reference}"
        url = f"https://{self.registry.host}/v2/{repository}/manifests/{reference}"
        try:
            response = self._transport.round_trip(Request(method, url, {"Accept": MANIFEST_ACCEPT},
                                                          operation=operation))
            raise_for_status(response, operation, registry=self.registry.name, repository=repository)
        except RegistryError as exc:
            if exc.registry and exc.repository:
                raise
            raise _about(exc, self.registry.name, repository) from exc
        return response


def _about(error: RegistryError, registry: str, repository: str) -> RegistryError:
    """A copy of error that names the registry and repository (the original may be shared: a
    remembered ping or token failure is raised to every lookup of its registry)."""
    named = copy.copy(error)
    named.registry = error.registry or registry
    named.repository = error.repository or repository
    return named


def _media_type(response: Response) -> str:
    return (response.header("Content-Type") or "").split(";", 1)[0].strip()


@dataclass(frozen=True)
class LayeredRegistry:
    """The layers a scan builds for one registry: the client, its auth layer (for prime) and its counts."""

    client: RegistryClient
    auth: AuthTransport
    stats: RegistryStats


def layered(registry: Registry, *, pools: HttpPools, keychain: Keychain = ANONYMOUS_KEYCHAIN,
            token_cache: TokenCache | None = None, clock: Clock | None = None,
            deadline: Deadline | None = None, repositories: Iterable[str] = (),
            backoff: Backoff = Backoff()) -> LayeredRegistry:
    """A client for registry on the full stack: auth over retry over counting over pools."""
    clock = clock or SystemClock()
    deadline = deadline or Deadline(clock, None)
    stats = RegistryStats()
    retried = RetryTransport(CountingTransport(pools, stats), backoff=backoff, clock=clock, deadline=deadline)
    address = urlsplit(f"//{registry.host}")
    mode = pools.tls.mode_for(address.hostname or registry.host, address.port)
    auth = AuthTransport(retried, registry, mode=mode, keychain=keychain, token_cache=token_cache,
                         clock=clock, repositories=repositories,
                         open_connections=lambda base_url, count: pools.open_connections(
                             base_url, count, timeout=deadline.remaining()))
    return LayeredRegistry(RegistryClient(registry, auth), auth, stats)
