"""scan() owns one executor: after the deadline it reports timeouts, returns, and leaves no thread behind."""
import socket
import threading
import time

import pytest
from dataclasses import replace

from engine.daemon import ContainerInfo, Listing
from engine.scan import ScanOptions, scan
from tests.unit.fakes import TablePools

DIGEST = "sha256:" + "d" * 64


class Fleet:
    endpoint = "tcp://docker.example:2376"

    def __init__(self, *images):
        self.containers = tuple(
            ContainerInfo(f"id{i}", f"c{i}", image, "sha256:" + "c" * 64, "running",
                          repo_digests=(image.rsplit(":", 1)[0] + "@" + DIGEST,))
            for i, image in enumerate(images))

    def list_containers(self, wanted=None, *, concurrency=8, progress=None, on_listed=None):
        if on_listed is not None:
            on_listed(tuple(c for c in self.containers if wanted is None or wanted(c)))
        return Listing(self.containers, "1.41")


@pytest.fixture
def silent_registry():
    """A port that accepts connections (the kernel's backlog) and never says a word."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"127.0.0.1:{server.getsockname()[1]}"


def _left_behind(before: set) -> list[threading.Thread]:
    # A cancelled per-request timer is on its way out; anything else still running outlived the scan.
    return [t for t in threading.enumerate()
            if t not in before and not (isinstance(t, threading.Timer) and t.finished.is_set())]


def test_a_silent_registry_times_out_and_the_scan_leaves_no_thread_behind(silent_registry):
    before = set(threading.enumerate())
    seen = []
    fleet = Fleet(f"{silent_registry}/app:1", f"{silent_registry}/other:2", f"{silent_registry}/third:3")
    started = time.monotonic()
    report = scan(fleet, ScanOptions(concurrency=4, timeout=1.0), progress=lambda *a: seen.append(a))
    took = time.monotonic() - started
    assert [c.reason for c in report.containers] == ["timeout"] * 3
    assert took < 1.0 + 1.0, took  # the deadline, and the in-flight requests ending by their own limits
    assert _left_behind(before) == []
    assert seen == [("registries", 0, 3)]  # the phase is announced; no lookup finished, so no count rose


def test_a_scan_without_registries_leaves_no_thread_behind():
    before = set(threading.enumerate())
    report = scan(Fleet(), ScanOptions(timeout=5))
    assert report.containers == () and _left_behind(before) == []


class PulledFleet:
    """A container the daemon lists by image ID (docker pull without a recreate): its name comes
    only from an inspect, which this source answers only once the registry has been pinged."""

    endpoint = "tcp://docker.example:2376"

    def __init__(self, pinged: threading.Event):
        self._pinged = pinged
        image_id = "sha256:" + "c" * 64
        self.listed = ContainerInfo("id0", "web", image_id, image_id, "running",
                                    repo_digests=("reg.example:5000/team/web@" + DIGEST,))
        self.inspected_before_ping = None

    def list_containers(self, wanted=None, *, concurrency=8, progress=None, on_listed=None):
        on_listed((self.listed,))
        # The inspect is "in flight": the registry's handshake must be under way beside it.
        self.inspected_before_ping = not self._pinged.wait(timeout=5)
        return Listing((replace(self.listed, image="reg.example:5000/team/web:1"),), "1.41")


def test_a_container_listed_by_image_id_has_its_registry_primed_while_the_daemon_inspects_it():
    pinged = threading.Event()

    def ping(request):
        pinged.set()
        return 200, {}, b""

    pools = TablePools([("GET", "/v2/", ping),
                        ("HEAD", "/v2/team/web/manifests/1", lambda r: (200, {"Docker-Content-Digest": DIGEST}, b""))])
    fleet = PulledFleet(pinged)
    # Tag "1" is a version: with versions on, a tags list would follow the HEAD (issue 12).
    report = scan(fleet, ScanOptions(timeout=10, versions="off"), pools=pools)
    assert fleet.inspected_before_ping is False
    assert [(c.name, c.status) for c in report.containers] == [("web", "fresh")]
    assert [r["method"] for r in pools.requests] == ["GET", "HEAD"]  # one ping, then the one HEAD


def test_a_listed_local_image_primes_no_registry():
    """A container whose image was built here (no RepoDigests) is skipped: no registry hears of it."""
    pools = TablePools([])
    local = ContainerInfo("id0", "app", "app:dev", "sha256:" + "e" * 64, "running")

    class Source(Fleet):
        containers = (local,)

        def __init__(self):
            pass

    report = scan(Source(), ScanOptions(timeout=5), pools=pools)
    assert [c.reason for c in report.containers] == ["no-repo-digest"] and pools.requests == []


def test_a_bug_in_a_lookup_or_a_tags_list_costs_one_entry_not_the_scan():
    from engine.name import parse_reference
    from engine.fleet import TagsKey, _lookup_one, _tags_one
    from engine.registry import TagLimits

    class Broken:
        def head_manifest(self, *args):
            raise ValueError("a bug")

        def list_tags(self, *args):
            raise KeyError("a bug")

    lookup = _lookup_one(Broken(), parse_reference("reg.example:5000/team/web:1"), set())
    assert lookup.error.reason == "registry-error" and "unexpected ValueError" in str(lookup.error)
    assert lookup.error.repository == "team/web"
    error = _tags_one(Broken(), TagsKey("reg.example:5000", "team/web"), TagLimits())
    assert error.reason == "registry-error" and "list tags reg.example:5000/team/web: unexpected KeyError" in str(error)
