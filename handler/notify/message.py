"""What a notification says: a title with the counts, a body grouped by image, cut to fit a service.

    title  "spyglass: NAME: 2 stale, 1 error (14 containers)", and for a fleet
           "(812 containers on 40 endpoints, 2 not listed)"
    body   the stale containers grouped by image (the digest the tag points to now; in a
           fleet, the hosts and containers that run it), the newer versions likewise, then
           the containers that could not be checked with their reason, then the endpoints
           that could not be listed; in markdown for services that render it (or HTML,
           which Apprise converts markdown into), in plain text for the rest
    cut    whole lines until the service's limit, then "… N more lines: the full report is
           at WHERE" so nobody mistakes a cut list for the whole
    JSON   the generic JSON webhook (json://, jsons://) gets the full JSON report instead

Every string from a daemon or a registry goes through engine.text (one_line for text,
markdown for markdown), so a container name cannot format, link or ping anyone.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

from engine.report import (ERROR, STALE, Report, endpoint_line, newer_text, render_json, short_digest, spread_line,
                           spreads)
from engine.text import markdown, one_line

MARKDOWN, TEXT = "markdown", "text"
CUT_RESERVE = 300  # characters kept back for the "… more" line


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    severity: str  # Apprise's notify type: info, warning or failure


def title(report: Report, *, failure: str | None = None) -> str:
    name = one_line(report.name, 120)
    if failure or not report.listed_any:
        return f"spyglass: {name}: could not be scanned"
    s = report.summary
    errors = f"{s['errors']} error" + ("" if s["errors"] == 1 else "s")
    noun = "container" if s["scanned"] == 1 else "containers"
    outdated = f"{s['outdated']} outdated, " if s.get("outdated") else ""
    where = ""
    if s["endpoints"] > 1:
        where = f" on {s['endpoints']} endpoints" + (f", {s['unreachable']} not listed" if s["unreachable"] else "")
    return f"spyglass: {name}: {s['stale']} stale, {outdated}{errors} ({s['scanned']} {noun}{where})"


def severity(report: Report, failure: str | None = None) -> str:
    if failure or report.status == "errors":  # an endpoint not listed makes the status errors
        return "failure"
    return "warning" if report.status == "stale" or report.summary.get("outdated") else "info"


def compose(report: Report, fmt: str, limit: int, *, where: str, failure: str | None = None) -> Message:
    """The message in fmt (MARKDOWN or TEXT), its body at most limit characters (0: no limit)."""
    lines = body_lines(report, fmt, failure=failure)
    return Message(title(report, failure=failure), cut(lines, limit, fmt, where), severity(report, failure))


def full_report(report: Report, *, failure: str | None = None) -> Message:
    """The generic JSON webhook's message: the JSON report (report.schema.json) as the body."""
    return Message(title(report, failure=failure), render_json(report), severity(report, failure))


def body_lines(report: Report, fmt: str, *, failure: str | None = None) -> list[str]:
    esc = markdown if fmt == MARKDOWN else (lambda text, limit=200: one_line(text, limit))
    bold = (lambda text: f"**{text}**") if fmt == MARKDOWN else (lambda text: text)
    lines: list[str] = []
    if failure:
        lines += [bold("Endpoint not scanned"), f"- {esc(report.name)}: {esc(failure, 500)}", ""]
    fleet = len(report.endpoints) > 1
    lines += _stale_lines(report, esc, bold, fleet) + _outdated_lines(report, esc, bold, fleet)
    errors = [(e, c) for e, c in report.placed() if c.status == ERROR]
    if errors:
        lines.append(bold(f"Not checked ({len(errors)})"))
        for e, c in errors:
            detail = ": ".join(x for x in (c.reason, c.error) if x)
            on = f" on {esc(e.display_name, 80)}" if fleet else ""
            lines.append(f"- {esc(c.name, 80)}{on} ({esc(c.image, 160)}): {esc(detail, 300)}")
        lines.append("")
    unlisted = report.unlisted if not failure else ()
    if unlisted:
        lines.append(bold(f"Endpoints not listed ({len(unlisted)})"))
        lines += [f"- {esc(endpoint_line(e), 500)}" for e in unlisted] + [""]
    if not lines:
        lines.append("Every checked container runs the image its tag points to.")
    return lines[:-1] if lines[-1] == "" else lines


def _stale_lines(report: Report, esc, bold, fleet: bool) -> list[str]:
    stale = sorted((c for c in report.ordered() if c.status == STALE), key=lambda c: (c.image, c.name))
    if not stale:
        return []
    lines = [bold(f"Stale ({len(stale)})")]
    if fleet:  # where each image runs, the hosts that run it most first
        hosts = len(report.endpoints) - len(report.unlisted)
        return lines + [f"- {esc(spread_line(s, hosts), 1000)}" for s in spreads(report)] + [""]
    for image, group in groupby(stale, key=lambda c: c.image):
        members = list(group)
        names = ", ".join(esc(c.name, 80) for c in members)
        now = short_digest(members[0].remote_digest)
        lines.append(f"- {esc(image, 160)}: {names}" + (f" (the tag now points to {now})" if now else ""))
    return lines + [""]


def _outdated_lines(report: Report, esc, bold, fleet: bool) -> list[str]:
    outdated = sorted((c for c in report.ordered() if c.outdated), key=lambda c: (c.image, c.name))
    if not outdated:
        return []
    lines = [bold(f"Newer versions ({len(outdated)})")]
    if fleet:
        hosts = len(report.endpoints) - len(report.unlisted)
        return lines + [f"- {esc(spread_line(s, hosts, outdated=True), 1000)}"
                        for s in spreads(report, outdated=True)] + [""]
    for image, group in groupby(outdated, key=lambda c: c.image):
        members = list(group)
        names = ", ".join(esc(c.name, 80) for c in members)
        lines.append(f"- {esc(image, 160)}: {names} ({esc(newer_text(members[0]), 120)})")
    return lines + [""]


def cut(lines: list[str], limit: int, fmt: str, where: str) -> str:
    """Whole lines up to limit; when some are left out, a last line saying how many and where the rest is."""
    text = "\n".join(lines)
    if limit <= 0 or len(text) <= limit:
        return text
    budget = max(limit - CUT_RESERVE, 0)
    kept: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > budget:
            break
        kept.append(line)
        used += len(line) + 1
    left = sum(1 for line in lines[len(kept):] if line)
    place = (markdown(where, CUT_RESERVE - 80) if fmt == MARKDOWN else one_line(where, CUT_RESERVE - 80))
    note = f"… {left} more line{'s' if left != 1 else ''}: the full report is at {place}"
    return "\n".join(kept + [note])[:limit]
