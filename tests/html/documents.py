"""Report documents (schema_version 2) made up for the HTML tests: a fleet of any size, hostile names.

`fleet_document` builds what the engine would report for a fleet whose containers follow a fixed
pattern (every 7th stale, every 11th errored, every 5th behind a newer version, every 13th
skipped), so tests can compute the expected counts and the generated page can be checked
against them. Its summary is summed from the containers, as the real report's is.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

HOSTILE = (
    "<script>window.__pwned=1</script>",
    '"><img src=x onerror="window.__pwned=2">',
    "</style><b id=injected>bold</b>",
    "]]><!-- --><svg onload=window.__pwned=3>",
    "evil\u202eexe.gpj\u2066bidi\u2069",
    "it's \"quoted\" & <tagged>",
    "\u2028line\u2029separators",
    "</script><script>window.__pwned=4</script>",
)
DIGEST = "sha256:" + "ab" * 32
NEW_DIGEST = "sha256:" + "cd" * 32
START = datetime(2026, 11, 30, 22, 0, tzinfo=timezone.utc)


def container(index: int, name: str | None = None, image: str | None = None) -> dict:
    status, reason, error = "fresh", None, None
    if index % 11 == 3:
        status, reason, error = "error", "not-found", f"HEAD manifest registry.example/app{index % 17}:1: HTTP 404"
    elif index % 7 == 2:
        status = "stale"
    elif index % 13 == 5:
        status, reason = "skipped", "no-repo-digest"
    image = image or f"registry.example/team/app{index % 17}:1.{index % 4}.0"
    newer = {"patch": None, "minor": f"1.{index % 4 + 1}.0", "major": None} if index % 5 == 1 else None
    return {"id": f"{index:064x}", "name": name or f"app-{index:04d}", "image": image,
            "reference": None if status == "skipped" else image, "status": status, "reason": reason,
            "local_digests": [] if status == "skipped" else [DIGEST],
            "remote_digest": None if status in ("skipped", "error") else (NEW_DIGEST if status == "stale" else DIGEST),
            "registry": None if status == "skipped" else "registry.example", "error": error, "newer": newer,
            "versions_error": None}


def summary_of(containers: list[dict]) -> dict:
    count = lambda status: sum(c["status"] == status for c in containers)  # noqa: E731
    return {"scanned": len(containers), "stale": count("stale"), "fresh": count("fresh"),
            "skipped": count("skipped"), "errors": count("error"),
            "outdated": sum(bool(c["newer"] and any(c["newer"].values())) for c in containers)}


def endpoint(name: str, containers: list[dict], *, status: str | None = None, reason: str | None = None,
             error: str | None = None) -> dict:
    summary = summary_of(containers)
    if status is None:
        status = "errors" if summary["errors"] else "stale" if summary["stale"] else "ok"
    return {"endpoint": f"tcp://{name}.example:2376", "name": name, "status": status, "reason": reason,
            "error": error, "api_version": None if reason else "1.45", "summary": summary, "containers": containers}


def document(name: str, endpoints: list[dict], *, duration_ms: int = 4321) -> dict:
    totals = summary_of([c for e in endpoints for c in e["containers"]])
    unreachable = sum(e["status"] in ("unreachable", "error") for e in endpoints)
    status = "errors" if totals["errors"] or unreachable else "stale" if totals["stale"] else "ok"
    return {"schema_version": 2, "name": name,
            "started_at": START.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "finished_at": (START + timedelta(milliseconds=duration_ms)).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "duration_ms": duration_ms, "status": status,
            "summary": {"endpoints": len(endpoints), "unreachable": unreachable, **totals},
            "registries": [{"name": "registry.example", "requests": {"ping": 1, "token": 2, "head": 17, "get": 0},
                            "rate_limit": {}}],
            "endpoints": endpoints}


def fleet_document(endpoints: int = 21, per_endpoint: int = 50, *, unreachable: int = 1) -> dict:
    """A fleet of endpoints × per_endpoint containers, the last `unreachable` endpoints not listed."""
    made = []
    for e in range(endpoints):
        name = f"host-{e:03d}"
        if e >= endpoints - unreachable:
            made.append(endpoint(name, [], status="unreachable", reason="connection-refused",
                                 error=f"connect tcp://{name}.example:2376: connection refused"))
            continue
        made.append(endpoint(name, [container(e * per_endpoint + i) for i in range(per_endpoint)]))
    return document("production fleet", made)


def hostile_document() -> dict:
    """Every hostile string as a container name, an image, an error, an endpoint name and the fleet name."""
    containers = [container(2, name=text, image=f"registry.example/{text}:1") for text in HOSTILE]
    for c, text in zip(containers, HOSTILE):
        c.update(status="error", reason="registry-error", error=text, remote_digest=None, newer={"patch": text,
                                                                                             "minor": None, "major": None})
    bad_host = endpoint(HOSTILE[0], [], status="unreachable", reason="timeout", error=HOSTILE[3])
    return document(HOSTILE[7], [endpoint(HOSTILE[1], containers), bad_host])
