"""Report renderings: JSON valid against the published schema, text and markdown readable and inert."""
import json

import jsonschema
from hypothesis import given, settings, strategies as st

import pytest

from engine.report import (UNREACHABLE, ContainerResult, EndpointResult, RegistrySummary, Report, render_json,
                           render_markdown, render_text, schema)
from tests.unit.markdown import table_cells
from tests.reportdoc import containers_of

SCHEMA = schema()
D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def sample(name="web") -> Report:
    containers = (
        ContainerResult("c1", name, "app:1", "stale", reference="docker.io/library/app:1", registry="docker.io",
                        local_digests=(D1,), remote_digest=D2),
        ContainerResult("c2", "db", "db:2", "fresh", reference="docker.io/library/db:2", registry="docker.io",
                        local_digests=(D1,), remote_digest=D1),
        ContainerResult("c3", "local", "mine", "skipped", "no-repo-digest"),
        ContainerResult("c4", "gone", "r.example/x:1", "error", "not-found", reference="r.example/x:1:1",
                        registry="r.example", error="HEAD manifest r.example/x:1: HTTP 404"),
    )
    return Report.single("tcp://h:2376", 1_700_000_000.0, 1_700_000_001.25, containers,
                  (RegistrySummary("docker.io", {"ping": 1, "token": 1, "head": 2, "get": 0}),), "1.41")


def test_json_report_validates_and_counts():
    document = json.loads(render_json(sample()))
    jsonschema.validate(document, SCHEMA)
    assert document["summary"] == {"endpoints": 1, "unreachable": 0, "scanned": 4, "stale": 1, "fresh": 1, "skipped": 1, "errors": 1, "outdated": 0}
    assert document["status"] == "errors" and document["duration_ms"] == 1250
    assert [c["status"] for c in containers_of(document)] == ["stale", "error", "fresh", "skipped"]


def test_text_puts_the_summary_first_and_aligns_columns():
    lines = render_text(sample()).splitlines()
    assert lines[0] == "tcp://h:2376: 4 containers scanned: 1 stale, 1 fresh, 1 skipped, 1 error (1.2 s)"
    header, *rows = lines[2:]
    assert header.split() == ["STATUS", "CONTAINER", "IMAGE", "LOCAL", "REMOTE", "DETAIL"]
    column = header.index("IMAGE")
    assert all(row[column - 2:column] == "  " for row in rows)
    assert rows[0].startswith("stale") and "111111111111" in rows[0] and "222222222222" in rows[0]


def test_markdown_lists_what_needs_attention_and_folds_the_rest():
    text = render_markdown(sample())
    attention, folded = text.split("<details>")
    assert "stale" in attention and "not-found" in attention and "| db |" not in attention
    assert "| db |" in folded and "no-repo-digest" in folded




names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=60)


@settings(max_examples=500, deadline=None)
@given(name=names, image=names, error=names)
def test_any_name_or_message_keeps_every_format_intact(name, image, error):
    report = Report.single("tcp://h:1", 0.0, 1.0, (
        ContainerResult("id", name, image, "error", "registry-error", error=error or "x"),
        ContainerResult("id2", "plain", "img", "fresh", remote_digest=D1, local_digests=(D1,)),
    ))
    document = json.loads(render_json(report))
    jsonschema.validate(document, SCHEMA)
    assert containers_of(document)[0]["name"] == name
    text = render_text(report)
    assert len(text.splitlines()) == 5  # summary, blank, header, two rows
    assert not any(ch in text for ch in "\x1b\r\x00")
    markdown = render_markdown(report)
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert all(table_cells(line) == 6 for line in rows)
    assert "<script" not in markdown.lower() and "<img" not in markdown.lower()
    body = markdown.replace("<details>", "").replace("</details>", "").replace("<summary>", "").replace("</summary>", "")
    assert "<" not in body and ">" not in body.replace("->", "")



# -- schema_version 2: the fleet ---------------------------------------------------------

def _stale_on(i: int) -> ContainerResult:
    return ContainerResult(f"c{i}", f"app-{i}", "app:1.4", "stale", reference="docker.io/library/app:1.4",
                           registry="docker.io", local_digests=(D1,), remote_digest=D2)


def fleet(hosts: int = 12) -> Report:
    listed = tuple(EndpointResult(f"tcp://10.0.0.{i}:2376", (_stale_on(i),), name=f"web-{i}", api_version="1.41")
                   for i in range(hosts))
    down = EndpointResult("tcp://10.0.0.99:2376", name="db-3", failure=UNREACHABLE, reason="connection-refused",
                          error="connect to tcp://10.0.0.99:2376: connection refused")
    return Report("prod", 0.0, 2.0, listed + (down,))


def test_a_fleet_document_validates_with_an_entry_per_endpoint():
    document = json.loads(render_json(fleet()))
    jsonschema.validate(document, SCHEMA)
    assert document["schema_version"] == 2 and document["name"] == "prod" and document["status"] == "errors"
    assert document["summary"]["endpoints"] == 13 and document["summary"]["unreachable"] == 1
    assert document["summary"]["stale"] == 12
    down = document["endpoints"][-1]
    assert (down["status"], down["reason"], down["containers"], down["api_version"]) == (
        "unreachable", "connection-refused", [], None)
    assert document["endpoints"][0]["status"] == "stale" and document["endpoints"][0]["name"] == "web-0"


def test_the_schema_refuses_an_unreachable_endpoint_without_its_reason():
    document = json.loads(render_json(fleet(1)))
    document["endpoints"][-1]["reason"] = None
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA)


def test_text_opens_with_the_fleet_then_each_stale_image_with_its_hosts_capped():
    lines = render_text(fleet()).splitlines()
    assert lines[0].startswith("prod: 13 endpoints (1 not listed), 12 containers scanned: 12 stale")
    spread = next(line for line in lines if "is stale on" in line)
    assert spread.strip().startswith("app:1.4 is stale on 12 of 12 hosts")
    assert "web-0 (app-0)" in spread and "web-11" not in spread and spread.endswith("… and 2 more")
    not_listed = lines.index("Not listed:")
    assert "connection-refused" in lines[not_listed + 1] and not_listed < lines.index(
        "web-0 (tcp://10.0.0.0:2376): 1 container scanned: 1 stale, 0 fresh, 0 skipped, 0 errors")


def test_a_fleet_of_one_reads_without_hosts_counts():
    text = render_text(sample())
    assert "hosts" not in text and "endpoints" not in text
    assert "hosts" not in render_markdown(sample())


def test_a_single_endpoint_that_could_not_be_listed_says_why_in_every_format():
    down = Report("db-3", 0.0, 1.0, (EndpointResult("tcp://db:2376", name="db-3", failure=UNREACHABLE,
                                                    reason="timeout", error="list containers: timed out"),))
    assert render_text(down) == "db-3 (tcp://db:2376): unreachable: timeout: list containers: timed out (1.0 s)\n"
    assert "unreachable" in render_markdown(down) and "🔴" in render_markdown(down)
    assert not down.listed_any and down.status == "errors"


def test_markdown_gives_the_fleet_view_then_a_section_per_listed_endpoint():
    text = render_markdown(fleet(3))
    assert text.index("**Stale images**") < text.index("**Not listed**") < text.index("#### web-0")
    assert "#### db-3" not in text and text.count("#### ") == 3
