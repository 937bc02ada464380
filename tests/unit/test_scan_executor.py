"""scan() owns one executor: after the deadline it reports timeouts, returns, and leaves no thread behind."""
import socket
import threading
import time

import pytest

from engine.daemon import ContainerInfo, Listing
from engine.scan import ScanOptions, scan

DIGEST = "sha256:" + "d" * 64


class Fleet:
    endpoint = "tcp://docker.example:2376"

    def __init__(self, *images):
        self.containers = tuple(
            ContainerInfo(f"id{i}", f"c{i}", image, "sha256:" + "c" * 64, "running",
                          repo_digests=(image.rsplit(":", 1)[0] + "@" + DIGEST,))
            for i, image in enumerate(images))

    def list_containers(self, wanted=None, *, concurrency=8, progress=None):
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
