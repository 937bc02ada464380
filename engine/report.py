"""The scan's result as a versioned document, and its three renderings.

The JSON form is the contract: report.schema.json, shipped beside this module
and loaded by `schema()`, describes it. Text is an aligned table for a terminal
or an email, markdown is for a GitHub step summary. Every string that came from
a daemon or a registry is made inert for the format it lands in (engine/text.py).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources

from .text import markdown, one_line
from .versions import Newer

SCHEMA_VERSION = 1
SCHEMA_FILE = "report.schema.json"

STALE, FRESH, SKIPPED, ERROR = "stale", "fresh", "skipped", "error"
STATUS_ORDER = {STALE: 0, ERROR: 1, FRESH: 2, SKIPPED: 3}


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


@dataclass(frozen=True)
class Report:
    endpoint: str
    started_at: float
    finished_at: float
    containers: tuple[ContainerResult, ...]
    registries: tuple[RegistrySummary, ...] = ()
    api_version: str | None = None

    @property
    def summary(self) -> dict[str, int]:
        counts = {STALE: 0, FRESH: 0, SKIPPED: 0, ERROR: 0}
        for container in self.containers:
            counts[container.status] += 1
        return {"scanned": len(self.containers), "stale": counts[STALE], "fresh": counts[FRESH],
                "skipped": counts[SKIPPED], "errors": counts[ERROR],
                "outdated": sum(container.outdated for container in self.containers)}

    @property
    def status(self) -> str:
        """ok, stale or errors: what a subscriber filters on (errors win, they hide staleness)."""
        summary = self.summary
        return "errors" if summary["errors"] else "stale" if summary["stale"] else "ok"

    @property
    def duration_ms(self) -> int:
        return max(0, round((self.finished_at - self.started_at) * 1000))

    def ordered(self) -> list[ContainerResult]:
        return sorted(self.containers, key=lambda c: (STATUS_ORDER[c.status], c.name))

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "endpoint": self.endpoint,
            "api_version": self.api_version,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "duration_ms": self.duration_ms,
            "status": self.status,
            "summary": self.summary,
            "containers": [c.to_dict() for c in self.ordered()],
            "registries": [r.to_dict() for r in sorted(self.registries, key=lambda r: r.name)],
        }


def schema() -> dict:
    """The JSON Schema of the report document, from the package's own data (installed or not)."""
    return json.loads(resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


def render_json(report: Report, *, indent: int | None = 2) -> str:
    return json.dumps(report.to_dict(), indent=indent, ensure_ascii=False)


def summary_line(report: Report) -> str:
    s = report.summary
    parts = [f"{s['stale']} stale", f"{s['fresh']} fresh", f"{s['skipped']} skipped",
             f"{s['errors']} error" + ("s" if s["errors"] != 1 else "")]
    if s["outdated"]:
        parts.append(f"{s['outdated']} outdated")
    noun = "container" if s["scanned"] == 1 else "containers"
    return (f"{one_line(report.endpoint, 1000)}: {s['scanned']} {noun} scanned: " + ", ".join(parts)
            + f" ({report.duration_ms / 1000:.1f} s)")


# -- text ---------------------------------------------------------------------

_TEXT_COLUMNS = ("STATUS", "CONTAINER", "IMAGE", "LOCAL", "REMOTE", "DETAIL")


def render_text(report: Report) -> str:
    rows = [_text_row(c) for c in report.ordered()]
    lines = [summary_line(report), ""]
    if not rows:
        return "\n".join(lines + ["No containers matched."]) + "\n"
    widths = [max(len(r[i]) for r in rows + [_TEXT_COLUMNS]) for i in range(len(_TEXT_COLUMNS))]
    for row in [_TEXT_COLUMNS, *rows]:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return "\n".join(lines) + "\n"


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
    ordered = report.ordered()
    attention = [c for c in ordered if c.status in (STALE, ERROR) or c.outdated]
    quiet = [c for c in ordered if c not in attention]
    icon = {"ok": "✅", "stale": "🟡", "errors": "🔴"}[report.status]
    lines = [f"### {icon} spyglass: {markdown(summary_line(report))}", ""]
    if attention:
        lines += _md_table(attention)
    else:
        lines.append("Every checked container runs the image its tag points to.")
    if quiet:
        lines += ["", f"<details><summary>{len(quiet)} fresh or skipped</summary>", ""]
        lines += _md_table(quiet)
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


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
