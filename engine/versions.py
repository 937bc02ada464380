"""Version tags: which tags are versions, how they order, and which newer ones to propose.

A version tag is an optional ``v``, one to four numeric components, an optional suffix after
``-`` and optional build metadata after ``+`` (ignored for ordering): ``1``, ``1.25``,
``v1.25.3``, ``1.25.3-alpine3.20``, ``2024.04.1``, ``1.2.3.4``. The suffix splits into a
pre-release (``rc1``, ``beta.2``, ``alpha``, ``dev``) and a family (``alpine3.20``), in either
order (``1.2.0-rc1-alpine`` and ``1.2.0-alpine-rc1`` are both the rc1 of the alpine family).

Not versions, so no tags list is asked for them: words (``latest``, ``stable``, ``edge``,
``main``), commit hashes (``3f2a1b9``, ``sha-3f2a1b9``) and date stamps (``20240101``): a
first component of six digits or more is a stamp, not a major version.

Candidates keep the running tag's shape: the same prefix, the same number of components, the
same family exactly, and the same scheme: a four-digit first component is a year (calendar
versioning, ``2024.04.1``), and a calendar tag is never proposed for a semantic one or the other
way round (``2025.01.0`` is not a new major of ``1.25.3``). Components compare as numbers (``1.10`` > ``1.9``, ``04`` = ``4``); a
release orders after its pre-releases; two tags equal in all that (``1.02`` and ``1.2``) order by
their text, so the order is total.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

LEVELS = ("off", "patch", "minor", "major")  # each reports the levels up to itself
MAX_TAG_CHARS = 128  # the distribution spec's limit on a tag; longer strings are never matched
MAX_PATTERN_CHARS = 256  # a label's regular expression

_VERSION = re.compile(r"(?P<prefix>v?)(?P<numbers>[0-9]+(?:\.[0-9]+){0,3})"
                      r"(?:-(?P<suffix>[0-9A-Za-z_][0-9A-Za-z_.-]*))?(?:\+(?P<build>[0-9A-Za-z_.-]+))?")
_PRE_RELEASE = re.compile(r"(?P<kind>dev|alpha|a|beta|b|pre|preview|rc)[.]?(?P<number>[0-9]+(?:\.[0-9]+)*)?",
                          re.IGNORECASE)
_PRE_RANK = {"dev": 0, "alpha": 1, "a": 1, "beta": 2, "b": 2, "pre": 3, "preview": 3, "rc": 4}
_STAMP_DIGITS = 6
_YEAR_DIGITS = 4


@dataclass(frozen=True)
class Version:
    tag: str
    prefix: str
    numbers: tuple[int, ...]
    family: str
    pre_release: tuple[int, ...] | None  # (rank, *numbers); None for a release

    calendar: bool = False  # the first component is a year

    @property
    def shape(self) -> tuple[str, int, str, bool]:
        return self.prefix, len(self.numbers), self.family, self.calendar

    @property
    def key(self) -> tuple:
        """The ordering: numbers, then pre-releases before the release, then the text."""
        pre = (0, *self.pre_release) if self.pre_release is not None else (1,)
        return self.numbers, pre, self.tag


def parse_version(tag: str) -> Version | None:
    """The version a tag names, or None when it is not a version tag."""
    if len(tag) > MAX_TAG_CHARS:
        return None
    match = _VERSION.fullmatch(tag)
    if not match:
        return None
    texts = match["numbers"].split(".")
    if len(texts[0]) >= _STAMP_DIGITS:
        return None
    family, pre_release = [], None
    for part in (match["suffix"] or "").split("-"):
        pre = _PRE_RELEASE.fullmatch(part) if pre_release is None else None
        if pre:
            numbers = (pre["number"] or "").split(".") if pre["number"] else []
            pre_release = (_PRE_RANK[pre["kind"].lower()], *map(int, numbers))
        elif part:
            family.append(part)
    return Version(tag, match["prefix"], tuple(map(int, texts)), "-".join(family), pre_release,
                   calendar=len(texts[0]) == _YEAR_DIGITS)


def is_version_tag(tag: str) -> bool:
    return parse_version(tag) is not None


@dataclass(frozen=True)
class Newer:
    """The newest tag at each level, when newer than the running one (None: nothing newer)."""

    patch: str | None = None
    minor: str | None = None
    major: str | None = None

    @property
    def any(self) -> bool:
        return bool(self.patch or self.minor or self.major)

    @property
    def highest(self) -> tuple[str, str] | None:
        """(tag, level) of the largest step proposed, e.g. ("1.27.2", "minor")."""
        for level in ("major", "minor", "patch"):
            if getattr(self, level):
                return getattr(self, level), level
        return None

    def to_dict(self) -> dict:
        return {"patch": self.patch, "minor": self.minor, "major": self.major}


@dataclass(frozen=True)
class TagPolicy:
    """What one container asks for: the highest level reported and the tag filters (compiled)."""

    level: str = "major"
    include: re.Pattern | None = None
    exclude: re.Pattern | None = None

    def allows(self, tag: str) -> bool:
        if self.include is not None and not self.include.search(tag):
            return False
        return self.exclude is None or not self.exclude.search(tag)


def compile_filter(pattern: str) -> re.Pattern:
    """A label's regular expression; ValueError says why it cannot be used."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"longer than {MAX_PATTERN_CHARS} characters")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None


VERSIONS_LABEL = "spyglass.versions"
INCLUDE_LABEL = "spyglass.tag.include"
EXCLUDE_LABEL = "spyglass.tag.exclude"


def policy_for(labels: dict[str, str], level: str) -> TagPolicy:
    """One container's policy: the run-wide level, which its labels refine (the level label
    replaces it, except that a run with versions off asks for nothing at all); ValueError names
    the label that cannot be used and why."""
    if level != "off" and VERSIONS_LABEL in labels:
        level = labels[VERSIONS_LABEL].strip().lower()
        if level not in LEVELS:
            raise ValueError(f"label {VERSIONS_LABEL}: {labels[VERSIONS_LABEL][:40]!r} is not one of {', '.join(LEVELS)}")
    filters = {}
    for name, label in (("include", INCLUDE_LABEL), ("exclude", EXCLUDE_LABEL)):
        if level != "off" and labels.get(label):
            try:
                filters[name] = compile_filter(labels[label])
            except ValueError as exc:
                raise ValueError(f"label {label}: {exc}") from None
    return TagPolicy(level, **filters)


class ParsedTags:
    """A tags list's version tags, parsed once and grouped by shape: a fleet proposes from one
    list for every container of the repository, and parsing is most of what proposing costs."""

    def __init__(self, tags: Iterable[str]):
        self._by_shape: dict[tuple, list[Version]] = {}
        for tag in tags:
            version = parse_version(tag)
            if version is not None:
                self._by_shape.setdefault(version.shape, []).append(version)

    def of_shape(self, shape: tuple) -> list[Version]:
        return self._by_shape.get(shape, [])


def propose(running: Version, tags: Iterable[str] | ParsedTags, policy: TagPolicy = TagPolicy()) -> Newer:
    """The newest tag of the running one's shape at each level the policy reports.

    patch: same major.minor (the components after the second change); minor: same major, a higher
    minor; major: a higher major. A one-component tag has only a major level, a two-component tag
    no patch level. Pre-releases are candidates only when the running tag is itself a pre-release
    with the same numbers (1.2.0-rc1 is offered 1.2.0-rc2 and 1.2.0, never 1.3.0-rc1).
    """
    reported = LEVELS.index(policy.level)
    newest: dict[str, Version] = {}
    parsed = tags if isinstance(tags, ParsedTags) else ParsedTags(tags)
    for candidate in parsed.of_shape(running.shape):
        tag = candidate.tag
        if candidate.key <= running.key:
            continue
        if candidate.pre_release is not None and (running.pre_release is None
                                                  or candidate.numbers != running.numbers):
            continue
        level = _level(running.numbers, candidate.numbers)
        if LEVELS.index(level) > reported or not policy.allows(tag):
            continue
        if level not in newest or candidate.key > newest[level].key:
            newest[level] = candidate
    return Newer(**{level: version.tag for level, version in newest.items()})


def _level(running: tuple[int, ...], candidate: tuple[int, ...]) -> str:
    """The level of the first component that differs (a pre-release step: the shape's finest)."""
    first = next((i for i, (a, b) in enumerate(zip(running, candidate)) if a != b), len(running) - 1)
    return ("major", "minor")[first] if first < 2 else "patch"
