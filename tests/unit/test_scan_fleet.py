"""scan_fleet: many endpoints, one report; each reference looked up once; a failing endpoint isolated.

Sources are fakes (the real daemons are in tests/integration/test_fleet.py); the registry is a
table transport that fails on anything unexpected.
"""
import threading
from collections import Counter

from engine.daemon import ContainerInfo, Listing
from engine.errors import DaemonError
from engine.scan import Endpoint, ScanOptions, scan_fleet
from engine.selection import Selection
from tests.unit.fakes import TablePools

REGISTRY = "reg.example:5000"
D_APP, D_DB, D_OLD = ("sha256:" + c * 64 for c in "abc")


def running(name: str, image: str, digest: str, **labels) -> ContainerInfo:
    repository = image.rsplit(":", 1)[0]
    return ContainerInfo(f"id-{name}", name, image, "sha256:" + "f" * 64, "running", labels=labels,
                         repo_digests=(f"{repository}@{digest}",))


class Host:
    def __init__(self, endpoint: str, *containers: ContainerInfo, fails: Exception | None = None,
                 gate: threading.Event | None = None):
        self.endpoint = endpoint
        self.containers = containers
        self.fails = fails
        self.gate = gate
        self.calls = 0

    def list_containers(self, wanted=None, *, concurrency=8, progress=None, on_listed=None):
        self.calls += 1
        if self.gate is not None:
            assert self.gate.wait(5), "the gate was never opened"
        if self.fails is not None:
            raise self.fails
        if on_listed is not None:
            on_listed(tuple(c for c in self.containers if wanted is None or wanted(c)))
        return Listing(self.containers, "1.41")


def registry(on_head=None) -> TablePools:
    digests = {"/v2/app/manifests/1.4": D_APP, "/v2/db/manifests/2": D_DB}

    def head(request):
        if on_head is not None:
            on_head(request)
        return 200, {"Docker-Content-Digest": digests[request["path"]]}, b""

    return TablePools([("GET", "/v2/", lambda r: (200, {}, b"")), ("HEAD", "/v2/", head)])


def test_each_distinct_reference_is_asked_once_for_the_whole_fleet():
    pools = registry()
    hosts = [Host(f"tcp://web-{i}:2376", running("app", f"{REGISTRY}/app:1.4", D_APP if i % 2 else D_OLD),
                  running("db", f"{REGISTRY}/db:2", D_DB)) for i in range(6)]
    report = scan_fleet([Endpoint(h, name=f"web-{i}") for i, h in enumerate(hosts)],
                        ScanOptions(timeout=10, versions="off"), name="prod", pools=pools)
    assert Counter(r["method"] for r in pools.requests) == {"GET": 1, "HEAD": 2}  # one ping, one HEAD per image
    assert report.name == "prod" and report.summary["endpoints"] == 6 and report.summary["stale"] == 3
    assert [e.status for e in report.endpoints] == ["stale", "ok"] * 3
    assert [e.display_name for e in report.endpoints] == [f"web-{i}" for i in range(6)]
    (summary,) = report.registries
    assert summary.requests["head"] == 2 and summary.requests["ping"] == 1


def test_an_endpoint_that_cannot_be_listed_is_an_entry_and_the_others_complete():
    pools = registry()
    refused = DaemonError("list containers on tcp://down:2376: connection refused", reason="connection-refused",
                          unreachable=True)
    hosts = [Host("tcp://up:2376", running("app", f"{REGISTRY}/app:1.4", D_APP)),
             Host("tcp://down:2376", fails=refused),
             Host("tcp://odd:2376", fails=DaemonError("list containers on tcp://odd:2376: 500 boom",
                                                      reason="daemon-refused")),
             Host("tcp://buggy:2376", fails=KeyError("a bug"))]
    report = scan_fleet([Endpoint(h) for h in hosts], ScanOptions(timeout=10, versions="off"), pools=pools)
    up, down, odd, buggy = report.endpoints
    assert up.status == "ok" and up.containers[0].status == "fresh"
    assert (down.status, down.reason, down.error) == ("unreachable", "connection-refused", str(refused))
    assert (odd.status, odd.reason) == ("error", "daemon-refused")
    assert (buggy.status, buggy.reason) == ("error", "daemon-error") and "unexpected KeyError" in buggy.error
    assert report.summary["unreachable"] == 3 and report.status == "errors" and report.listed_any


def test_a_fleet_of_one_that_cannot_be_listed_is_a_report_too():
    report = scan_fleet([Endpoint(Host("tcp://down:2376", fails=DaemonError("x", reason="timeout", unreachable=True)))],
                        ScanOptions(timeout=5), pools=registry())
    assert not report.listed_any and report.name == "tcp://down:2376" and report.endpoints[0].reason == "timeout"


def test_each_endpoint_keeps_its_own_selection():
    pools = registry()
    containers = (running("app", f"{REGISTRY}/app:1.4", D_APP), running("db", f"{REGISTRY}/db:2", D_DB))
    fleet = [Endpoint(Host("tcp://a:2376", *containers)),
             Endpoint(Host("tcp://b:2376", *containers), selection=Selection(names=frozenset({"db"})))]
    report = scan_fleet(fleet, ScanOptions(timeout=10, versions="off"), pools=pools)
    assert [[c.name for c in e.containers] for e in report.endpoints] == [["app", "db"], ["db"]]


def test_the_registry_is_pinged_while_a_slow_endpoint_is_still_listing():
    """The first listing starts the registry's handshake; the slow endpoint lists only once it has."""
    slow_gate = threading.Event()

    def ping(request):
        slow_gate.set()
        return 200, {}, b""

    pools = TablePools([("GET", "/v2/", ping), ("HEAD", "/v2/", registry().rules[1][2])])
    fast = Host("tcp://fast:2376", running("app", f"{REGISTRY}/app:1.4", D_APP))
    slow = Host("tcp://slow:2376", running("db", f"{REGISTRY}/db:2", D_DB), gate=slow_gate)
    report = scan_fleet([Endpoint(slow), Endpoint(fast)], ScanOptions(timeout=10, versions="off"), pools=pools)
    assert [e.status for e in report.endpoints] == ["ok", "ok"]
    assert [r["method"] for r in pools.requests] == ["GET", "HEAD", "HEAD"]


def test_a_hung_endpoint_does_not_hold_the_others_lookups_and_is_reported_when_it_ends():
    """The registries wait for a straggler no longer than twice the others' listings (at least 1 s);
    a listing under way at the deadline is waited for (the shutdown would wait anyway), its
    lookups timeouts."""
    never = threading.Event()
    stuck = Host("tcp://stuck:2376", running("db", f"{REGISTRY}/db:2", D_DB), gate=never)
    fine = Host("tcp://fine:2376", running("app", f"{REGISTRY}/app:1.4", D_APP))
    unblock = threading.Timer(3.0, never.set)  # the stuck listing ends after the deadline
    unblock.start()
    pools = registry()
    try:
        report = scan_fleet([Endpoint(stuck), Endpoint(fine)], ScanOptions(timeout=2.0, versions="off"),
                            pools=pools)
    finally:
        unblock.cancel()
        never.set()
    stuck_result, fine_result = report.endpoints
    assert fine_result.status == "ok"
    assert [(c.status, c.reason) for c in stuck_result.containers] == [("error", "timeout")]
    assert [r["path"] for r in pools.requests if r["method"] == "HEAD"] == ["/v2/app/manifests/1.4"]


def test_a_listing_the_deadline_left_unstarted_is_a_timeout_entry():
    slow = threading.Event()
    hosts = [Endpoint(Host("tcp://slow:2376", gate=slow)), Endpoint(Host("tcp://queued:2376"))]
    timer = threading.Timer(1.5, slow.set)
    timer.start()
    try:
        report = scan_fleet(hosts, ScanOptions(timeout=0.5, endpoint_concurrency=1), pools=registry())
    finally:
        timer.cancel()
        slow.set()
    slow_result, queued = report.endpoints
    assert slow_result.status == "ok" and (queued.status, queued.reason) == ("unreachable", "timeout")


def test_endpoint_concurrency_bounds_the_listings_at_once():
    now, most = 0, 0
    lock = threading.Lock()

    class Counted(Host):
        def list_containers(self, *args, **kwargs):
            nonlocal now, most
            with lock:
                now += 1
                most = max(most, now)
            try:
                threading.Event().wait(0.05)
                return super().list_containers(*args, **kwargs)
            finally:
                with lock:
                    now -= 1

    hosts = [Endpoint(Counted(f"tcp://h{i}:2376")) for i in range(9)]
    scan_fleet(hosts, ScanOptions(timeout=10, endpoint_concurrency=3), pools=registry())
    assert most == 3
