"""One scan of one endpoint.

Outline:
    list containers and images (a constant number of Engine API calls)
    → select (names, scope, labels) and settle what needs no registry: disabled,
      not running, unparseable, pinned by digest, built locally
    → one lookup per distinct reference, concurrently, one client per registry that
      knows all of that registry's repositories up front (so one token can cover them)
    → beside them, one tags list per distinct repository whose running tag is a version
      (engine/versions.py), unless versions are off
    → decide each container against its image's local digests; propose newer version tags
    → a Report, always: what the deadline cut short is an error entry, not a lost scan
"""
from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Callable, TypeVar

from .authn import ANONYMOUS_KEYCHAIN, Keychain
from .clock import Clock, Deadline, SystemClock
from .daemon import ContainerInfo, ContainerSource
from .decide import Lookup, decide, local_digests
from .digestcache import DigestCache
from .errors import DaemonError, InvalidReferenceError, RegistryError, RegistryTimeoutError, SpyglassError
from .mediatypes import is_index
from .name import Reference, parse_reference
from .registry import LayeredRegistry, RegistryClient, TagLimits, layered
from .report import ERROR, SKIPPED, ContainerResult, RegistrySummary, Report
from .selection import Selection, disabled_by_label
from .tokens import MemoryTokenCache, TokenCache
from .transport import HttpPools
from .versions import LEVELS, TagPolicy, Version, parse_version, policy_for, propose

log = logging.getLogger("spyglass.scan")
T = TypeVar("T")

# (phase, done, in all): phases in order are "connecting", "listing", "inspecting" (per-container
# daemon calls) and "registries" (distinct images looked up); done and in all are 0 where a phase
# has nothing to count.
Progress = Callable[[str, int, int], None]
PHASES = ("connecting", "listing", "inspecting", "registries")


@dataclass(frozen=True)
class ScanOptions:
    selection: Selection = field(default_factory=Selection)
    include_stopped: bool = False
    concurrency: int = 8
    timeout: float | None = None  # seconds for the whole scan, listing included
    versions: str = "major"  # the highest level of newer version tags reported; "off": no tags lists
    tag_limits: TagLimits = field(default_factory=TagLimits)

    def __post_init__(self) -> None:
        if self.versions not in LEVELS:
            raise ValueError(f"versions must be one of {', '.join(LEVELS)}")


@dataclass(frozen=True)
class _Pending:
    container: ContainerInfo
    reference: Reference


@dataclass(frozen=True)
class _TagsKey:
    """One tags list, shared by every container that runs a version tag of the repository."""

    registry: str
    repository: str


@dataclass(frozen=True)
class _VersionCheck:
    running: Version | None = None
    policy: TagPolicy | None = None
    error: str | None = None  # a label that cannot be used


def scan(source: ContainerSource, options: ScanOptions = ScanOptions(), *, pools: HttpPools | None = None,
         keychain: Keychain = ANONYMOUS_KEYCHAIN, token_cache: TokenCache | None = None,
         clock: Clock | None = None, progress: Progress | None = None,
         digest_cache: DigestCache | None = None) -> Report:
    """Scan source; raises DaemonError only when nothing could be listed.

    Every thread the scan starts has ended when it returns: its one executor is shut down with
    wait=True. Past the deadline that wait is bounded by the requests still out, each limited to
    what the deadline left when it was sent (and a credential helper's own 10 s limit).
    """
    clock = clock or SystemClock()
    owned = pools is None
    pools = pools or HttpPools(maxsize=options.concurrency)
    token_cache = token_cache or MemoryTokenCache(clock=clock)
    started = clock.now()
    deadline = Deadline(clock, options.timeout)
    # Handshakes get threads of their own beside the `concurrency` lookups (see _look_up).
    executor = ThreadPoolExecutor(max_workers=2 * max(1, options.concurrency), thread_name_prefix="spyglass-scan")
    try:
        # The trust store takes tens of ms of CPU to load: load it while the daemon answers.
        executor.submit(_quietly, pools.load_trust)
        collaborators = dict(pools=pools, keychain=keychain, token_cache=token_cache, clock=clock, deadline=deadline,
                             digest_cache=digest_cache)  # a tag another batch of the run looked up: no HEAD
        early = _EarlyPrimes(executor, options, collaborators)
        listing = source.list_containers(lambda c: _needs_registry(c, options), concurrency=options.concurrency,
                                         progress=progress, on_listed=early.start)
        settled, pending = _triage(listing.containers, options)
        log.info("listed %d containers on %s: %d to check against %d registries", len(listing.containers),
                 source.endpoint, len(pending), len({p.reference.registry.name for p in pending}),
                 extra={"endpoint": source.endpoint, "api_version": listing.api_version})
        if progress is not None:  # the handshakes come first: say so before the first lookup is done
            progress("registries", 0, len({_key(p.reference) for p in pending}))
        registries = _layers(pending, early.layers, **collaborators)
        checks = _version_checks(pending, options.versions)
        tags_keys = {_tags_key(p.reference) for p in pending if p.container.id in checks
                     and checks[p.container.id].running is not None}
        lookups, tags = _look_up(pending, registries, executor, options.concurrency, deadline, progress,
                                 early.primes, tags_keys, options.tag_limits)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        if owned:
            pools.close()
    results = settled + [_with_versions(decide(p.container, p.reference, lookups[_key(p.reference)]),
                                        checks.get(p.container.id), tags.get(_tags_key(p.reference)))
                         for p in pending]
    order = {c.id: i for i, c in enumerate(listing.containers)}
    results.sort(key=lambda r: order[r.id])
    summaries = tuple(RegistrySummary(name, dict(r.stats.requests), dict(r.stats.rate_limit))
                      for name, r in registries.items())
    report = Report.single(source.endpoint, started, clock.now(), tuple(results), summaries, listing.api_version)
    log.info("scan of %s done: %s", source.endpoint, report.summary,
             extra={"endpoint": source.endpoint, "summary": report.summary, "duration_ms": report.duration_ms})
    return report


def _triage(containers, options: ScanOptions) -> tuple[list[ContainerResult], list[_Pending]]:
    """Settle every container that needs no registry; return the rest with parsed references."""
    settled, pending = [], []
    for container in containers:
        if not options.selection.includes(container):
            continue
        outcome = _settle(container, options)
        if isinstance(outcome, ContainerResult):
            settled.append(outcome)
        else:
            pending.append(_Pending(container, outcome))
    return settled, pending


def _needs_registry(container: ContainerInfo, options: ScanOptions) -> bool:
    """Whether a container will be checked (the daemon's extra lookups are spent on those only)."""
    return (options.selection.includes(container) and not disabled_by_label(container)
            and (container.running or options.include_stopped))


def _settle(container: ContainerInfo, options: ScanOptions) -> ContainerResult | Reference:
    def skipped(reason: str, reference: Reference | None = None) -> ContainerResult:
        return ContainerResult(container.id, container.name, container.image, SKIPPED, reason,
                               reference=str(reference) if reference else None,
                               registry=reference.registry.name if reference else None,
                               local_digests=tuple(local_digests(container, reference)) if reference else ())

    if disabled_by_label(container):
        return skipped("disabled-by-label")
    if not container.running and not options.include_stopped:
        return skipped("not-running")
    if container.problem:
        log.warning("daemon lookup failed: %s", container.problem, extra={"container": container.name})
        return ContainerResult(container.id, container.name, container.image, ERROR, DaemonError.reason,
                               error=container.problem)
    try:
        if not container.image:
            raise InvalidReferenceError("parse reference: the daemon reports no image reference")
        reference = parse_reference(container.image)
    except InvalidReferenceError as exc:
        return ContainerResult(container.id, container.name, container.image, ERROR, exc.reason, error=str(exc))
    if reference.pinned:
        return skipped("pinned-digest", reference)
    if not local_digests(container, None):
        return skipped("no-repo-digest", reference)
    return reference


def _layers(pending: list[_Pending], early: dict[str, LayeredRegistry], **collaborators) -> dict[str, LayeredRegistry]:
    """One client per registry, knowing all of that registry's repositories up front (those primed
    early are kept: a repository they did not plan for costs a token of its own, nothing more)."""
    repositories: dict[str, set[str]] = {}
    registries = {}
    for item in pending:
        name = item.reference.registry.name
        registries[name] = item.reference.registry
        repositories.setdefault(name, set()).add(item.reference.repository)
    return {**early, **{name: layered(registries[name], repositories=repositories[name], **collaborators)
                        for name in registries if name not in early}}


class _EarlyPrimes:
    """Registry handshakes started from the two lists alone, while the daemon answers the
    per-container calls.

    After `docker pull` without a recreate, the containers the daemon lists by image ID are
    inspected before their configured references are known; their images' RepoDigests already
    name the repositories, so each registry's ping and token run beside those inspects rather
    than after them. In the clean state the lists are the whole listing, and this only starts the
    handshakes a moment sooner.
    """

    def __init__(self, executor: Executor, options: ScanOptions, collaborators: dict):
        self._executor = executor
        self._options = options
        self._collaborators = collaborators
        self.layers: dict[str, LayeredRegistry] = {}
        self.primes: dict[Future, str] = {}

    def start(self, listed: tuple[ContainerInfo, ...]) -> None:
        plan = _likely_lookups(listed, self._options)
        for name, (registry, repositories, references) in list(plan.items())[:self._options.concurrency]:
            layer = layered(registry, repositories=repositories, **self._collaborators)
            self.layers[name] = layer
            connections = min(self._options.concurrency, len(references))
            self.primes[self._executor.submit(layer.auth.prime, connections)] = name


def _likely_lookups(listed: tuple[ContainerInfo, ...], options: ScanOptions) -> dict[str, tuple]:
    """Per registry name: (registry, repositories, references) the listed containers will be
    looked up under, as far as the lists tell (a container listed by image ID by the repositories
    of its image's RepoDigests)."""
    plan: dict[str, tuple] = {}
    for container in listed:
        if not _needs_registry(container, options):
            continue
        if container.listed_by_id:
            texts = [digest.split("@", 1)[0] for digest in container.repo_digests]
        else:
            outcome = _settle(container, options)
            texts = [] if isinstance(outcome, ContainerResult) else [str(outcome)]
        for text in texts:
            try:
                reference = parse_reference(text)
            except InvalidReferenceError:
                continue
            _, repositories, references = plan.setdefault(reference.registry.name,
                                                          (reference.registry, set(), set()))
            repositories.add(reference.repository)
            references.add(text)
    return plan


def _key(reference: Reference) -> tuple[str, str, str]:
    return reference.registry.name, reference.repository, reference.manifest_identifier


def _tags_key(reference: Reference) -> _TagsKey:
    return _TagsKey(reference.registry.name, reference.repository)


def _version_checks(pending: list[_Pending], level: str) -> dict[str, _VersionCheck]:
    """Per container ID, for those whose tag is a version and whose policy is not off: what it
    runs and its policy, or the label that cannot be used. Empty when versions are off: then not
    a single tags list is asked for."""
    checks = {}
    if level == "off":
        return checks
    for item in pending:
        running = parse_version(item.reference.tag) if item.reference.tag else None
        if running is None:
            continue
        try:
            policy = policy_for(item.container.labels, level)
        except ValueError as exc:
            checks[item.container.id] = _VersionCheck(error=str(exc))
            continue
        if policy.level != "off":
            checks[item.container.id] = _VersionCheck(running, policy)
    return checks


def _with_versions(result: ContainerResult, check: _VersionCheck | None,
                   tags: list[str] | SpyglassError | None) -> ContainerResult:
    """result with its newer version tags, or why they are unknown; its status stays as decided."""
    if check is None:
        return result
    if check.error is not None:
        return replace(result, versions_error=check.error)
    if isinstance(tags, SpyglassError):
        return replace(result, versions_error=str(tags))
    return replace(result, newer=propose(check.running, tags or (), check.policy))


def _look_up(pending: list[_Pending], registries: dict[str, LayeredRegistry], executor: Executor,
             concurrency: int, deadline: Deadline, progress: Progress | None,
             primed: dict[Future, str], tags_keys: set[_TagsKey] = frozenset(),
             tag_limits: TagLimits = TagLimits()) -> tuple[dict[tuple, Lookup], dict[_TagsKey, list[str] | SpyglassError]]:
    """One lookup per distinct reference and one tags list per key of tags_keys, in parallel on
    executor; unfinished ones become timeouts.

    Each registry's handshake (prime: ping, tokens, connections) is a task, up to `concurrency`
    at once; once it is done, that registry's lookups are submitted, up to `concurrency` in flight
    in all. So no lookup slot waits on a handshake, and registries whose handshakes are short are
    being looked up while the others' are still under way.
    """
    wanted: dict[tuple, tuple[Reference, set[str]]] = {}
    for item in pending:
        _, digests = wanted.setdefault(_key(item.reference), (item.reference, set()))
        digests.update(local_digests(item.container, None))
    by_registry: dict[str, list[tuple]] = {}
    for key, (reference, _) in wanted.items():
        by_registry.setdefault(reference.registry.name, []).append(key)
    for tags_key in sorted(tags_keys, key=lambda k: (k.registry, k.repository)):
        by_registry[tags_key.registry].append(tags_key)
    # Primes already running (started from the lists) count only for registries with lookups.
    primes: dict[Future, str] = {future: name for future, name in primed.items() if name in by_registry}
    handshakes = deque(name for name in by_registry if name not in primes.values())  # primes still to start
    ready: deque[tuple] = deque()  # keys whose registry is primed, to be looked up
    lookups: dict[Future, tuple] = {}
    results: dict[tuple, Lookup] = {}
    tags: dict[_TagsKey, list[str] | SpyglassError] = {}
    while (handshakes or ready or primes or lookups) and not deadline.expired():
        while handshakes and len(primes) < concurrency:
            name = handshakes.popleft()
            connections = min(concurrency, len(by_registry[name]))
            primes[executor.submit(registries[name].auth.prime, connections)] = name
        while ready and len(lookups) < concurrency:
            key = ready.popleft()
            if isinstance(key, _TagsKey):
                lookups[executor.submit(_tags_one, registries[key.registry].client, key, tag_limits)] = key
                continue
            reference, digests = wanted[key]
            lookups[executor.submit(_lookup_one, registries[reference.registry.name].client, reference,
                                    digests)] = key
        done, _ = wait([*primes, *lookups], timeout=deadline.remaining(), return_when=FIRST_COMPLETED)
        for future in done:
            if future in primes:
                ready.extend(by_registry[primes.pop(future)])
            elif isinstance(lookups[future], _TagsKey):
                tags[lookups.pop(future)] = future.result()
            else:
                results[lookups.pop(future)] = future.result()
                if progress is not None:
                    progress("registries", len(results), len(wanted))
    for key, (ref, _) in wanted.items():
        results.setdefault(key, Lookup(error=RegistryTimeoutError(
            f"look up {ref}: scan deadline reached before the registry answered",
            registry=ref.registry.name, repository=ref.repository)))
    for key in tags_keys:
        tags.setdefault(key, RegistryTimeoutError(
            f"list tags {key.registry}/{key.repository}: scan deadline reached before the registry answered",
            registry=key.registry, repository=key.repository))
    return results, tags


def _tags_one(client: RegistryClient, key: _TagsKey, limits: TagLimits) -> list[str] | SpyglassError:
    try:
        return _contained(f"list tags {key.registry}/{key.repository}", key.registry, key.repository,
                          lambda: client.list_tags(key.repository, limits))
    except SpyglassError as exc:
        return exc


def _quietly(work: Callable[[], object]) -> None:
    """Background work whose failure costs only time: the foreground meets the error and reports it."""
    try:
        work()
    except Exception:  # noqa: BLE001
        log.debug("background %s failed", getattr(work, "__name__", "work"), exc_info=True)


def _lookup_one(client: RegistryClient, reference: Reference, local: set[str]) -> Lookup:
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