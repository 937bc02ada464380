"""One run over a fleet of Docker endpoints, the registry work shared by all of them.

Outline:
    list every endpoint side by side (endpoint_concurrency at once), each with its own selection
    → as each listing arrives: select (names, scope, labels) and settle what needs no registry:
      disabled, not running, unparseable, pinned by digest, built locally
    → its references join the run's: one lookup per distinct registry + repository + tag across
      the fleet, one tags list per distinct repository whose running tag is a version (unless
      versions are off), one client per registry (engine/fleet.py), pinged as soon as a listing
      names it; once every listing is in, one token per credential, then the lookups
    → decide each endpoint's containers against their images' local digests; propose newer tags
    → a Report, always: an endpoint that could not be listed is an entry with its reason (the
      others complete), and what the one deadline cut short is an error entry, not a lost run
"""
from __future__ import annotations

import logging
import statistics
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Sequence

from .authn import ANONYMOUS_KEYCHAIN, Keychain
from .clock import Clock, Deadline, SystemClock
from .daemon import ContainerInfo, ContainerSource, Listing
from .decide import decide, local_digests
from .errors import DaemonError, InvalidReferenceError
from .fleet import Lookups, RegistryHub, TagsKey, reference_key, tags_key
from .name import Reference, parse_reference
from .registry import TagLimits
from .report import (ENDPOINT_ERROR, ERROR, SKIPPED, UNREACHABLE, ContainerResult, EndpointResult, RegistrySummary,
                     Report)
from .selection import Selection, disabled_by_label
from .tokens import MemoryTokenCache, TokenCache
from .transport import HttpPools
from .versions import LEVELS, Newer, ParsedTags, TagPolicy, Version, parse_version, policy_for, propose

log = logging.getLogger("spyglass.scan")

# (phase, done, in all). A fleet of one reports its daemon's phases, "connecting", "listing" and
# "inspecting" (per-container daemon calls); a larger fleet "endpoints" (listed or failed of all)
# and "unreachable" (endpoints not listed so far, of all). Both then report "registries"
# (distinct images looked up of those known so far); done and in all are 0 where there is
# nothing to count. Called from the scan's threads, one call at a time per thread.
Progress = Callable[[str, int, int], None]
PHASES = ("connecting", "listing", "inspecting", "endpoints", "unreachable", "registries")
STRAGGLER_FACTOR, STRAGGLER_MIN_S = 2.0, 1.0  # see _Stragglers


@dataclass(frozen=True)
class ScanOptions:
    selection: Selection = field(default_factory=Selection)
    include_stopped: bool = False
    concurrency: int = 8  # registry requests in flight, and each endpoint's per-container daemon calls
    timeout: float | None = None  # seconds for the whole run, listings included
    versions: str = "major"  # the highest level of newer version tags reported; "off": no tags lists
    tag_limits: TagLimits = field(default_factory=TagLimits)
    endpoint_concurrency: int = 16  # endpoints listed at once

    def __post_init__(self) -> None:
        if self.versions not in LEVELS:
            raise ValueError(f"versions must be one of {', '.join(LEVELS)}")


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of a run: where its containers come from, its display name, and its own
    selection where it differs from the run's (None: the run's)."""

    source: ContainerSource
    name: str = ""
    selection: Selection | None = None
    include_stopped: bool | None = None

    def options(self, run: ScanOptions) -> ScanOptions:
        changes = {key: value for key, value in (("selection", self.selection),
                                                 ("include_stopped", self.include_stopped)) if value is not None}
        return replace(run, **changes) if changes else run


@dataclass(frozen=True)
class _Pending:
    container: ContainerInfo
    reference: Reference


@dataclass(frozen=True)
class _VersionCheck:
    running: Version | None = None
    policy: TagPolicy | None = None
    error: str | None = None  # a label that cannot be used


@dataclass
class _Listed:
    """One endpoint's listing, triaged: what was settled, what waits for the registries."""

    listing: Listing
    settled: list[ContainerResult]
    pending: list[_Pending]
    checks: dict[str, _VersionCheck]

    def versioned(self, item: _Pending) -> bool:
        """Whether the container's repository's tags are wanted (it runs a version, its policy is on)."""
        check = self.checks.get(item.container.id)
        return check is not None and check.running is not None


def scan(source: ContainerSource, options: ScanOptions = ScanOptions(), **collaborators) -> Report:
    """A fleet of one: scan_fleet with this source alone."""
    return scan_fleet((Endpoint(source),), options, **collaborators)


def scan_fleet(endpoints: Sequence[Endpoint], options: ScanOptions = ScanOptions(), *, name: str = "",
               pools: HttpPools | None = None, keychain: Keychain = ANONYMOUS_KEYCHAIN,
               token_cache: TokenCache | None = None, clock: Clock | None = None,
               progress: Progress | None = None, digest_cache=None) -> Report:
    """Scan every endpoint, sharing the registry work; never raises for an endpoint that fails.

    ``name`` names the run (default: the only endpoint's display name, or "fleet").
    ``digest_cache`` is handed to every registry client (engine.registry.layered) when given.
    Every thread the run starts has ended when it returns: the listing and registry executors
    are shut down with wait=True. Past the deadline that wait is bounded by the requests still
    out, each limited to what the deadline left when it was sent, and by each daemon's timeout.
    """
    clock = clock or SystemClock()
    owned = pools is None
    pools = pools or HttpPools(maxsize=options.concurrency)
    token_cache = token_cache or MemoryTokenCache(clock=clock)
    started = clock.now()
    deadline = Deadline(clock, options.timeout)
    # Handshakes get threads of their own beside the `concurrency` lookups.
    executor = ThreadPoolExecutor(max_workers=2 * max(1, options.concurrency), thread_name_prefix="spyglass-scan")
    listers = ThreadPoolExecutor(max_workers=max(1, min(options.endpoint_concurrency, len(endpoints))),
                                 thread_name_prefix="spyglass-list")
    try:
        # The trust store takes tens of ms of CPU to load: load it while the daemons answer.
        executor.submit(_quietly, pools.load_trust)
        collaborators = dict(pools=pools, keychain=keychain, token_cache=token_cache, clock=clock, deadline=deadline)
        if digest_cache is not None:
            collaborators["digest_cache"] = digest_cache
        hub = RegistryHub(executor, options.concurrency, collaborators)
        lookups = Lookups(hub, executor, options.concurrency, options.tag_limits)
        listed = _run(endpoints, options, hub, lookups, listers, deadline, progress, clock)
    finally:
        listers.shutdown(wait=True, cancel_futures=True)
        executor.shutdown(wait=True, cancel_futures=True)
        if owned:
            pools.close()
    proposals = _Proposals(lookups)
    results = tuple(_endpoint_result(endpoint, listed[i], lookups, proposals) for i, endpoint in enumerate(endpoints))
    summaries = tuple(RegistrySummary(registry, dict(layer.stats.requests), dict(layer.stats.rate_limit))
                      for registry, layer in hub.layers().items())
    default = results[0].display_name if len(results) == 1 else "fleet"
    report = Report(name or default, started, clock.now(), results, summaries)
    log.info("run %s done: %s", report.name, report.summary,
             extra={"fleet": report.name, "fleet_summary": report.summary, "duration_ms": report.duration_ms})
    return report


def _run(endpoints: Sequence[Endpoint], options: ScanOptions, hub: RegistryHub, lookups: Lookups,
         listers: ThreadPoolExecutor, deadline: Deadline, progress: Progress | None, clock: Clock) -> list:
    """Every endpoint's _Listed or the DaemonError that stood for it (None: the deadline came first).

    The listings and the lookups share one wait: each listing, when it arrives, adds its
    references to the lookups; once the listings are in (or only stragglers are left, see
    _Stragglers), the registries fetch their tokens and the lookups go.
    """
    single = len(endpoints) == 1
    tell = progress or _silent
    stragglers = _Stragglers(clock)
    running = {listers.submit(_list, endpoint, options, hub, progress if single else None, stragglers.started(i)): i
               for i, endpoint in enumerate(endpoints)}
    listed: list = [None] * len(endpoints)
    failed = 0
    if not single:
        tell("endpoints", 0, len(endpoints))
    while (running or lookups.busy) and not deadline.expired():
        only_stragglers, recheck = stragglers.only(running.values())
        if only_stragglers:
            hub.open()  # the tokens now cover every repository the endpoints named
        lookups.submit_ready()
        left = deadline.remaining()
        timeout = left if recheck is None else recheck if left is None else min(left, recheck)
        done, _ = wait([*running, *lookups.waits()], timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            if future in running:
                i = running.pop(future)
                stragglers.finished(i)
                listed[i] = outcome = future.result()
                if isinstance(outcome, _Listed):
                    lookups.add(outcome.pending, outcome.versioned)
                    tell("registries", lookups.checked, lookups.wanted)
                else:
                    failed += 1
                if not single:
                    tell("endpoints", len(endpoints) - len(running), len(endpoints))
                    tell("unreachable", failed, len(endpoints))
            elif lookups.finished(future):
                tell("registries", lookups.checked, lookups.wanted)
    _late(running, listed, lookups)
    return listed


def _late(running: dict, listed: list, lookups: Lookups) -> None:
    """Past the deadline: a listing not started is dropped (its endpoint a timeout); one under way is
    waited for, as the executor's shutdown would wait for it anyway (each daemon call has its own
    limit), and reported with its containers, their lookups timeouts."""
    under_way = [(future, i) for future, i in running.items() if not future.cancel()]  # cancel first, all
    for future, i in under_way:
        listed[i] = outcome = future.result()
        if isinstance(outcome, _Listed):
            lookups.add(outcome.pending, outcome.versioned, late=True)


class _Stragglers:
    """When the registries stop waiting for listings: every listing is in, or each one still out has
    taken more than STRAGGLER_FACTOR times the median finished listing (at least STRAGGLER_MIN_S),
    so one hung endpoint costs the others nothing but that wait."""

    def __init__(self, clock: Clock):
        self._clock = clock
        self._started: dict[int, float] = {}
        self._durations: list[float] = []

    def started(self, index: int) -> Callable[[], None]:
        """What the listing thread calls as it starts (a queued listing has not started)."""
        return lambda: self._started.__setitem__(index, self._clock.monotonic())

    def finished(self, index: int) -> None:
        if index in self._started:
            self._durations.append(self._clock.monotonic() - self._started[index])

    def only(self, running: Iterable[int]) -> tuple[bool, float | None]:
        """(only stragglers are out, seconds until that is worth asking again or None)."""
        running = list(running)
        if not running:
            return True, None
        if not self._durations:
            return False, None
        grace = max(STRAGGLER_MIN_S, STRAGGLER_FACTOR * statistics.median(self._durations))
        now = self._clock.monotonic()
        left = [self._started[i] + grace - now if i in self._started else None for i in running]
        if any(wait_s is None for wait_s in left):
            return False, None  # one has not even started: it is no straggler
        later = [wait_s for wait_s in left if wait_s > 0]
        return (not later), (min(later) if later else None)


def _list(endpoint: Endpoint, run: ScanOptions, hub: RegistryHub, progress: Progress | None,
          on_start: Callable[[], None]) -> _Listed | DaemonError:
    """One endpoint's listing, triaged; its registries pinged from its two lists before its inspects."""
    on_start()
    options = endpoint.options(run)
    source = endpoint.source

    def on_listed(containers: tuple[ContainerInfo, ...]) -> None:
        for registry, repositories, references in _likely_lookups(containers, options).values():
            hub.start(registry, repositories, len(references))

    try:
        listing = source.list_containers(lambda c: _needs_registry(c, options), concurrency=run.concurrency,
                                         progress=progress, on_listed=on_listed)
    except DaemonError as exc:
        log.warning("endpoint %s not listed: %s", source.endpoint, exc,
                    extra={"endpoint": source.endpoint, "reason": exc.reason})
        return exc
    except Exception as exc:  # noqa: BLE001 - a bug in one source costs that endpoint, not the run
        log.exception("unexpected failure listing %s", source.endpoint)
        return DaemonError(f"list {source.endpoint}: unexpected {type(exc).__name__}")
    settled, pending = _triage(listing.containers, options)
    log.info("listed %d containers on %s: %d to check against %d registries", len(listing.containers),
             source.endpoint, len(pending), len({p.reference.registry.name for p in pending}),
             extra={"endpoint": source.endpoint, "api_version": listing.api_version,
                    "image_store": listing.image_store})
    return _Listed(listing, settled, pending, _version_checks(pending, options.versions))


def _endpoint_result(endpoint: Endpoint, listed, lookups: Lookups, proposals: _Proposals) -> EndpointResult:
    address = endpoint.source.endpoint
    if listed is None:
        return EndpointResult(address, name=endpoint.name, failure=UNREACHABLE, reason="timeout",
                              error=f"list containers on {address}: the scan's deadline came first")
    if isinstance(listed, DaemonError):
        return EndpointResult(address, name=endpoint.name, failure=UNREACHABLE if listed.unreachable else ENDPOINT_ERROR,
                              reason=listed.reason, error=str(listed))
    results = listed.settled + [
        _with_versions(decide(p.container, p.reference, lookups.result(reference_key(p.reference))),
                       listed.checks.get(p.container.id), tags_key(p.reference), proposals)
        for p in listed.pending]
    order = {c.id: i for i, c in enumerate(listed.listing.containers)}
    results.sort(key=lambda r: order[r.id])
    result = EndpointResult(address, tuple(results), name=endpoint.name, api_version=listed.listing.api_version)
    log.info("scan of %s done: %s", address, result.summary, extra={"endpoint": address, "summary": result.summary})
    return result


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


def _likely_lookups(listed: tuple[ContainerInfo, ...], options: ScanOptions) -> dict[str, tuple]:
    """Per registry name: (registry, repositories, references) the listed containers will be
    looked up under, as far as the two lists tell (a container listed by image ID by the
    repositories of its image's RepoDigests). After `docker pull` without a recreate, the daemon
    inspects those containers before their configured references are known; priming from the
    lists runs each registry's ping and token beside those inspects rather than after them."""
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


def _with_versions(result: ContainerResult, check: _VersionCheck | None, key: TagsKey,
                   proposals: _Proposals) -> ContainerResult:
    """result with its newer version tags, or why they are unknown; its status stays as decided."""
    if check is None:
        return result
    if check.error is not None:
        return replace(result, versions_error=check.error)
    newer = proposals.newer(key, check.running, check.policy)
    if isinstance(newer, Exception):
        return replace(result, versions_error=str(newer))
    return replace(result, newer=newer)


class _Proposals:
    """The newer tags of each (tags list, running tag, policy), worked out once per run: across
    a fleet, every container of a repository at one tag gets the same answer from the same list."""

    def __init__(self, lookups: Lookups):
        self._lookups = lookups
        self._parsed: dict[TagsKey, ParsedTags | Exception] = {}
        self._newer: dict[tuple, Newer] = {}

    def newer(self, key: TagsKey, running: Version, policy: TagPolicy) -> Newer | Exception:
        parsed = self._parsed.get(key)
        if parsed is None:
            tags = self._lookups.tags_of(key)
            parsed = self._parsed[key] = tags if isinstance(tags, Exception) else ParsedTags(tags or ())
        if isinstance(parsed, Exception):
            return parsed
        memo = (key, running.tag, policy)
        if memo not in self._newer:
            self._newer[memo] = propose(running, parsed, policy)
        return self._newer[memo]


def _quietly(work: Callable[[], object]) -> None:
    """Background work whose failure costs only time: the foreground meets the error and reports it."""
    try:
        work()
    except Exception:  # noqa: BLE001
        log.debug("background %s failed", getattr(work, "__name__", "work"), exc_info=True)


def _silent(phase: str, done: int, total: int) -> None:
    """No progress wanted."""


__all__ = ["Endpoint", "PHASES", "Progress", "ScanOptions", "TagsKey", "scan", "scan_fleet"]
