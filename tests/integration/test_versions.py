"""Newer version tags against the stack's real registry: pages of a tags list, shapes, request counts.

One repository carries many version tags (several pages at the small page size the test sets, for
a registry that pages: the stack's distribution 2.8 sends them all at once; paging itself is
tests/faults/test_versions_faults.py's, through the fault proxy, and tests/unit/test_tags_list.py's),
suffix families, pre-releases, calendar versions, a major-only and a minor-level tag, and tags
that are not versions; containers run several of them. Every tag points at the same manifest, so
every container is fresh: the version check is independent of the digest verdict.
"""
from __future__ import annotations

import functools
import io
import json
import math
from pathlib import Path

import jsonschema
import pytest

import engine.scan
from engine.registry import TagLimits
from engine.report import schema
from engine.scan import ScanOptions
from handler.cli import main
from tests.stack import run_container
from tests.reportdoc import containers_of

REPOSITORY = "cases/versioned"
LABELS = {"com.centurylinklabs.watchtower.scope": "versions"}
PAGE = 7
TAGS = ([f"1.{minor}.{patch}" for minor in range(20, 28) for patch in range(0, 6)]
        + ["1.25.3-alpine", "1.25.5-alpine", "1.27.2-alpine", "1.27.2-alpine3.20", "1.25.3-alpine3.20",
           "1.27.3-rc1", "1.28.0-beta.2", "2.0.0-rc1", "v1.30.0",
           "16", "17", "18-rc1", "16-alpine", "20.11", "20.12", "21.0", "22.1", "22.0",
           "2024.04.1", "2024.04.2", "2024.10.1", "2025.01.0",
           "latest", "stable", "sha-3f2a1b9", "20240101"])
RUNNING = {  # container name -> (tag, newer {patch, minor, major})
    "ver-nginx": ("1.25.3", {"patch": "1.25.5", "minor": "1.27.5", "major": None}),
    "ver-alpine": ("1.25.3-alpine", {"patch": "1.25.5-alpine", "minor": "1.27.2-alpine", "major": None}),
    "ver-alpine320": ("1.25.3-alpine3.20", {"patch": None, "minor": "1.27.2-alpine3.20", "major": None}),
    "ver-postgres": ("16", {"patch": None, "minor": None, "major": "17"}),
    "ver-node": ("20.11", {"patch": None, "minor": "20.12", "major": "22.1"}),
    "ver-calendar": ("2024.04.1", {"patch": "2024.04.2", "minor": "2024.10.1", "major": "2025.01.0"}),
    "ver-newest": ("1.27.5", {"patch": None, "minor": None, "major": None}),
    "ver-latest": ("latest", None),
}


@pytest.fixture(scope="module")
def versioned_fleet(stack):
    client, name = stack.daemon.admin, f"{stack.secure.address}/{REPOSITORY}"
    stack.publish(stack.secure, REPOSITORY, "1.25.3", "versioned")
    with stack.secure_http() as registry:
        for tag in TAGS:
            if tag != "1.25.3":
                registry.copy_tag(REPOSITORY, "1.25.3", tag)
    containers = []
    for container, (tag, _) in RUNNING.items():
        client.tag(f"{name}:1.25.3", name, tag)  # the image's RepoDigests already name the repository
        containers.append(run_container(client, container, f"{name}:{tag}", labels=LABELS))
    yield RUNNING
    for container in containers:
        client.remove_container(container, force=True)


def scan(stack, monkeypatch, *args):
    # The registry's own page size is 1000 tags or more: a small n forces several pages.
    monkeypatch.setattr(engine.scan, "ScanOptions", functools.partial(ScanOptions, tag_limits=TagLimits(page_size=PAGE)))
    out, err = io.StringIO(), io.StringIO()
    code = main(["scan", "--output", "json", "--scope", "versions", *stack.scan_args(), *args], env=stack.env(),
                stdout=out, stderr=err, home=Path(stack.workdir))
    assert code == 0, err.getvalue()
    report = json.loads(out.getvalue())
    jsonschema.validate(report, schema())
    return report


def tags_requests(stack, mark):
    return [r for r in stack.secure.requests_since(mark) if "/tags/list" in r.path]


def test_the_report_names_exactly_the_newest_tag_of_each_level(stack, versioned_fleet, monkeypatch):
    mark = stack.secure.mark()
    report = scan(stack, monkeypatch)
    found = {c["name"]: c for c in containers_of(report)}
    assert {name: found[name]["newer"] for name in versioned_fleet} == \
        {name: newer for name, (_, newer) in versioned_fleet.items()}
    assert {c["status"] for c in found.values()} == {"fresh"}
    assert all(c["versions_error"] is None for c in found.values())
    assert report["summary"]["outdated"] == 6
    pages = tags_requests(stack, mark)
    assert all(r.status == 200 and r.method == "GET" for r in pages), pages
    # One list for the whole fleet (one repository). distribution 2.8 ignores n= and sends every tag
    # at once; a registry that pages (distribution 3) is followed page after page.
    assert pages[0].path == f"/v2/{REPOSITORY}/tags/list?n={PAGE}"
    assert len(pages) == 1 or math.ceil(len(TAGS) / PAGE) <= len(pages) <= math.ceil(len(TAGS) / PAGE) + 1
    (registry,) = [r for r in report["registries"] if r["name"] == stack.secure.address]
    assert registry["requests"]["tags"] == len(pages)


def test_versions_off_sends_not_a_single_extra_request(stack, versioned_fleet, monkeypatch):
    mark = stack.secure.mark()
    on = scan(stack, monkeypatch)
    with_versions = stack.secure.requests_since(mark)
    mark = stack.secure.mark()
    off = scan(stack, monkeypatch, "--versions", "off")
    without = stack.secure.requests_since(mark)
    assert tags_requests(stack, mark) == []
    assert all(c["newer"] is None for c in containers_of(off)) and off["summary"]["outdated"] == 0
    (registry,) = [r for r in off["registries"] if r["name"] == stack.secure.address]
    assert "tags" not in registry["requests"]
    assert len(without) == len(with_versions) - len([r for r in with_versions if "/tags/list" in r.path])
    assert on["summary"]["outdated"] == 6
