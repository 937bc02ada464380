"""Putting a fleet on the distant stack: images once, then containers per fleet size.

    publish(stack, slots)     every image pushed through the fronts (at delay 0);
                              then, in the registries only, stale tags moved to a
                              spare image of their repository, and index tags made
                              into a two-platform index over the pushed manifest
    reconcile(stack, fleet)   remove the containers whose slot differs, create the
                              missing ones: the daemon holds exactly the fleet
    pulled(stack, fleet)      (a context) docker pull of each stale tag the fleet runs,
                              nothing recreated: the daemon then lists those containers
                              by image ID, as Watchtower's monitor-only mode leaves them;
                              the local tags are put back afterwards
"""
from __future__ import annotations

import contextlib
import platform
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tests.stack import ContainerSpec, Platform, run_containers
from tests.stack.images import pull

from .distant import DistantStack
from .fleet import SLOT_LABEL, Fleet, Slot, rebuild_plan

WORKERS = 4  # the daemon's own measure: 4 threads beat 1 and 8 on 2 cores
SPARE_TAG = "spare"


@dataclass(frozen=True)
class BuildStep:
    created: int
    removed: int
    seconds: float

    def as_dict(self) -> dict:
        return {"created": self.created, "removed": self.removed, "seconds": round(self.seconds, 2)}


def publish(stack: DistantStack, slots: list[Slot]) -> float:
    """Push every slot's image, then move stale tags and make indexes; returns seconds spent."""
    started = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda s: stack.publish_to(s.registry, s.repository, s.tag, s.variant), slots))
    _move_stale_tags(stack, [s for s in slots if s.stale])
    _make_indexes(stack, [s for s in slots if s.kind == "multi"])
    return time.monotonic() - started


def _move_stale_tags(stack: DistantStack, stale: list[Slot]) -> None:
    by_repository: dict[tuple[str, str], list[Slot]] = defaultdict(list)
    for s in stale:
        by_repository[(s.registry, s.repository)].append(s)
    for (registry, repository), moved in by_repository.items():
        stack.publish_to(registry, repository, SPARE_TAG, f"spare-{registry}-{repository}")
        with stack.http(registry) as http:
            for s in moved:
                http.copy_tag(repository, SPARE_TAG, s.tag)


def _make_indexes(stack: DistantStack, multi: list[Slot]) -> None:
    native, foreign = _platforms()
    foreign_manifests = {}
    with stack.http("secure") as http:
        for s in multi:
            if s.repository not in foreign_manifests:
                foreign_manifests[s.repository] = http.push_synthetic_image(
                    s.repository, foreign, f"foreign-{s.repository}")
            manifest = http.describe(s.repository, s.tag)
            http.put_index(s.repository, s.tag, [(manifest, native), (foreign_manifests[s.repository], foreign)])


def _platforms() -> tuple[Platform, Platform]:
    arm64, amd64 = Platform("linux", "arm64", "v8"), Platform("linux", "amd64")
    return (arm64, amd64) if platform.machine() in ("aarch64", "arm64") else (amd64, arm64)


def reconcile(stack: DistantStack, fleet: Fleet) -> BuildStep:
    """Make the daemon's containers exactly the fleet's, touching only what differs."""
    started = time.monotonic()
    client = stack.daemon.admin
    listed = client.containers(all=True, filters={"label": SLOT_LABEL})
    ids = {c["Names"][0].lstrip("/"): c["Id"] for c in listed}
    current = {c["Names"][0].lstrip("/"): int(c["Labels"][SLOT_LABEL]) for c in listed}
    members = fleet.members()
    remove, create = rebuild_plan(current, {name: s.index for name, s in members.items()})
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda name: client.remove_container(ids[name], force=True), remove))
    specs = [ContainerSpec(name, image_reference(stack, members[name]), {SLOT_LABEL: str(members[name].index)})
             for name in create]
    run_containers(client, specs, workers=WORKERS)
    return BuildStep(len(create), len(remove), time.monotonic() - started)


@contextlib.contextmanager
def pulled(stack: DistantStack, fleet: Fleet):
    """Inside the block the fleet's stale tags are pulled anew; yields how many containers the daemon
    now lists by image ID. The old images get their tags back at the end, so later fleets start
    their containers from the images the truth expects."""
    client = stack.daemon.admin
    stale = [s for s in fleet.slots() if s.stale]
    before = {s: client.inspect_image(image_reference(stack, s))["Id"] for s in stale}
    try:
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(lambda s: pull(client, _repository(stack, s), s.tag, _auth(stack, s)), stale))
        listed = client.containers(filters={"label": SLOT_LABEL})
        yield sum(c["Image"].startswith("sha256:") for c in listed)
    finally:
        for s, image_id in before.items():
            client.tag(image_id, _repository(stack, s), s.tag, force=True)


def image_reference(stack: DistantStack, s: Slot) -> str:
    return f"{_repository(stack, s)}:{s.tag}"


def _repository(stack: DistantStack, s: Slot) -> str:
    return f"{stack.address(s.registry)}/{s.repository}"


def _auth(stack: DistantStack, s: Slot) -> dict | None:
    return stack.admin_account.auth_config() if s.registry == "secure" else None
