"""The benchmark's fleet: which images exist, which container runs which, and the right answers.

Images are numbered slots, the same in every fleet, so fleets of different
sizes share images and containers and a change of size rebuilds only what
differs. Slot k lives in a registry and repository chosen by k % 10:

    k % 10   registry  repository              share
    0 1 5    secure    pub/app<j % 5>           30 %  token auth, anonymous-readable
    2 7      secure    private/svc<j % 3>       20 %  alice's credentials needed
    9        secure    multi/app<j % 2>         10 %  the tag is a two-platform index
    3 6      open      open/app<j % 4>          20 %  TLS, anonymous
    4 8      plain     plain/app<j % 4>         20 %  plain http
    (j = k // 10; the tag is v<k>: a version tag, so each repository's tags are listed once a scan)

Slots 0..S-1 are stale: after the push their tag is moved, in the registry
only, to another image of the same repository. A stale slot is never an
index (its 9th-slot share becomes public).

Fleet (N, M, S): container i runs slot i when i < S (one container for each
stale image, so exactly S containers are stale), else slot S + (i - S) mod (M - S).
So N containers run M distinct images; S < M <= N.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from engine.versions import is_version_tag

CONTAINER_PREFIX = "sg-bench-"
SLOT_LABEL = "sg.bench.slot"

_LAYOUT = ("pub", "pub", "private", "open", "plain", "pub", "open", "private", "plain", "multi")
_REPOSITORIES = {  # kind -> (registry, repository pattern, how many repositories)
    "pub": ("secure", "pub/app{}", 5),
    "private": ("secure", "private/svc{}", 3),
    "multi": ("secure", "multi/app{}", 2),
    "open": ("open", "open/app{}", 4),
    "plain": ("plain", "plain/app{}", 4),
}


@dataclass(frozen=True)
class Slot:
    index: int
    kind: str  # pub | private | multi | open | plain
    registry: str  # secure | open | plain
    repository: str
    tag: str
    stale: bool

    @property
    def variant(self) -> str:
        return f"bench-{self.index}"


def slot(k: int, stale_count: int) -> Slot:
    kind = _LAYOUT[k % 10]
    stale = k < stale_count
    if stale and kind == "multi":
        kind = "pub"
    registry, pattern, count = _REPOSITORIES[kind]
    return Slot(k, kind, registry, pattern.format((k // 10) % count), f"v{k}", stale)


@dataclass(frozen=True)
class Fleet:
    containers: int  # N
    images: int  # M
    stale: int  # S

    def __post_init__(self):
        if not 0 <= self.stale < self.images <= self.containers:
            raise ValueError(f"a fleet needs 0 <= S < M <= N, not N={self.containers} M={self.images} "
                             f"S={self.stale}")

    @property
    def label(self) -> str:
        return f"N={self.containers} M={self.images} S={self.stale}"

    def slot_of(self, i: int) -> Slot:
        s = self.stale
        return slot(i if i < s else s + (i - s) % (self.images - s), s)

    def slots(self) -> list[Slot]:
        """The M distinct images this fleet runs."""
        return [slot(k, self.stale) for k in range(self.images)]

    def members(self) -> dict[str, Slot]:
        """Container name -> the slot it runs."""
        return {container_name(i): self.slot_of(i) for i in range(self.containers)}

    def truth(self) -> dict[str, str]:
        """Container name -> the status a correct scan reports."""
        return {name: "stale" if s.stale else "fresh" for name, s in self.members().items()}

    def expected_requests(self) -> dict[str, dict[str, int]]:
        """Per registry: one ping, a token where the registry wants one, a HEAD per image, a GET per
        index, and one tags list (one page: a few tags each) per repository whose tag is a version."""
        expected: dict[str, dict[str, int]] = {}
        versioned: dict[str, set[str]] = {}
        for s in self.slots():
            counts = expected.setdefault(s.registry, {"ping": 1, "token": int(s.registry == "secure"),
                                                      "head": 0, "get": 0, "tags": 0})
            counts["head"] += 1
            counts["get"] += int(s.kind == "multi")
            if is_version_tag(s.tag):
                versioned.setdefault(s.registry, set()).add(s.repository)
        for registry, repositories in versioned.items():
            expected[registry]["tags"] = len(repositories)
        return expected

    def tags_lists_per_registry(self) -> Counter:
        return Counter({name: counts["tags"] for name, counts in self.expected_requests().items()})

    def images_per_registry(self) -> Counter:
        return Counter(s.registry for s in self.slots())


def container_name(i: int) -> str:
    return f"{CONTAINER_PREFIX}{i:04d}"


def universe(fleets: list[Fleet]) -> list[Slot]:
    """Every slot any of the fleets runs (the stale count must agree, it decides which slots move)."""
    stale = {f.stale for f in fleets}
    if len(stale) != 1:
        raise ValueError(f"all fleets of one run share S; got {sorted(stale)}")
    top, (count,) = max(f.images for f in fleets), stale
    return [slot(k, count) for k in range(top)]


def rebuild_plan(current: dict[str, int], target: dict[str, int]) -> tuple[list[str], list[str]]:
    """(names to remove, names to create) to turn {name: slot index} into the target."""
    remove = sorted(name for name, k in current.items() if target.get(name) != k)
    create = sorted(name for name, k in target.items() if current.get(name) != k)
    return remove, create
