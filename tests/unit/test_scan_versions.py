"""The scan's version check with a table registry: one tags list per repository, labels, failures.

The real registry's version (pages, token, fleet) is tests/integration/test_versions.py.
"""
from __future__ import annotations

import json

import jsonschema
import pytest

from engine.daemon import ContainerInfo, Listing
from engine.report import render_json, render_markdown, render_text, schema
from engine.scan import ScanOptions, scan
from tests.unit.fakes import TablePools

DIGEST = "sha256:" + "d" * 64
HOST = "reg.example:5000"
TAGS = {"web": ["1.25.3", "1.25.5", "1.27.2", "1.27.2-alpine", "1.25.3-alpine", "2.0.0-rc1", "latest"],
        "db": ["16", "17", "18-beta1"]}


class Fleet:
    endpoint = "tcp://docker.example:2376"

    def __init__(self, *containers):
        self.containers = tuple(ContainerInfo(f"id{i}", name, f"{HOST}/{image}", "sha256:" + "c" * 64, "running",
                                              labels=labels, repo_digests=(f"{HOST}/{image.rsplit(':', 1)[0]}@{DIGEST}",))
                                for i, (name, image, labels) in enumerate(containers))

    def list_containers(self, wanted=None, *, concurrency=8, progress=None, on_listed=None):
        return Listing(self.containers, "1.41")


def registry(tags_answer=None):
    def tags(request):
        repository = request["path"][len("/v2/"):-len("/tags/list")]
        if tags_answer is not None:
            return tags_answer(repository)
        return 200, {}, json.dumps({"name": repository, "tags": TAGS[repository]}).encode()
    return TablePools([("GET", "/v2/", lambda r: tags(r) if r["path"].endswith("/tags/list") else (200, {}, b"")),
                       ("HEAD", "/v2/", lambda r: (200, {"Docker-Content-Digest": DIGEST}, b""))])


def run(fleet, pools, **options):
    report = scan(fleet, ScanOptions(timeout=10, **options), pools=pools)
    jsonschema.validate(json.loads(render_json(report)), schema())
    return report, {c.name: c for c in report.containers}


def test_one_tags_list_per_repository_and_the_newest_per_level():
    pools = registry()
    report, by_name = run(Fleet(("a", "web:1.25.3", {}), ("b", "web:1.25.3", {}), ("c", "web:1.25.3-alpine", {}),
                                ("d", "db:16", {}), ("e", "web:latest", {})), pools)
    assert by_name["a"].newer.to_dict() == {"patch": "1.25.5", "minor": "1.27.2", "major": None}
    assert by_name["b"].newer == by_name["a"].newer
    assert by_name["c"].newer.to_dict() == {"patch": None, "minor": "1.27.2-alpine", "major": None}
    assert by_name["d"].newer.to_dict() == {"patch": None, "minor": None, "major": "17"}
    assert by_name["e"].newer is None  # latest is not a version
    assert {c.status for c in report.containers} == {"fresh"}  # independent of the version check
    assert sorted(r["path"] for r in pools.kinds("GET") if r["path"].endswith("/tags/list")) == \
        ["/v2/db/tags/list", "/v2/web/tags/list"]
    assert report.summary["outdated"] == 4
    (summary,) = report.registries
    assert summary.requests["tags"] == 2
    assert "1.27.2 (minor)" in render_text(report) and "1.27.2 (minor)" in render_markdown(report)


def test_versions_off_or_no_version_tag_asks_for_no_tags_list():
    for fleet, options in ((Fleet(("a", "web:1.25.3", {})), {"versions": "off"}),
                           (Fleet(("a", "web:latest", {})), {})):
        pools = registry()
        report, _ = run(fleet, pools, **options)
        assert not [r for r in pools.requests if r["path"].endswith("/tags/list")]
        assert "tags" not in report.registries[0].requests
        assert report.containers[0].newer is None and report.summary["outdated"] == 0


def test_labels_refine_the_run_wide_level():
    pools = registry()
    _, by_name = run(Fleet(("patch", "web:1.25.3", {"spyglass.versions": "patch"}),
                           ("off", "db:16", {"spyglass.versions": "off"}),
                           ("filtered", "web:1.25.3", {"spyglass.tag.exclude": r"^1\.27"}),
                           ("included", "web:1.25.3", {"spyglass.tag.include": r"^1\.25\."})), pools, versions="minor")
    assert by_name["patch"].newer.to_dict() == {"patch": "1.25.5", "minor": None, "major": None}
    assert by_name["off"].newer is None and by_name["off"].versions_error is None
    assert by_name["filtered"].newer.to_dict() == {"patch": "1.25.5", "minor": None, "major": None}
    assert by_name["included"].newer.to_dict() == {"patch": "1.25.5", "minor": None, "major": None}
    assert [r["path"] for r in pools.requests if r["path"].endswith("/tags/list")] == ["/v2/web/tags/list"]


@pytest.mark.parametrize("labels, why", [({"spyglass.tag.include": "("}, "spyglass.tag.include: not a regular"),
                                         ({"spyglass.tag.exclude": "a" * 300}, "longer than 256"),
                                         ({"spyglass.versions": "all"}, "spyglass.versions")])
def test_a_bad_label_is_a_versions_error_for_that_container_only(labels, why):
    _, by_name = run(Fleet(("bad", "web:1.25.3", labels), ("good", "web:1.25.3", {})), registry())
    assert why in by_name["bad"].versions_error and by_name["bad"].status == "fresh"
    assert by_name["good"].newer.patch == "1.25.5"


def test_a_failed_tags_list_is_a_versions_error_on_that_repository_only():
    def answer(repository):
        return (503, {}, b"") if repository == "db" else (200, {}, json.dumps({"tags": TAGS[repository]}).encode())
    report, by_name = run(Fleet(("a", "web:1.25.3", {}), ("d", "db:16", {})), registry(answer))
    assert by_name["d"].status == "fresh" and by_name["d"].newer is None
    assert "503" in by_name["d"].versions_error and "db" in by_name["d"].versions_error
    assert by_name["a"].versions_error is None and by_name["a"].newer.patch == "1.25.5"
    assert report.status == "ok"
    assert "versions:" in render_text(report)
