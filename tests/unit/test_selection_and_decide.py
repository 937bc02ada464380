"""Watchtower-style selection and the per-container decision."""
import pytest

from engine.daemon import ContainerInfo
from engine.decide import Lookup, decide
from engine.errors import NotFoundError
from engine.name import parse_reference
from engine.mediatypes import Descriptor
from engine.selection import Selection, disabled_by_label, normalise_names

ENABLE, SCOPE = "com.centurylinklabs.watchtower.enable", "com.centurylinklabs.watchtower.scope"
OLD, NEW, CHILD = ("sha256:" + c * 64 for c in "abc")


def container(name="web", labels=None, digests=(), image="reg.example/app:1"):
    return ContainerInfo(id=f"id-{name}" + "0" * 60, name=name, image=image, image_id="sha256:" + "f" * 64,
                         state="running", labels=labels or {}, repo_digests=tuple(digests))


@pytest.mark.parametrize("selection, labels, name, included", [
    (Selection(), {}, "web", True),
    (Selection(names=frozenset({"web"})), {}, "web", True),
    (Selection(names=frozenset({"db"})), {}, "web", False),
    (Selection(label_enable=True), {}, "web", False),
    (Selection(label_enable=True), {ENABLE: "true"}, "web", True),
    (Selection(label_enable=True), {ENABLE: "TRUE "}, "web", True),
    (Selection(scope="prod"), {SCOPE: "prod"}, "web", True),
    (Selection(scope="prod"), {SCOPE: "dev"}, "web", False),
    (Selection(scope="prod"), {}, "web", False),
    (Selection(scope="none"), {}, "web", True),
    (Selection(scope="none"), {SCOPE: "prod"}, "web", False),
])
def test_selection(selection, labels, name, included):
    assert selection.includes(container(name, labels)) is included


def test_enable_false_is_a_skip_and_names_lose_their_slash():
    assert disabled_by_label(container(labels={ENABLE: "false"}))
    assert not disabled_by_label(container(labels={ENABLE: "true"}))
    assert normalise_names(["/web", "db", "/"]) == {"web", "db"}


REF = parse_reference("reg.example/app:1")


def test_same_digest_is_fresh():
    result = decide(container(digests=[f"reg.example/app@{OLD}"]), REF, Lookup(Descriptor(OLD, "x")))
    assert (result.status, result.remote_digest, result.local_digests) == ("fresh", OLD, (OLD,))


def test_moved_tag_is_stale():
    result = decide(container(digests=[f"reg.example/app@{OLD}"]), REF, Lookup(Descriptor(NEW, "x")))
    assert result.status == "stale" and result.reason is None


def test_an_index_that_lists_the_local_platform_manifest_is_fresh():
    lookup = Lookup(Descriptor(NEW, "application/vnd.oci.image.index.v1+json"), children=frozenset({OLD, CHILD}))
    assert decide(container(digests=[f"reg.example/app@{OLD}"]), REF, lookup).status == "fresh"


def test_an_index_without_the_local_manifest_is_stale():
    lookup = Lookup(Descriptor(NEW, "application/vnd.oci.image.index.v1+json"), children=frozenset({CHILD}))
    assert decide(container(digests=[f"reg.example/app@{OLD}"]), REF, lookup).status == "stale"


def test_digests_only_under_another_repository_cannot_decide_unless_they_match():
    other = [f"other.example/mirror@{OLD}"]
    assert decide(container(digests=other), REF, Lookup(Descriptor(OLD, "x"))).status == "fresh"
    result = decide(container(digests=other), REF, Lookup(Descriptor(NEW, "x")))
    assert (result.status, result.reason) == ("skipped", "no-repo-digest")


def test_a_lookup_error_becomes_an_error_entry_with_its_reason():
    error = NotFoundError("HEAD manifest reg.example/app:1: HTTP 404", registry="reg.example", status=404)
    result = decide(container(digests=[f"reg.example/app@{OLD}"]), REF, Lookup(error=error))
    assert (result.status, result.reason, result.error) == ("error", "not-found", str(error))
    assert result.registry == "reg.example"


def test_docker_hub_repo_digests_in_familiar_form_match():
    ref = parse_reference("nginx")
    result = decide(container(digests=[f"nginx@{OLD}"], image="nginx"), ref, Lookup(Descriptor(NEW, "x")))
    assert result.status == "stale" and result.local_digests == (OLD,)
