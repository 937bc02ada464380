"""Every engine and image store, decided from the answers the engines really gave.

The fixtures (tests/unit/fixtures/engines/, written by `python -m tests.engines.capture`) hold,
for the machine's own engine and Debian's 26 and 28 with the classic and the containerd store,
the Engine API's answers after the demo fleet and the pull-without-recreate phase, and what the
registries answered for each tag. A fake SDK client answers from them (and counts the calls), a
table transport plays the registries, and the real listing and scan decide every container.
"""
from __future__ import annotations

import copy
import json
import threading
from pathlib import Path

import docker.errors
import pytest

from engine.daemon import CLASSIC, CONTAINERD, ContainerInfo, DaemonSettings, DockerDaemon, image_store
from engine.decide import Lookup, decide, local_digests
from engine.mediatypes import Descriptor
from engine.name import parse_reference
from engine.scan import ScanOptions, scan
from tests.unit.fakes import TablePools

FIXTURES = Path(__file__).parent / "fixtures" / "engines"
ENGINES = sorted(path.name.removesuffix("-pulled.json") for path in FIXTURES.glob("*-pulled.json"))
INDEX = "application/vnd.oci.image.index.v1+json"


def fixture(engine: str) -> dict:
    return json.loads((FIXTURES / f"{engine}-pulled.json").read_text())


class FixtureEngine:
    """A client factory for DockerDaemon: every client answers from one captured engine."""

    def __init__(self, answers: dict):
        self.answers = answers
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, settings, version=None):
        return _FixtureClient(self, version)

    def record(self, call: str) -> None:
        with self._lock:
            self.calls.append(call)


class _FixtureClient:
    base_url = "https://daemon.test:2376"

    def __init__(self, engine: FixtureEngine, version: str | None):
        self._engine, self._answers = engine, engine.answers
        if version is None:
            engine.record("GET /version")
        self.api_version = version or self._answers["api_version"]

    def containers(self, all=False):
        self._engine.record("GET /containers/json")
        return copy.deepcopy(self._answers["containers"])

    def images(self):
        self._engine.record("GET /images/json")
        return copy.deepcopy(self._answers["images"])

    def inspect_image(self, image_id):
        self._engine.record("inspect image")
        answer = self._answers["image_inspect"][image_id]
        if answer.get("status") == 404:
            raise docker.errors.NotFound(answer["message"], explanation=answer["message"])
        return copy.deepcopy(answer)

    def inspect_container(self, container_id):
        self._engine.record("inspect container")
        return copy.deepcopy(self._answers["container_inspect"][container_id])

    def close(self):
        pass


def registry_rules(answers: dict) -> list:
    """The registries as captured: each tag's HEAD, each index's GET, a ping that asks for nothing."""
    heads, indexes = {}, {}
    for reference, answer in answers.items():
        repository, tag = reference.split("/", 1)[1].rsplit(":", 1)
        heads[f"/v2/{repository}/manifests/{tag}"] = answer
        if answer and "body" in answer:
            indexes[f"/v2/{repository}/manifests/{answer['digest']}"] = answer

    def head(request):
        answer = heads.get(request["path"])
        if answer is None:
            return 404, {"Content-Type": "application/json"}, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}'
        return 200, {"Docker-Content-Digest": answer["digest"], "Content-Type": answer["media_type"]}, b""

    def get(request):
        if request["path"] == "/v2/":
            return 200, {}, b"{}"
        answer = indexes[request["path"]]
        return 200, {"Docker-Content-Digest": answer["digest"], "Content-Type": answer["media_type"]}, \
            answer["body"].encode()

    return [("HEAD", "/v2/", head), ("GET", "/v2/", get)]


def scanned(engine: str) -> tuple[dict, FixtureEngine, object]:
    answers = fixture(engine)
    sdk = FixtureEngine(answers)
    daemon = DockerDaemon(DaemonSettings("tcp://daemon.test:2376"), client_factory=sdk)
    report = scan(daemon, ScanOptions(versions="off"), pools=TablePools(registry_rules(answers["registry"])))
    return answers, sdk, report


@pytest.mark.parametrize("engine", ENGINES)
def test_every_container_gets_its_expected_verdict(engine):
    answers, _, report = scanned(engine)
    found = {c.name: [c.status, c.reason] for c in report.containers}
    assert {name: found.get(name) for name in answers["expected"]} == answers["expected"]


@pytest.mark.parametrize("engine", ENGINES)
def test_the_engine_api_calls_are_constant_but_for_containers_listed_by_image_id(engine):
    answers, sdk, _ = scanned(engine)
    listed_by_id = len(answers["container_inspect"])
    assert listed_by_id >= 2  # the moved and the repointed containers at least (and multi, classic 20.10 aside)
    listed = {image["Id"] for image in answers["images"]}
    missing = {c["ImageID"] for c in answers["containers"] if c["ImageID"] not in listed}
    image_inspects = 0 if engine.endswith("containerd") else len(missing)
    assert sorted(sdk.calls) == sorted(["GET /version", "GET /version", "GET /containers/json", "GET /images/json"]
                                       + ["inspect container"] * listed_by_id
                                       + ["inspect image"] * image_inspects)


def test_engine_26_with_the_containerd_store_answers_404_for_images_that_only_containers_still_name():
    # What made spyglass report daemon-error: now no inspect is asked for, and the ImageID decides.
    answers = fixture("26-containerd")
    gone = [image_id for image_id, answer in answers["image_inspect"].items() if answer.get("status") == 404]
    assert gone and {c["Names"][0] for c in answers["containers"] if c["ImageID"] in gone} >= {"/moved", "/repointed"}
    _, sdk, _ = scanned("26-containerd")
    assert "inspect image" not in sdk.calls


def store_by_info(info: dict) -> str:
    """What /info says (captured beside the lists): a containerd snapshotter as the storage driver."""
    return CONTAINERD if ["driver-type", "io.containerd.snapshotter.v1"] in (info["DriverStatus"] or []) else CLASSIC


@pytest.mark.parametrize("engine", ENGINES)
def test_the_lists_tell_the_image_store_that_info_names(engine):
    answers = fixture(engine)
    images = {image["Id"]: image for image in answers["images"]}
    assert store_by_info(answers["info"]) == (CONTAINERD if engine.endswith("containerd") else CLASSIC)
    assert image_store(answers["containers"], images) == store_by_info(answers["info"])


def test_engine_26_tells_its_containerd_store_by_an_image_id_that_is_a_repo_digest_alone():
    answers = fixture("26-containerd")
    named = [image for image in answers["images"] if image["RepoDigests"]][:1]
    assert image_store([], {image["Id"]: image for image in named}) == CONTAINERD
    # nameless images only (every one lost its name to a newer pull): the classic rules, at worst a skip
    nameless = {image["Id"]: dict(image, RepoDigests=[], RepoTags=[]) for image in named}
    assert image_store(answers["containers"], nameless) == CLASSIC


def test_only_engine_28_names_the_platform_manifest_and_then_it_is_a_local_digest():
    for engine in ENGINES:
        described = [c for c in fixture(engine)["containers"] if "ImageManifestDescriptor" in c]
        assert bool(described) == (engine == "28-containerd"), engine
    _, _, report = scanned("28-containerd")
    (multi_new,) = [c for c in report.containers if c.name == "multi-new"]
    (answers,) = [c for c in fixture("28-containerd")["containers"] if c["Names"] == ["/multi-new"]]
    # an index digest (the ImageID) and the platform manifest it runs, both this repository's
    assert set(multi_new.local_digests) == {answers["ImageID"], answers["ImageManifestDescriptor"]["digest"]}
    assert len(multi_new.local_digests) == 2


# -- the shapes the containerd store may give, beyond what the matrix happened to produce ------------

INDEX_DIGEST, MANIFEST, NEWER_INDEX, OTHER = ("sha256:" + c * 64 for c in "1234")
REFERENCE = parse_reference("registry.test/team/app:1")


def containerd_container(**changes) -> ContainerInfo:
    values = dict(id="c1", name="app", image=str(REFERENCE), image_id=INDEX_DIGEST, state="running",
                  manifest_digests=(INDEX_DIGEST, MANIFEST))
    return ContainerInfo(**(values | changes))


def test_repo_digests_of_other_repositories_and_duplicates_neither_repeat_nor_hide_the_image_id():
    container = containerd_container(repo_digests=(
        f"registry.test/team/app@{INDEX_DIGEST}", f"registry.test/team/app@{INDEX_DIGEST}",
        f"registry.test/other/copy@{INDEX_DIGEST}", "registry.test/team/app@sha256:not-a-digest"))
    assert local_digests(container, REFERENCE) == [INDEX_DIGEST, MANIFEST]
    result = decide(container, REFERENCE, Lookup(Descriptor(OTHER, INDEX)))
    assert (result.status, result.local_digests) == ("stale", (INDEX_DIGEST, MANIFEST))


def test_a_newer_index_that_still_lists_the_platform_manifest_keeps_the_container_fresh():
    lookup = Lookup(Descriptor(NEWER_INDEX, INDEX), children=frozenset({MANIFEST, OTHER}))
    assert decide(containerd_container(), REFERENCE, lookup).status == "fresh"
    # Engine 26 names no platform manifest: only the index it was pulled as is known, which moved
    assert decide(containerd_container(manifest_digests=(INDEX_DIGEST,)), REFERENCE, lookup).status == "stale"


def test_repo_tags_with_digest_entries_are_not_read_as_names():
    # The containerd store may list "repo@sha256:..." among RepoTags (an image pulled by digest);
    # the listing reads neither RepoTags nor an image's name from them: the container's own reference decides.
    from engine.daemon import _summary_info

    summary = {"Id": "c1", "Names": ["/app"], "Image": str(REFERENCE), "ImageID": INDEX_DIGEST, "State": "running"}
    images = {INDEX_DIGEST: {"Id": INDEX_DIGEST, "RepoTags": [f"registry.test/team/app@{INDEX_DIGEST}",
                                                              "registry.test/team/app:1"],
                             "RepoDigests": [f"registry.test/team/app@{INDEX_DIGEST}"] * 2}}
    info = _summary_info(summary, images, CONTAINERD)
    assert info.repo_digests == (f"registry.test/team/app@{INDEX_DIGEST}",)
    assert info.manifest_digests == (INDEX_DIGEST,) and not info.listed_by_id


def test_the_classic_store_never_takes_the_image_id_for_a_manifest_digest():
    from engine.daemon import _summary_info

    summary = {"Id": "c1", "Names": ["/app"], "Image": str(REFERENCE), "ImageID": INDEX_DIGEST, "State": "running",
               "ImageManifestDescriptor": {"digest": MANIFEST}}
    assert _summary_info(summary, {}, CLASSIC).manifest_digests == ()
