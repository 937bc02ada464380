"""The registry work of a run, shared by every endpoint: each registry primed once, each lookup once.

    RegistryHub  one layered client per registry for the whole run; the first endpoint that names
                 a registry (from its two lists, before its per-container calls) builds its client
                 and starts its ping and connections; once every listing is in, one token per
                 credential covers every repository the endpoints named
    Lookups      one manifest lookup per distinct registry + repository + tag, one tags list per
                 distinct versioned repository, across all endpoints; a registry's lookups go to
                 the executor once its tokens are there, up to `concurrency` in flight in all

Keys arrive while the run goes on (each listing adds its own); the run's loop waits on the
listings, the token steps and the lookups together (engine/scan.py). Why tokens wait for the last
listing: a token asked for earlier would not cover the repositories named later, each of which
would cost a token of its own; the floor of a run (its slowest listing, then the registry work)
is the same either way, and the ping and the connections, which need no repository, go early.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, TypeVar

from .decide import Lookup, local_digests
from .errors import RegistryError, RegistryTimeoutError, SpyglassError
from .mediatypes import is_index
from .name import Reference, Registry
from .registry import LayeredRegistry, RegistryClient, TagLimits, layered

log = logging.getLogger("spyglass.scan")
T = TypeVar("T")


@dataclass(frozen=True)
class TagsKey:
    """One tags list, shared by every container that runs a version tag of the repository."""

    registry: str
    repository: str


def reference_key(reference: Reference) -> tuple[str, str, str]:
    return reference.registry.name, reference.repository, reference.manifest_identifier


def tags_key(reference: Reference) -> TagsKey:
    return TagsKey(reference.registry.name, reference.repository)


class RegistryHub:
    """One client per registry for the run, handshaken in two steps; safe to call from any thread.

    start()  the first endpoint that names a registry builds its client and starts the ping and the
             connections; later ones add their repositories to its plan
    open()   every listing is in: each registry fetches its tokens, one per credential (and scope
             chunk) for every repository of the run; a registry's lookups go once that is done
    """

    def __init__(self, executor: Executor, concurrency: int, collaborators: Mapping[str, object]):
        self._executor = executor
        self._concurrency = concurrency
        self._collaborators = dict(collaborators)
        self._lock = threading.Lock()  # guards the dicts and the plans; held over no I/O (submit only queues)
        self._layers: dict[str, LayeredRegistry] = {}
        self._tokens: dict[str, Future] = {}
        self._opened = False

    def start(self, registry: Registry, repositories: Iterable[str], references: int) -> None:
        """Build the registry's client and start its ping, or add to its plan."""
        repositories = frozenset(repositories)
        with self._lock:
            layer = self._layers.get(registry.name)
            if layer is None:
                layer = layered(registry, repositories=repositories, **self._collaborators)
                self._layers[registry.name] = layer
                connections = min(self._concurrency, max(1, references))
                if self._opened:  # named after the listings (not in a run's normal course): all at once
                    self._tokens[registry.name] = self._executor.submit(layer.auth.prime, connections)
                else:
                    self._executor.submit(layer.auth.prime, connections, tokens=False)
                return
            # Before the tokens: into the plan (under this lock, so open() sees it). After (a
            # straggler's): each costs a token of its own, not every repository a new combined one.
            if not self._opened and not repositories <= layer.auth.planned:
                layer.auth.plan(repositories)

    def open(self) -> None:
        """Every listing is in: start each registry's tokens (once)."""
        with self._lock:
            self._opened = True
            for name, layer in self._layers.items():
                if name not in self._tokens:
                    self._tokens[name] = self._executor.submit(layer.auth.prime_tokens)

    def client(self, name: str) -> RegistryClient:
        with self._lock:
            return self._layers[name].client

    def ready(self, name: str) -> Future | None:
        """The registry's token step (done: its lookups may go), None before open()."""
        with self._lock:
            return self._tokens.get(name)

    def layers(self) -> dict[str, LayeredRegistry]:
        with self._lock:
            return dict(self._layers)


Key = tuple  # a reference_key, or a TagsKey


class Lookups:
    """The run's lookups and tags lists, each once; driven by the run's loop (one thread)."""

    def __init__(self, hub: RegistryHub, executor: Executor, concurrency: int, tag_limits: TagLimits = TagLimits()):
        self._hub = hub
        self._executor = executor
        self._concurrency = concurrency
        self._tag_limits = tag_limits
        self._wanted: dict[tuple, Reference] = {}
        self._digests: dict[tuple, set[str]] = {}  # every listed local digest of a reference's images
        self._tags_wanted: set[TagsKey] = set()
        self._waiting: dict[str, list[Key]] = {}  # by registry: keys whose prime is not done
        self._ready: deque[Key] = deque()
        self._running: dict[Future, Key] = {}
        self._results: dict[tuple, Lookup] = {}
        self._tags: dict[TagsKey, list[str] | SpyglassError] = {}

    def add(self, pending: Iterable, versioned: Callable[[object], bool] = lambda item: False, *,
            late: bool = False) -> None:
        """Each item (container, reference) of one endpoint; versioned(item): its repository's tags are
        wanted. late: past the deadline, the keys are only noted (each a timeout), nothing is asked."""
        plan: dict[str, tuple[Registry, set[str], int]] = {}
        for item in pending:
            reference = item.reference
            key = reference_key(reference)
            self._digests.setdefault(key, set()).update(local_digests(item.container, None))
            if key not in self._wanted:
                self._wanted[key] = reference
                if not late:
                    self._wait(reference.registry.name, key)
                    registry, repositories, count = plan.get(reference.registry.name,
                                                             (reference.registry, set(), 0))
                    repositories.add(reference.repository)
                    plan[reference.registry.name] = (registry, repositories, count + 1)
            tags = tags_key(reference)
            if versioned(item) and tags not in self._tags_wanted:
                self._tags_wanted.add(tags)
                if not late:
                    self._wait(reference.registry.name, tags)
        for registry, repositories, count in plan.values():
            self._hub.start(registry, repositories, count)

    def _wait(self, registry: str, key: Key) -> None:
        """Hold the key until its registry's prime is done (submit_ready releases it)."""
        self._waiting.setdefault(registry, []).append(key)

    @property
    def busy(self) -> bool:
        return bool(self._waiting or self._ready or self._running)

    @property
    def wanted(self) -> int:
        return len(self._wanted)

    @property
    def checked(self) -> int:
        return len(self._results)

    def submit_ready(self) -> None:
        """Release the keys of every primed registry; submit up to `concurrency` in flight."""
        for name in list(self._waiting):
            tokens = self._hub.ready(name)
            if tokens is not None and tokens.done():
                self._ready.extend(self._waiting.pop(name))
        while self._ready and len(self._running) < self._concurrency:
            key = self._ready.popleft()
            if isinstance(key, TagsKey):
                work = (_tags_one, self._hub.client(key.registry), key, self._tag_limits)
            else:
                reference = self._wanted[key]
                work = (_lookup_one, self._hub.client(reference.registry.name), reference,
                        frozenset(self._digests[key]))
            self._running[self._executor.submit(*work)] = key

    def waits(self) -> list[Future]:
        """What the run's loop waits on besides the listings: lookups out, token steps not done."""
        steps = (self._hub.ready(name) for name in self._waiting)
        return [*self._running, *(step for step in steps if step is not None)]

    def finished(self, future: Future) -> bool:
        """Record a finished lookup or tags list; False for a future that is not one (a token step)."""
        key = self._running.pop(future, None)
        if key is None:
            return False
        if isinstance(key, TagsKey):
            self._tags[key] = future.result()
        else:
            self._results[key] = future.result()
        return True

    def result(self, key: tuple) -> Lookup:
        """The key's lookup; a timeout where the deadline came first."""
        if key in self._results:
            return self._results[key]
        reference = self._wanted[key]
        return Lookup(error=RegistryTimeoutError(
            f"look up {reference}: scan deadline reached before the registry answered",
            registry=reference.registry.name, repository=reference.repository))

    def tags_of(self, key: TagsKey) -> list[str] | SpyglassError | None:
        if key not in self._tags_wanted:
            return None
        if key in self._tags:
            return self._tags[key]
        return RegistryTimeoutError(
            f"list tags {key.registry}/{key.repository}: scan deadline reached before the registry answered",
            registry=key.registry, repository=key.repository)


def _tags_one(client: RegistryClient, key: TagsKey, limits: TagLimits) -> list[str] | SpyglassError:
    try:
        return _contained(f"list tags {key.registry}/{key.repository}", key.registry, key.repository,
                          lambda: client.list_tags(key.repository, limits))
    except SpyglassError as exc:
        return exc


def _lookup_one(client: RegistryClient, reference: Reference, local: frozenset[str]) -> Lookup:
    """The tag's digest; for an index that is not itself local, also its children."""
    def look() -> Lookup:
        descriptor = client.head_manifest(reference.repository, reference.manifest_identifier)
        children = frozenset()
        if descriptor.digest not in local and is_index(descriptor.media_type):
            children = client.index_children(reference.repository, descriptor.digest)
        return Lookup(descriptor=descriptor, children=children)

    try:
        return _contained(f"look up {reference}", reference.registry.name, reference.repository, look)
    except SpyglassError as exc:
        return Lookup(error=exc)


def _contained(operation: str, registry: str, repository: str, work: Callable[[], T]) -> T:
    """work(); a bug in it becomes a RegistryError for this one operation, not the scan's end."""
    try:
        return work()
    except SpyglassError:
        raise
    except Exception as exc:  # noqa: BLE001 - logged whole here, reported as one entry
        log.exception("unexpected failure: %s", operation)
        raise RegistryError(f"{operation}: unexpected {type(exc).__name__}", registry=registry,
                            repository=repository) from None
