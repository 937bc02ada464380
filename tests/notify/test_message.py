"""The message: the title's counts, the body grouped by image, made inert, cut with a pointer."""
import json

from engine.report import ContainerResult, Report
from engine.versions import Newer
from handler.notify.message import MARKDOWN, TEXT, compose, full_report, title
from tests.reportdoc import containers_of


def _report(*containers, endpoint="tcp://docker-1:2376"):
    return Report.single(endpoint, 1_700_000_000.0, 1_700_000_002.0, tuple(containers))


def _stale(name, image, remote="sha256:" + "ab" * 32):
    return ContainerResult(name, name, image, "stale", reference=image, remote_digest=remote)


def test_the_title_has_the_counts_and_the_endpoint():
    report = _report(_stale("web", "nginx:1"), ContainerResult("db", "db", "pg:16", "fresh"),
                     ContainerResult("x", "x", "r/x:1", "error", reason="unauthorized"))
    assert title(report) == "spyglass: tcp://docker-1:2376: 1 stale, 1 error (3 containers)"
    assert title(report, failure="refused") == "spyglass: tcp://docker-1:2376: could not be scanned"


def test_stale_containers_are_grouped_by_image_and_errors_listed():
    report = _report(_stale("web-2", "nginx:1"), _stale("web-1", "nginx:1"), _stale("cache", "redis:7"),
                     ContainerResult("x", "x", "r/x:1", "error", reason="unauthorized", error="401 from r"))
    body = compose(report, TEXT, 0, where="w").body.splitlines()
    assert body == ["Stale (3)", "- nginx:1: web-1, web-2 (the tag now points to abababababab)",
                    "- redis:7: cache (the tag now points to abababababab)", "",
                    "Not checked (1)", "- x (r/x:1): unauthorized: 401 from r"]


def test_an_endpoint_that_could_not_be_scanned_is_said():
    message = compose(_report(), TEXT, 0, where="w", failure="connection refused")
    assert "Endpoint not scanned" in message.body and "connection refused" in message.body
    assert message.severity == "failure"


def test_names_from_outside_cannot_format_or_link_in_markdown():
    report = _report(_stale("[click](http://evil)", "img:*1*"), _stale("<b>x</b>\n@here", "img:*1*"))
    body = compose(report, MARKDOWN, 0, where="w").body
    assert "[click](" not in body and "<b>" not in body and "*1*" not in body and "\n@here" not in body
    assert body.startswith("**Stale (2)**")


def test_a_long_list_is_cut_at_a_line_with_a_pointer_to_the_full_report():
    report = _report(*[_stale(f"c{i:03}", f"registry.example/team/image-{i:03}:1") for i in range(200)])
    message = compose(report, MARKDOWN, 2000, where="/var/reports/last.json")
    assert len(message.body) <= 2000
    last = message.body.splitlines()[-1]
    assert last.startswith("… ") and "more lines" in last and "/var/reports/last.json" in last
    assert all(line.startswith(("- ", "**")) for line in message.body.splitlines()[:-1])
    assert compose(report, MARKDOWN, 0, where="w").body.count("\n- ") == 200  # no limit: nothing cut


def test_the_json_webhook_message_is_the_whole_report():
    report = _report(_stale("web", "nginx:1"))
    document = json.loads(full_report(report).body)
    assert document["summary"]["stale"] == 1 and containers_of(document)[0]["name"] == "web"


def test_containers_with_newer_versions_are_grouped_by_image_and_counted_in_the_title():
    report = _report(ContainerResult("web", "web", "nginx:1.25.3", "fresh", newer=Newer(patch="1.25.5", minor="1.27.2")),
                     ContainerResult("web-2", "web-2", "nginx:1.25.3", "fresh", newer=Newer(patch="1.25.5", minor="1.27.2")),
                     ContainerResult("db", "db", "postgres:16", "fresh", newer=Newer()))
    message = compose(report, TEXT, 0, where="w")
    assert message.body.splitlines() == ["Newer versions (2)", "- nginx:1.25.3: web, web-2 (newer: 1.27.2 (minor))"]
    assert title(report) == "spyglass: tcp://docker-1:2376: 0 stale, 2 outdated, 0 errors (3 containers)"
    assert message.severity == "warning"
