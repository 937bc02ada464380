"""The result of one run over a fleet of endpoints as a versioned document, and its three renderings.

    Report          the run: name, times, the registries' shared request counts, the endpoints;
                    a single endpoint is a fleet of one (Report.single), same shape
    EndpointResult  one endpoint: its containers, or why it could not be listed (unreachable, error)
    ContainerResult one container's verdict (stale, fresh, skipped, error) and newer versions

The JSON form is the contract (schema_version 2): report.schema.json, shipped beside this
module and loaded by `schema()`, describes it; docs/report-schema.md says what changed from 1.
Text is for a terminal or an email, markdown for a GitHub step summary: both open with the
fleet summary, then the fleet view (each stale or outdated image with the hosts and containers
that run it, then the endpoints not listed), then each endpoint's table; a fleet of one skips
the fleet view and reads as before. Every string that came from a daemon or a registry is made
inert for the format it lands in (engine/text.py).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import resources
from typing import Iterable

from .errors import ReportDocumentError
from .text import markdown, one_line
from .versions import Newer

SCHEMA_VERSION = 2
SCHEMA_FILE = "report.schema.json"

STALE, FRESH, SKIPPED, ERROR = "stale", "fresh", "skipped", "error"
STATUS_ORDER = {STALE: 0, ERROR: 1, FRESH: 2, SKIPPED: 3}
HOSTS_SHOWN = 10  # hosts named per image in the fleet view, then "… and N more"
# Why an endpoint has no containers in the report: it could not be reached, or failed otherwise.
UNREACHABLE, ENDPOINT_ERROR = "unreachable", "error"


ACTIONS = ("updated", "rolled-back", "skipped", "failed", "planned")  # what `spyglass update` did (issue 13)


@dataclass(frozen=True)
class Action:
    """What an update run did to one container; absent from scans."""

    action: str  # one of ACTIONS
    reason: str | None = None
    error: str | None = None
    old_digest: str | None = None
    new_digest: str | None = None
    duration_ms: int | None = None

    def to_dict(self) -> dict:
        return {"action": self.action, "reason": self.reason, "error": self.error, "old_digest": self.old_digest,
                "new_digest": self.new_digest, "duration_ms": self.duration_ms}

    def text(self) -> str:
        """"updated in 3.2 s", "rolled-back: unhealthy"."""
        why = ": ".join(x for x in (self.reason, self.error) if x)
        took = f" in {self.duration_ms / 1000:.1f} s" if self.duration_ms is not None else ""
        return f"{self.action}{took}" + (f": {why}" if why else "")


@dataclass(frozen=True)
class ContainerResult:
    id: str
    name: str
    image: str
    status: str
    reason: str | None = None
    reference: str | None = None
    registry: str | None = None
    local_digests: tuple[str, ...] = ()
    remote_digest: str | None = None
    error: str | None = None
    newer: Newer | None = None  # None: versions not checked (not a version tag, off, or failed)
    versions_error: str | None = None  # why the version check failed; the status does not depend on it
    action: Action | None = None  # update runs only

    @property
    def outdated(self) -> bool:
        return self.newer is not None and self.newer.any

    def to_dict(self) -> dict:
        return {
            "id": self.id, "name": self.name, "image": self.image, "reference": self.reference,
            "status": self.status, "reason": self.reason, "local_digests": list(self.local_digests),
            "remote_digest": self.remote_digest, "registry": self.registry, "error": self.error,
            "newer": self.newer.to_dict() if self.newer else None, "versions_error": self.versions_error,
        } | ({"action": self.action.to_dict()} if self.action else {})


@dataclass(frozen=True)
class RegistrySummary:
    name: str
    requests: dict[str, int]
    rate_limit: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "requests": dict(self.requests), "rate_limit": dict(self.rate_limit)}


def _counts(containers) -> dict[str, int]:
    counts = {STALE: 0, FRESH: 0, SKIPPED: 0, ERROR: 0}
    for container in containers:
        counts[container.status] += 1
    return {"scanned": len(containers), "stale": counts[STALE], "fresh": counts[FRESH],
            "skipped": counts[SKIPPED], "errors": counts[ERROR],
            "outdated": sum(container.outdated for container in containers)}


def _verdict(summary: dict[str, int]) -> str:
    """ok, stale or errors: what a subscriber filters on (errors win, they hide staleness)."""
    return "errors" if summary["errors"] else "stale" if summary["stale"] else "ok"


@dataclass(frozen=True)
class EndpointResult:
    """One Docker endpoint of a fleet: its containers, or why it could not be listed.

    ``failure`` is None for an endpoint that was listed, else UNREACHABLE (connection, TLS
    handshake, timeout) or ENDPOINT_ERROR (anything else), with ``reason`` a short slug and
    ``error`` a one-line message without secrets.
    """

    endpoint: str
    containers: tuple[ContainerResult, ...] = ()
    name: str = ""  # the display name; "" shows the address
    api_version: str | None = None
    failure: str | None = None
    reason: str | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if self.failure not in (None, UNREACHABLE, ENDPOINT_ERROR):
            raise ValueError(f"an endpoint's failure is {UNREACHABLE} or {ENDPOINT_ERROR}")

    @property
    def display_name(self) -> str:
        return self.name or self.endpoint

    @property
    def listed(self) -> bool:
        return self.failure is None

    @property
    def summary(self) -> dict[str, int]:
        return _counts(self.containers)

    @property
    def status(self) -> str:
        return self.failure or _verdict(self.summary)

    def ordered(self) -> list[ContainerResult]:
        return sorted(self.containers, key=lambda c: (STATUS_ORDER[c.status], c.name))

    def to_dict(self) -> dict:
        return {"endpoint": self.endpoint, "name": self.display_name, "status": self.status,
                "reason": self.reason, "error": self.error, "api_version": self.api_version,
                "summary": self.summary, "containers": [c.to_dict() for c in self.ordered()]}


@dataclass(frozen=True)
class Report:
    """One run over a fleet of endpoints (a single endpoint is a fleet of one), sharing registries."""

    name: str
    started_at: float
    finished_at: float
    endpoints: tuple[EndpointResult, ...]
    registries: tuple[RegistrySummary, ...] = ()

    @classmethod
    def single(cls, endpoint: str, started_at: float, finished_at: float,
               containers: tuple[ContainerResult, ...] = (), registries: tuple[RegistrySummary, ...] = (),
               api_version: str | None = None, *, name: str = "") -> Report:
        """A fleet of one listed endpoint."""
        result = EndpointResult(endpoint, tuple(containers), name=name, api_version=api_version)
        return cls(result.display_name, started_at, finished_at, (result,), tuple(registries))

    @property
    def containers(self) -> tuple[ContainerResult, ...]:
        """Every endpoint's containers, endpoint after endpoint."""
        return tuple(c for endpoint in self.endpoints for c in endpoint.containers)

    def placed(self) -> list[tuple[EndpointResult, ContainerResult]]:
        """(endpoint, container) for every container, each endpoint's in report order."""
        return [(endpoint, c) for endpoint in self.endpoints for c in endpoint.ordered()]

    def keeping(self, shown: Iterable[ContainerResult]) -> Report:
        """The same run with only these containers (a message with room for some of them)."""
        kept = {id(c) for c in shown}
        return replace(self, endpoints=tuple(replace(e, containers=tuple(c for c in e.containers if id(c) in kept))
                                             for e in self.endpoints))

    @property
    def unlisted(self) -> tuple[EndpointResult, ...]:
        """The endpoints that could not be listed (unreachable or error)."""
        return tuple(endpoint for endpoint in self.endpoints if not endpoint.listed)

    @property
    def listed_any(self) -> bool:
        """Whether at least one endpoint was listed (none: the run could not scan at all, exit 3)."""
        return any(endpoint.listed for endpoint in self.endpoints)

    @property
    def summary(self) -> dict[str, int]:
        return {"endpoints": len(self.endpoints), "unreachable": len(self.unlisted), **_counts(self.containers)}

    @property
    def status(self) -> str:
        """errors when a container errored or an endpoint was not listed, else stale or ok."""
        return "errors" if self.unlisted else _verdict(self.summary)

    @property
    def duration_ms(self) -> int:
        return max(0, round((self.finished_at - self.started_at) * 1000))

    def ordered(self) -> list[ContainerResult]:
        """Every container by status, then name (for a fleet of one, its table order)."""
        return sorted(self.containers, key=lambda c: (STATUS_ORDER[c.status], c.name))

    @classmethod
    def from_dict(cls, document) -> Report:
        """The report whose to_dict() is document (schema_version 2), as a stored report or a message
        carries it; other top-level fields (the fleet aggregation's ``run``) are left out.

        Counts, statuses and the order of containers are derived again, not read: a document whose
        counts disagree with its containers comes back with the counts its containers give.
        ReportDocumentError names the first field that does not fit the shape."""
        if not isinstance(document, dict):
            raise ReportDocumentError("report document: expected a JSON object")
        if document.get("schema_version") != SCHEMA_VERSION:
            raise ReportDocumentError(f"report document: schema_version {document.get('schema_version')!r}, "
                                      f"expected {SCHEMA_VERSION}")
        started, finished = _read_times(document)
        return cls(_read(document, "name", "", str), started, finished,
                   tuple(_read_endpoint(e, f"endpoints[{i}]")
                         for i, e in enumerate(_read(document, "endpoints", "", list))),
                   tuple(_read_registry(r, f"registries[{i}]")
                         for i, r in enumerate(_read(document, "registries", "", list))))

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "duration_ms": self.duration_ms,
            "status": self.status,
            "summary": self.summary,
            "registries": [r.to_dict() for r in sorted(self.registries, key=lambda r: r.name)],
            "endpoints": [e.to_dict() for e in self.endpoints],
        }


# -- the document read back (Report.from_dict) ----------------------------------

_KINDS = {str: "a string", list: "a list", dict: "an object", int: "an integer"}


def _read(obj: dict, key: str, where: str, kind: type, *, optional: bool = False):
    """obj[key] when it is of kind (None for an optional field left out or null)."""
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        path = f"{where}.{key}" if where else key
        raise ReportDocumentError(f"report document: {path}: expected {_KINDS[kind]}"
                                  + (" or null" if optional else ""))
    return value


def _read_object(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise ReportDocumentError(f"report document: {where}: expected an object")
    return value


def _read_choice(obj: dict, key: str, where: str, choices: Iterable[str]) -> str:
    value = _read(obj, key, where, str)
    if value not in choices:
        raise ReportDocumentError(f"report document: {where}.{key}: {one_line(value, 40)!r} is none of "
                                  + ", ".join(choices))
    return value


def _read_times(document: dict) -> tuple[float, float]:
    """(started_at, finished_at) placed within their written millisecond so that the duration comes
    back as written: the document's times are cut to the millisecond, its duration was not."""
    started, finished = (_read_instant(document, key) for key in ("started_at", "finished_at"))
    duration = _read(document, "duration_ms", "", int, optional=True)
    if duration is not None:
        off = duration - round((finished - started) * 1000)  # -1, 0 or 1 for a document to_dict wrote
        if off in (-1, 0, 1):
            started, finished = started + (0.5 - 0.4 * off) / 1000, finished + (0.5 + 0.4 * off) / 1000
    return started, finished


def _read_instant(document: dict, key: str) -> float:
    text = _read(document, key, "", str)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReportDocumentError(f"report document: {key}: {one_line(text, 40)!r} is no ISO 8601 time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def _read_endpoint(value, where: str) -> EndpointResult:
    e = _read_object(value, where)
    status = _read_choice(e, "status", where, ("ok", STALE, "errors", UNREACHABLE, ENDPOINT_ERROR))
    optional = {key: _read(e, key, where, str, optional=True) for key in ("reason", "error", "api_version")}
    containers = tuple(_read_container(c, f"{where}.containers[{i}]")
                       for i, c in enumerate(_read(e, "containers", where, list)))
    return EndpointResult(_read(e, "endpoint", where, str), containers, name=_read(e, "name", where, str),
                          failure=status if status in (UNREACHABLE, ENDPOINT_ERROR) else None, **optional)


def _read_container(value, where: str) -> ContainerResult:
    c = _read_object(value, where)
    optional = {key: _read(c, key, where, str, optional=True)
                for key in ("reason", "reference", "registry", "remote_digest", "error", "versions_error")}
    digests = _read(c, "local_digests", where, list)
    if not all(isinstance(d, str) for d in digests):
        raise ReportDocumentError(f"report document: {where}.local_digests: expected a list of strings")
    newer = _read(c, "newer", where, dict, optional=True)
    action = _read(c, "action", where, dict, optional=True)
    return ContainerResult(
        _read(c, "id", where, str), _read(c, "name", where, str), _read(c, "image", where, str),
        _read_choice(c, "status", where, tuple(STATUS_ORDER)), local_digests=tuple(digests),
        newer=None if newer is None else Newer(**{level: _read(newer, level, f"{where}.newer", str, optional=True)
                                                  for level in ("patch", "minor", "major")}),
        action=None if action is None else _read_action(action, f"{where}.action"), **optional)


def _read_action(a: dict, where: str) -> Action:
    return Action(_read_choice(a, "action", where, ACTIONS),
                  **{key: _read(a, key, where, str, optional=True)
                     for key in ("reason", "error", "old_digest", "new_digest")},
                  duration_ms=_read(a, "duration_ms", where, int, optional=True))


def _read_registry(value, where: str) -> RegistrySummary:
    r = _read_object(value, where)
    requests, rate_limit = _read(r, "requests", where, dict), _read(r, "rate_limit", where, dict, optional=True)
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in requests.values()):
        raise ReportDocumentError(f"report document: {where}.requests: expected counts (integers)")
    return RegistrySummary(_read(r, "name", where, str), dict(requests), dict(rate_limit or {}))


@dataclass(frozen=True)
class Spread:
    """One image as the fleet runs it: stale (or behind a newer version) on these hosts, in these containers."""

    image: str
    detail: str  # the digest the tag points to now, or the newer version proposed
    hosts: tuple[tuple[str, tuple[str, ...]], ...]  # (endpoint display name, container names)


def spreads(report: Report, *, outdated: bool = False) -> list[Spread]:
    """The stale images (or those with a newer version), each with where it runs, most hosts first."""
    found: dict[str, dict[str, list[str]]] = {}
    detail: dict[str, str] = {}
    shown: dict[str, str] = {}
    for endpoint, c in report.placed():
        if not (c.outdated if outdated else c.status == STALE):
            continue
        key = c.reference or c.image
        shown.setdefault(key, c.image)
        detail.setdefault(key, newer_text(c).removeprefix("newer: ") if outdated else short_digest(c.remote_digest))
        found.setdefault(key, {}).setdefault(endpoint.display_name, []).append(c.name)
    result = [Spread(shown[key], detail[key], tuple((host, tuple(names)) for host, names in hosts.items()))
              for key, hosts in found.items()]
    return sorted(result, key=lambda s: (-len(s.hosts), s.image))

def schema() -> dict:
    """The JSON Schema of the report document, from the package's own data (installed or not)."""
    return json.loads(resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


def render_json(report: Report, *, indent: int | None = 2) -> str:
    """The report document; with ``indent``, its outline indented and each container on one line.

    One line per container keeps a fleet's report readable, and greppable and diffable container
    by container; it also keeps the encoding in the json module's C encoder (an indented dump runs
    the pure-Python one over every field: about 50 ms of a 1,600-container scan's CPU, after its
    last network answer)."""
    document = report.to_dict()
    if indent is None:
        return json.dumps(document, ensure_ascii=False)
    return _outlined(document, json.JSONEncoder(ensure_ascii=False).encode, " " * indent, 0)


_ONE_LINE_DEPTH = 4  # document › endpoints › an endpoint › containers › a container (and deeper)


def _outlined(value, encode, step: str, depth: int) -> str:
    if depth >= _ONE_LINE_DEPTH or not value or not isinstance(value, (dict, list)):
        return encode(value)
    inner = "\n" + step * (depth + 1)
    if isinstance(value, dict):
        items = (f"{encode(key)}: {_outlined(item, encode, step, depth + 1)}" for key, item in value.items())
        opening, closing = "{", "}"
    else:
        items = (_outlined(item, encode, step, depth + 1) for item in value)
        opening, closing = "[", "]"
    return opening + inner + ("," + inner).join(items) + "\n" + step * depth + closing


def summary_line(report: Report) -> str:
    """The fleet's counts in one line; a fleet of one reads as its endpoint's line."""
    if len(report.endpoints) == 1:
        return endpoint_line(report.endpoints[0], duration_ms=report.duration_ms)
    s = report.summary
    unreachable = f" ({s['unreachable']} not listed)" if s["unreachable"] else ""
    return (f"{one_line(report.name, 200)}: {s['endpoints']} endpoints{unreachable}, " + _counts_text(s)
            + f" ({report.duration_ms / 1000:.1f} s)")


def endpoint_line(endpoint: EndpointResult, *, duration_ms: int | None = None) -> str:
    """One endpoint's counts, or why it was not listed."""
    where = one_line(endpoint.display_name, 200)
    if endpoint.name and endpoint.name != endpoint.endpoint:
        where += f" ({one_line(endpoint.endpoint, 200)})"
    took = f" ({duration_ms / 1000:.1f} s)" if duration_ms is not None else ""
    if not endpoint.listed:
        return f"{where}: {endpoint.status}: " + one_line(": ".join(
            x for x in (endpoint.reason, endpoint.error) if x), 300) + took
    return f"{where}: " + _counts_text(endpoint.summary) + took


def _counts_text(s: dict[str, int]) -> str:
    parts = [f"{s['stale']} stale", f"{s['fresh']} fresh", f"{s['skipped']} skipped",
             f"{s['errors']} error" + ("s" if s["errors"] != 1 else "")]
    if s["outdated"]:
        parts.append(f"{s['outdated']} outdated")
    noun = "container" if s["scanned"] == 1 else "containers"
    return f"{s['scanned']} {noun} scanned: " + ", ".join(parts)


def spread_line(spread: Spread, hosts_in_all: int, *, outdated: bool = False, limit: int = HOSTS_SHOWN) -> str:
    """ "app:1.4 is stale on 12 of 40 hosts: web-1 (app), web-2 (app, worker), … and 2 more" (raw text:
    the caller escapes it for where it lands)."""
    what = f"has a newer version ({spread.detail})" if outdated else "is stale"
    now = f" (the tag now points to {spread.detail})" if spread.detail and not outdated else ""
    hosts = len(spread.hosts)
    shown = ", ".join(f"{host} ({', '.join(names[:limit])}{' …' if len(names) > limit else ''})"
                      for host, names in spread.hosts[:limit])
    more = f", … and {hosts - limit} more" if hosts > limit else ""
    noun = "host" if hosts_in_all == 1 else "hosts"
    return f"{spread.image} {what} on {hosts} of {hosts_in_all} {noun}{now}: {shown}{more}"


def fleet_lines(report: Report) -> list[tuple[str, list[str]]]:
    """The fleet view as (heading, raw lines): stale images, newer versions, endpoints not listed.

    Empty for a fleet of one, whose table says it all without "1 of 1 hosts"."""
    if len(report.endpoints) < 2:
        return []
    listed = len(report.endpoints) - len(report.unlisted)
    sections = [("Stale images", [spread_line(s, listed) for s in spreads(report)]),
                ("Newer versions", [spread_line(s, listed, outdated=True) for s in spreads(report, outdated=True)]),
                ("Not listed", [endpoint_line(e) for e in report.unlisted])]
    return [(heading, lines) for heading, lines in sections if lines]


# -- text ---------------------------------------------------------------------

_TEXT_COLUMNS = ("STATUS", "CONTAINER", "IMAGE", "LOCAL", "REMOTE", "DETAIL")


def render_text(report: Report) -> str:
    """The fleet summary, the fleet view, then each endpoint's table."""
    lines = [summary_line(report), ""]
    for heading, items in fleet_lines(report):
        lines += [f"{heading}:", *(f"  {one_line(item, 2000)}" for item in items), ""]
    if len(report.endpoints) == 1:
        endpoint = report.endpoints[0]
        if not endpoint.listed:
            return "\n".join(lines[:1]) + "\n"
        return "\n".join(lines + _text_table(endpoint)) + "\n"
    for endpoint in report.endpoints:
        lines.append(endpoint_line(endpoint))
        if endpoint.listed:
            lines += _text_table(endpoint)
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _text_table(endpoint: EndpointResult) -> list[str]:
    rows = [_text_row(c) for c in endpoint.ordered()]
    if not rows:
        return ["No containers matched."]
    widths = [max(len(r[i]) for r in rows + [_TEXT_COLUMNS]) for i in range(len(_TEXT_COLUMNS))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in [_TEXT_COLUMNS, *rows]]


def _detail(c: ContainerResult) -> str:
    """Reason and error, newer versions, and what an update did."""
    parts = (": ".join(x for x in (c.reason, c.error) if x), newer_text(c), c.action.text() if c.action else "")
    return "; ".join(x for x in parts if x)


def _text_row(c: ContainerResult) -> tuple[str, ...]:
    detail = _detail(c)
    local = ",".join(short_digest(d) for d in c.local_digests[:2]) + ("…" if len(c.local_digests) > 2 else "")
    return (c.status, one_line(c.name, 40), one_line(c.image, 60), local or "-",
            short_digest(c.remote_digest) or "-", one_line(detail, 160))


def newer_text(c: ContainerResult) -> str:
    """The largest step proposed, "1.27.2 (minor)", or why versions were not checked."""
    if c.versions_error:
        return f"versions: {c.versions_error}"
    highest = c.newer.highest if c.newer else None
    return f"newer: {highest[0]} ({highest[1]})" if highest else ""


def short_digest(digest: str | None) -> str:
    if not digest:
        return ""
    return digest.split(":", 1)[-1][:12]


# -- markdown -----------------------------------------------------------------

def render_markdown(report: Report) -> str:
    """A heading with the fleet summary, the fleet view, then each endpoint: what needs attention
    in a table, the rest folded away."""
    icon = {"ok": "✅", "stale": "🟡", "errors": "🔴"}[report.status]
    lines = [f"### {icon} spyglass: {markdown(summary_line(report))}", ""]
    for heading, items in fleet_lines(report):
        lines += [f"**{heading}**", "", *(f"- {markdown(item, 2000)}" for item in items), ""]
    if len(report.endpoints) == 1:
        endpoint = report.endpoints[0]
        if not endpoint.listed:
            return "\n".join(lines).rstrip("\n") + "\n"
        return "\n".join(lines + _md_endpoint(endpoint)) + "\n"
    for endpoint in report.endpoints:
        if endpoint.listed:
            lines += [f"#### {markdown(endpoint_line(endpoint))}", "", *_md_endpoint(endpoint), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _md_endpoint(endpoint: EndpointResult) -> list[str]:
    ordered = endpoint.ordered()
    attention = [c for c in ordered if c.status in (STALE, ERROR) or c.outdated]
    quiet = [c for c in ordered if c not in attention]
    lines = _md_table(attention) if attention else ["Every checked container runs the image its tag points to."]
    if quiet:
        lines += ["", f"<details><summary>{len(quiet)} fresh or skipped</summary>", ""]
        lines += _md_table(quiet)
        lines += ["", "</details>"]
    return lines


def _md_table(containers: list[ContainerResult]) -> list[str]:
    lines = ["| Status | Container | Image | Local | Remote | Detail |", "|---|---|---|---|---|---|"]
    for c in containers:
        detail = _detail(c)
        local = ", ".join(short_digest(d) for d in c.local_digests[:2])
        cells = [c.status, *map(markdown, (c.name, c.image, local, short_digest(c.remote_digest), detail))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
