"""Report renderings: JSON valid against the published schema, text and markdown readable and inert."""
import json

import jsonschema
from hypothesis import given, settings, strategies as st

from engine.report import ContainerResult, RegistrySummary, Report, render_json, render_markdown, render_text, schema
from tests.unit.markdown import table_cells

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
    return Report("tcp://h:2376", 1_700_000_000.0, 1_700_000_001.25, containers,
                  (RegistrySummary("docker.io", {"ping": 1, "token": 1, "head": 2, "get": 0}),), "1.41")


def test_json_report_validates_and_counts():
    document = json.loads(render_json(sample()))
    jsonschema.validate(document, SCHEMA)
    assert document["summary"] == {"scanned": 4, "stale": 1, "fresh": 1, "skipped": 1, "errors": 1, "outdated": 0}
    assert document["status"] == "errors" and document["duration_ms"] == 1250
    assert [c["status"] for c in document["containers"]] == ["stale", "error", "fresh", "skipped"]


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
    report = Report("tcp://h:1", 0.0, 1.0, (
        ContainerResult("id", name, image, "error", "registry-error", error=error or "x"),
        ContainerResult("id2", "plain", "img", "fresh", remote_digest=D1, local_digests=(D1,)),
    ))
    document = json.loads(render_json(report))
    jsonschema.validate(document, SCHEMA)
    assert document["containers"][0]["name"] == name
    text = render_text(report)
    assert len(text.splitlines()) == 5  # summary, blank, header, two rows
    assert not any(ch in text for ch in "\x1b\r\x00")
    markdown = render_markdown(report)
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert all(table_cells(line) == 6 for line in rows)
    assert "<script" not in markdown.lower() and "<img" not in markdown.lower()
    body = markdown.replace("<details>", "").replace("</details>", "").replace("<summary>", "").replace("</summary>", "")
    assert "<" not in body and ">" not in body.replace("->", "")

