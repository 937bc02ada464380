"""Tags-list faults, injected by the proxy: each is a versions_error on the containers of the
repository it hits, and nothing else changes (every status is still its baseline).

The fault world's containers run tag "1", a major-only version tag, so every scan lists tags.
"""
from __future__ import annotations

import json

import pytest

from .proxy import Rule, drip, huge, respond, rewrite, with_headers

TARGET_TAGS = r"^GET /v2/faults/target/tags/list"
OK_TAGS = r"^GET /v2/faults/ok/tags/list"


def _garbage(answer) -> None:
    answer.body = b"<html>not a tags list</html>"


def check_only_target(world, result, why: str) -> None:
    world.check(result, {})  # every status is its baseline: the version check never changes it
    found = result.by_name()
    assert why in (found["f-target"]["versions_error"] or ""), found["f-target"]
    assert found["f-target"]["newer"] is None
    assert {name: c["versions_error"] for name, c in found.items() if name != "f-target"} == \
        {name: None for name in found if name != "f-target"}


@pytest.mark.parametrize("action, why", [
    (respond(503, body=b'{"errors":[{"code":"UNAVAILABLE"}]}'), "HTTP 503"),
    (respond(429), "429"),
    (huge(64 * 1024 * 1024, prefix=b'{"tags": ["'), "larger than"),
    (rewrite(_garbage), "not valid JSON"),
    (with_headers({"Link": '</v2/faults/target/tags/list?n=1000>; rel="next"'}), "already read"),
], ids=["5xx", "429", "huge", "garbage", "link-loop"])
def test_a_tags_list_fault_is_a_versions_error_on_that_repository_only(world, action, why):
    with world.proxy.rules(Rule(TARGET_TAGS, action)):
        result = world.scan()
    check_only_target(world, result, why)


def test_a_5xx_tags_list_is_retried_like_a_manifest(world):
    with world.proxy.rules(Rule(TARGET_TAGS, respond(503))):
        world.scan()
        assert len(world.proxy.seen(TARGET_TAGS)) == 3


def test_a_slow_drip_ends_as_a_timeout_on_the_version_check_only(world):
    with world.proxy.rules(Rule(TARGET_TAGS, drip(0.5))):
        result = world.scan(timeout=4)
    world.check(result, {})
    assert "deadline" in result.by_name()["f-target"]["versions_error"] or \
        "timed out" in result.by_name()["f-target"]["versions_error"]


def test_pages_are_followed_through_the_link_header(world):
    first = respond(200, {"Link": '</v2/faults/ok/tags/list?n=1000&last=1>; rel="next"'},
                    json.dumps({"name": "faults/ok", "tags": ["0", "1"]}).encode())
    second = respond(200, {}, json.dumps({"name": "faults/ok", "tags": ["2", "3", "3-rc1", "latest"]}).encode())
    with world.proxy.rules(Rule(OK_TAGS + r"\?n=1000&last=1$", second), Rule(OK_TAGS + r"\?n=1000$", first)):
        result = world.scan()
        pages = world.proxy.seen(OK_TAGS)
    world.check(result, {})
    newer = {name: c["newer"] for name, c in result.by_name().items()}
    assert newer["f-ok"] == {"patch": None, "minor": None, "major": "3"}
    assert newer["f-direct"] == {"patch": None, "minor": None, "major": None}  # the registry itself: tag 1 only
    # two pages per registry name the proxy serves (P, and H:p when the machine has a host name)
    assert len(pages) == 2 * sum(1 for name in ("f-ok", "f-named") if name in newer and newer[name]["major"] == "3")
