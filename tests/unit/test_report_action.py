"""The update's action on a container: in the JSON (schema-valid), the text and the markdown."""
import json

import jsonschema

from engine.recover import mark_interrupted
from engine.report import STALE, SKIPPED, Action, ContainerResult, Report, render_json, render_markdown, render_text, schema

DIGEST_A, DIGEST_B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def report(*containers) -> Report:
    return Report.single("tcp://h:2376", 1_700_000_000.0, 1_700_000_003.0, containers)


def stale(name, action=None):
    return ContainerResult(f"{name}-id", name, f"r/{name}:1", STALE, reference=f"docker.io/r/{name}:1",
                           local_digests=(DIGEST_A,), remote_digest=DIGEST_B, action=action)


def test_an_action_is_in_the_json_and_valid_and_absent_from_a_scan():
    doc = json.loads(render_json(report(stale("web", Action("rolled-back", "unhealthy", "the health check failed",
                                                            DIGEST_A, DIGEST_B, 21480)), stale("api"))))
    jsonschema.validate(doc, schema())
    by_name = {c["name"]: c for e in doc["endpoints"] for c in e["containers"]}
    assert by_name["web"]["action"] == {"action": "rolled-back", "reason": "unhealthy",
                                        "error": "the health check failed", "old_digest": DIGEST_A,
                                        "new_digest": DIGEST_B, "duration_ms": 21480}
    assert "action" not in by_name["api"]


def test_an_unknown_action_does_not_validate():
    doc = json.loads(render_json(report(stale("web", Action("exploded")))))
    try:
        jsonschema.validate(doc, schema())
    except jsonschema.ValidationError:
        return
    raise AssertionError("an action outside the enum validated")


def test_text_and_markdown_show_the_action():
    made = report(stale("web", Action("updated", duration_ms=3100)),
                  stale("db", Action("rolled-back", "unhealthy", "the health check failed")))
    text, md = render_text(made), render_markdown(made)
    assert "updated in 3.1 s" in text and "rolled-back: unhealthy: the health check failed" in text
    assert "updated in 3.1 s" in md and "rolled-back: unhealthy" in md


def test_a_scan_marks_an_aside_container_as_an_interrupted_update():
    aside = ContainerResult("x", "web.spyglass-old", "r/web:1", SKIPPED, "not-running")
    marked = mark_interrupted(report(aside, stale("web")))
    assert marked.containers[0].action.reason == "interrupted-update"
    assert "spyglass update" in marked.containers[0].action.error and marked.containers[1].action is None
