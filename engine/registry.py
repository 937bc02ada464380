"""Registry operations: the digest behind a tag, a manifest's body, an index's children, the tags.

``RegistryClient`` works on any Transport; what a scan gives it is the layered one that
``layered()`` composes, each layer a module of its own:

    RegistryClient   HEAD/GET a manifest; no digest on the HEAD: GET and hash the body;
                     a repository's tags, page by page (Link rel="next"); with a digest
                     cache (digestcache.py), a tag's HEAD asked once per run, fleet-wide
    → AuthTransport  (auth.py) ping once, scheme, Basic or Bearer, one refresh on 401
    → RetryTransport (retry.py) temporary failures again, within the deadline
    → CountingTransport (stats.py) requests by kind for the report
    → HttpPools      (transport.py) one request on a kept-alive connection
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import urljoin, urlsplit

from .auth import AuthTransport
from .authn import ANONYMOUS_KEYCHAIN, Keychain
from .clock import Clock, Deadline, SystemClock
from .digestcache import DigestCache, DigestKey
from .errors import RegistryError
from .link import next_link
from .mediatypes import MANIFEST_ACCEPT, Descriptor, is_index
from .name import Registry
from .retry import Backoff, RetryTransport
from .stats import CountingTransport, RegistryStats
from .status import raise_for_status
from .tokens import TokenCache
from .transport import HttpPools, Request, Response, Transport

log = logging.getLogger("spyglass.registry")

@dataclass(frozen=True)
class TagLimits:
    """Bounds on one repository's tags list; past any of them the list is an error, not a guess."""

    page_size: int = 1000  # n= asked; a registry may send fewer and a Link to the rest
    pages: int = 50
    page_bytes: int = 4 * 1024 * 1024
    total_bytes: int = 16 * 1024 * 1024
    tags: int = 50_000


class RegistryClient:
    """Manifest and tags requests to one registry, through `transport`; safe to share between threads."""

    def __init__(self, registry: Registry, transport: Transport, *, digest_cache: DigestCache | None = None):
        self.registry = registry
        self._transport = transport
        self._digests = digest_cache

    def head_manifest(self, repository: str, reference: str) -> Descriptor:
        """The digest and media type the registry serves for repository:reference (a tag's from the
        digest cache when a recent lookup stored it)."""
        key = DigestKey(self.registry.name, repository, reference, MANIFEST_ACCEPT)
        cached = self._cached(key)
        if cached is not None:
            return cached
        try:
            response = self._manifest("HEAD", repository, reference)
            digest = response.header("Docker-Content-Digest")
            if digest:
                descriptor = Descriptor(digest, _media_type(response))
            else:
                descriptor, _ = self.get_manifest(repository, reference)
        except BaseException:
            self._cache_call("abandon", key)
            raise
        self._cache_call("put", key, descriptor)
        return descriptor

    def _cached(self, key: DigestKey) -> Descriptor | None:
        """A tag's descriptor from the cache; a cache that fails is a miss (the HEAD goes out)."""
        if self._digests is None or ":" in key.tag:  # a digest reference needs no cache
            return None
        try:
            return self._digests.get(key)
        except Exception as exc:  # noqa: BLE001 - any cache failure costs one HEAD, never the lookup
            log.warning("digest cache read for %s/%s failed (%s); asking the registry", key.registry,
                        key.repository, type(exc).__name__)
            return None

    def _cache_call(self, method: str, key: DigestKey, *args) -> None:
        """put or abandon; a failure is a warning (the lookup itself is settled: only the next one pays)."""
        if self._digests is None or ":" in key.tag:
            return
        try:
            getattr(self._digests, method)(key, *args)
        except Exception as exc:  # noqa: BLE001
            log.warning("digest cache %s for %s/%s failed (%s)", method, key.registry, key.repository,
                        type(exc).__name__)

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

    def list_tags(self, repository: str, limits: TagLimits = TagLimits()) -> list[str]:
        """Every tag of repository, following the Link header's rel="next" page by page.

        Bounded by limits: pages, bytes in all and tags; a next page on another host, or one
        already read (a loop), ends it with a RegistryError, as does a body that is not a tags list.
        """
        url = f"https://{self.registry.host}/v2/{repository}/tags/list?n={limits.page_size}"
        origin = urlsplit(url).netloc  # the scheme is the auth layer's to settle (plain http on loopback)
        seen: set[str] = set()
        tags: list[str] = []
        read = 0
        while url:
            operation = f"GET tags {self.registry.name}/{repository} (page {len(seen) + 1})"
            if url in seen:
                raise self._tags_error(repository, f"{operation}: the next page is one already read")
            if len(seen) >= limits.pages:
                raise self._tags_error(repository, f"{operation}: more than {limits.pages} pages")
            if read >= limits.total_bytes:
                raise self._tags_error(repository, f"{operation}: more than {limits.total_bytes} bytes in all")
            seen.add(url)
            budget = min(limits.page_bytes, limits.total_bytes - read)
            response = self._send(Request("GET", url, {"Accept": "application/json"}, max_body=budget,
                                          operation=operation), repository)
            read += len(response.body)
            tags.extend(_tags_of(response.body, lambda why: self._tags_error(repository, f"{operation}: {why}")))
            if len(tags) > limits.tags:
                raise self._tags_error(repository, f"{operation}: more than {limits.tags} tags")
            following = next_link(response.header_values("Link"))
            url = urljoin(url, following) if following else ""
            if url and urlsplit(url).netloc != origin:
                raise self._tags_error(repository, f"{operation}: the next page is on another host")
        return tags

    def _tags_error(self, repository: str, message: str) -> RegistryError:
        return RegistryError(message, registry=self.registry.name, repository=repository)

    def _send(self, request: Request, repository: str) -> Response:
        """request's response; a failure as a RegistryError naming registry and repository."""
        try:
            response = self._transport.round_trip(request)
            raise_for_status(response, request.operation, registry=self.registry.name, repository=repository)
        except RegistryError as exc:
            if exc.registry and exc.repository:
                raise
            raise _about(exc, self.registry.name, repository) from exc
        return response

    def _manifest(self, method: str, repository: str, reference: str) -> Response:
        separator = "@" if ":" in reference else ":"
        operation = f"{method} manifest {self.registry.name}/{repository}{separator}{reference}"
        url = f"https://{self.registry.host}/v2/{repository}/manifests/{reference}"
        return self._send(Request(method, url, {"Accept": MANIFEST_ACCEPT}, operation=operation), repository)


def _tags_of(body: bytes, error) -> list[str]:
    try:
        document = json.loads(body)
    except ValueError:
        raise error("not valid JSON") from None
    tags = document.get("tags") if isinstance(document, dict) else None
    if tags is None and isinstance(document, dict) and "tags" in document:
        return []  # distribution answers a repository without tags with "tags": null
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise error("not a tags list")
    return tags


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
            backoff: Backoff = Backoff(), digest_cache: DigestCache | None = None) -> LayeredRegistry:
    """A client for registry on the full stack: auth over retry over counting over pools; with
    digest_cache, a tag looked up recently (by this run's other batches) costs no HEAD."""
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
    return LayeredRegistry(RegistryClient(registry, auth, digest_cache=digest_cache), auth, stats)
