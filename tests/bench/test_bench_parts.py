"""The benchmark's own pieces: the delaying proxy, the floor, the fleet plan, counting, output.

No stack and no performance assertions: the proxy tests only check that a delay is
never shorter than asked (it cannot be, by construction) and that bytes, order and
half-closes survive it.
"""
from __future__ import annotations

import socket
import threading
import time

import pytest

from bench import output, plan
from bench.fleet import Fleet, rebuild_plan, universe
from bench.floor import RegistryLoad, Server, floor, head_waves
from bench.measure import PeakRss, classify, lateness, read_hwm
from bench.probe import Target, probe
from bench.proxy import Network
from bench.startup import parse_importtime
from tests.stack import RegistryRequest

DELAY = 0.02


# -- the delaying proxy --------------------------------------------------------------


class EchoServer:
    """Echoes what it reads; on EOF it sends `farewell` and closes."""

    def __init__(self, farewell: bytes = b""):
        self.farewell = farewell
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn):
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)
            conn.sendall(self.farewell)

    def close(self):
        self.sock.close()


@pytest.fixture
def echo():
    server = EchoServer(farewell=b"bye")
    yield server
    server.close()


@pytest.fixture
def network():
    started = Network(DELAY, handshake=False).start()
    yield started
    started.stop()


def _connect(front) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", front.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data.extend(chunk)
    return bytes(data)


def test_a_round_trip_through_the_proxy_takes_at_least_twice_the_delay(network, echo):
    front = network.front("echo", echo.port)
    with _connect(front) as sock:
        sock.sendall(b"warm")
        _read_exactly(sock, 4)
        started = time.monotonic()
        sock.sendall(b"x")
        assert _read_exactly(sock, 1) == b"x"
        assert time.monotonic() - started >= 2 * DELAY


def test_the_handshake_round_trip_is_added_to_a_new_connections_first_bytes(echo):
    with Network(DELAY, handshake=True) as network:
        front = network.front("echo", echo.port)
        started = time.monotonic()
        with _connect(front) as sock:
            sock.sendall(b"x")
            assert _read_exactly(sock, 1) == b"x"
        # SYN, SYN-ACK, data, answer: four one-way delays.
        assert time.monotonic() - started >= 4 * DELAY


def test_bytes_and_their_order_survive_many_small_chunks(network, echo):
    front = network.front("echo", echo.port)
    payload = bytes(range(256)) * 2000
    received = bytearray()
    with _connect(front) as sock:
        reader = threading.Thread(target=lambda: received.extend(_read_exactly(sock, len(payload))))
        reader.start()
        for i in range(0, len(payload), 1500):
            sock.sendall(payload[i:i + 1500])
        reader.join(timeout=20)
    assert bytes(received) == payload


def test_lowering_the_delay_mid_stream_does_not_reorder(network, echo):
    front = network.front("echo", echo.port)
    network.delay = 0.1
    with _connect(front) as sock:
        sock.sendall(b"first-")
        network.delay = 0.0  # a later chunk must not overtake the one still held
        sock.sendall(b"second")
        assert _read_exactly(sock, 12) == b"first-second"


def test_a_half_close_reaches_the_server_and_its_last_words_come_back(network, echo):
    front = network.front("echo", echo.port)
    with _connect(front) as sock:
        sock.sendall(b"ping")
        sock.shutdown(socket.SHUT_WR)
        assert _read_exactly(sock, 7) == b"pingbye"
        assert sock.recv(10) == b""  # then the server's close


def test_a_front_to_a_closed_port_closes_the_client(network):
    with socket.create_server(("127.0.0.1", 0)) as unused:
        dead_port = unused.getsockname()[1]
    front = network.front("nobody", dead_port)
    with _connect(front) as sock:
        try:
            assert sock.recv(10) == b""
        except ConnectionResetError:
            pass


def test_connections_are_recorded_with_their_arrivals(network, echo):
    front = network.front("echo", echo.port)
    mark, late_mark = network.mark(), network.late_mark()
    with _connect(front) as sock:
        sock.sendall(b"abc")
        _read_exactly(sock, 3)
        sock.shutdown(socket.SHUT_WR)
        _read_exactly(sock, 3)
    (record,) = network.records_since(mark)
    assert record.front == "echo"
    assert record.bytes("up") == 3 and record.bytes("down") >= 3
    assert record.times("up")[0] >= record.accepted
    assert record.last_answer() is not None
    assert all(late >= 0 for late in network.lateness_since(late_mark))


def test_stopping_the_network_closes_its_fronts(echo):
    network = Network(0.0).start()
    front = network.front("echo", echo.port)
    network.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", front.port), timeout=2).close()
    network.stop()  # twice is fine


# -- probe --------------------------------------------------------------------------


def test_the_probe_times_kept_alive_requests_through_a_front(network):
    from tests.stack.okserver import serve_ok

    server = serve_ok()
    try:
        front = network.front("http", server.server_address[1])
        result = probe(Target("http", front.port, "/", None), requests=3)
    finally:
        server.shutdown()
        server.server_close()
    assert result.tls_version is None and result.tls_round_trips == 0
    assert len(result.round_trips) == 3 and min(result.round_trips) >= 2 * DELAY


# -- the floor ----------------------------------------------------------------------

TLS13, PLAIN = Server(1), Server(0)


def test_the_floor_of_the_default_fleet_shape():
    loads = [RegistryLoad("secure", TLS13, 60, TLS13), RegistryLoad("open", TLS13, 20, None),
             RegistryLoad("plain", PLAIN, 20, None)]
    result = floor(rtt=0.05, daemon=TLS13, registries=loads, concurrency=8)
    assert result.daemon == 1 + 1 + 3  # TCP, TLS 1.3, three listing calls
    assert result.chains == {"secure": 2 + 1 + 3 + 8, "open": 2 + 1 + 3, "plain": 1 + 1 + 3}
    # All 100 HEADs share 8 slots: 13 waves after the quickest registry's set-up (plain, 2).
    assert result.registries == max(14, 2 + 13) == 15
    assert result.round_trips == 20 and result.seconds == pytest.approx(1.0)


def test_the_floor_counts_the_tags_lists_beside_the_heads():
    loads = [RegistryLoad("secure", TLS13, 60, TLS13, tags=10), RegistryLoad("open", TLS13, 20, None, tags=4),
             RegistryLoad("plain", PLAIN, 20, None, tags=4)]
    result = floor(rtt=0.05, daemon=TLS13, registries=loads, concurrency=8)
    assert result.chains == {"secure": 2 + 1 + 3 + 9, "open": 2 + 1 + 3, "plain": 1 + 1 + 3}
    # 118 requests share 8 slots: 15 waves after plain's set-up (2).
    assert result.registries == max(15, 2 + 15) == 17


def test_tls12_costs_two_round_trips_and_an_idle_registry_costs_nothing():
    loads = [RegistryLoad("old", Server(2), 8, Server(2)), RegistryLoad("idle", TLS13, 0, None)]
    result = floor(rtt=1.0, daemon=Server(2), registries=loads, concurrency=8)
    assert result.daemon == 1 + 2 + 3
    assert result.chains == {"old": 3 + 1 + 4 + 1}
    assert result.registries == 9


def test_no_registry_work_leaves_the_daemon_alone():
    assert floor(rtt=0.05, daemon=TLS13, registries=[], concurrency=8).round_trips == 5


@pytest.mark.parametrize("heads,concurrency,waves", [(0, 8, 0), (1, 8, 1), (8, 8, 1), (9, 8, 2), (100, 8, 13)])
def test_head_waves(heads, concurrency, waves):
    assert head_waves(heads, concurrency) == waves


def test_concurrency_must_be_positive():
    with pytest.raises(ValueError):
        floor(rtt=0.05, daemon=TLS13, registries=[], concurrency=0)


# -- the fleet ----------------------------------------------------------------------


@pytest.mark.parametrize("n,m,s", [(300, 100, 20), (50, 25, 20), (1000, 25, 20), (300, 300, 20), (20, 10, 5)])
def test_a_fleet_runs_n_containers_over_m_images_with_s_stale(n, m, s):
    fleet = Fleet(n, m, s)
    members = fleet.members()
    assert len(members) == n
    assert len({slot.index for slot in members.values()}) == m
    assert sum(status == "stale" for status in fleet.truth().values()) == s


def test_the_default_fleet_spreads_over_every_kind_and_registry():
    fleet = Fleet(300, 100, 20)
    assert {slot.kind for slot in fleet.slots()} == {"pub", "private", "multi", "open", "plain"}
    assert fleet.images_per_registry() == {"secure": 60, "open": 20, "plain": 20}
    expected = fleet.expected_requests()
    # 2 index slots are stale; every repository's tag is a version (v<k>): one tags list each (issue 12)
    assert expected["secure"] == {"ping": 1, "token": 1, "head": 60, "get": 8, "tags": 10}
    assert expected["plain"] == {"ping": 1, "token": 0, "head": 20, "get": 0, "tags": 4}
    assert not any(slot.stale and slot.kind == "multi" for slot in fleet.slots())


@pytest.mark.parametrize("n,m,s", [(10, 20, 5), (20, 10, 10), (20, 10, -1)])
def test_impossible_fleets_are_refused(n, m, s):
    with pytest.raises(ValueError):
        Fleet(n, m, s)


def test_fleets_of_one_run_must_agree_on_the_stale_count():
    assert len(universe([Fleet(50, 25, 20), Fleet(300, 300, 20)])) == 300
    with pytest.raises(ValueError):
        universe([Fleet(50, 25, 20), Fleet(50, 25, 10)])


def test_a_rebuild_touches_only_what_differs():
    current = {"a": 1, "b": 2, "c": 3}
    remove, create = rebuild_plan(current, {"a": 1, "b": 5, "d": 4})
    assert remove == ["b", "c"] and create == ["b", "d"]


def test_growing_the_n_sweep_keeps_every_container():
    small, large = Fleet(50, 25, 20), Fleet(300, 25, 20)
    current = {name: slot.index for name, slot in small.members().items()}
    remove, create = rebuild_plan(current, {name: slot.index for name, slot in large.members().items()})
    assert remove == [] and len(create) == 250


def test_the_plan_builds_each_fleet_once_in_an_order_that_reuses_containers():
    points = plan.points(plan.Settings())
    shapes = [(p.fleet.containers, p.fleet.images) for p in points]
    assert shapes == [(50, 25), (300, 25), (1000, 25), (300, 100), (300, 300)]
    default = points[3]
    assert default.roles == {"default", "m-sweep"} and default.runs(plan.Settings()) == 5


# -- counting and reading -----------------------------------------------------------


def test_access_log_records_are_counted_by_kind():
    records = [RegistryRequest("GET", "/v2/", 401), RegistryRequest("HEAD", "/v2/a/manifests/v1", 200),
               RegistryRequest("HEAD", "/v2/a/manifests/v2", 404), RegistryRequest("GET", "/v2/a/manifests/sha256:x", 200),
               RegistryRequest("GET", "/v2/_catalog", 200), RegistryRequest("GET", "/v2/a/tags/list?n=1000", 200)]
    assert classify(records) == {"ping": 1, "head": 2, "get": 1, "tags": 1, "other": 1, "refused": 1}


def test_the_high_water_mark_is_read_from_a_proc_status_file(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython3\nVmPeak:\t  200000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t 40000 kB\n")
    assert read_hwm(str(status)) == 51234
    assert read_hwm(str(tmp_path / "gone")) == 0


def test_the_peak_rss_of_a_child_is_its_own_not_its_parents():
    import os
    import subprocess
    import sys

    ballast = bytearray(64 * 1024 * 1024)  # the parent's pages must not count for the child
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    with PeakRss(child.pid) as peak:
        _, status, _ = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    assert 0 < peak.kib < 48 * 1024


def test_lateness_is_summarised_in_milliseconds():
    assert lateness([]) == {}
    summary = lateness([0.001] * 19 + [0.010])
    assert summary["median"] == 1.0 and summary["p95"] == 10.0 and summary["chunks"] == 20


def test_importtime_output_gives_top_level_cumulative_times():
    stderr = ("import time: self [us] | cumulative | imported package\n"
              "import time:       100 |        100 |   logging.nested\n"
              "import time:       200 |        300 | logging\n"
              "import time:        50 |       1250 | handler.cli\n")
    assert parse_importtime(stderr) == {"logging": 300, "handler.cli": 1250}


# -- output -------------------------------------------------------------------------


def _point(label, n, m, roles, wall, floor_s, rss=50.0, calls=(3,), heads=None, correct=True):
    heads = m if heads is None else heads
    requests = {"ping": 1, "token": 1, "head": heads, "get": 0}
    return {"label": label, "containers": n, "images": m, "roles": roles, "wall_median_s": wall,
            "wall_min_s": wall, "wall_max_s": wall, "cpu_median_s": 0.4, "max_rss_mib": rss,
            "engine_calls": list(calls), "ratio": wall / floor_s, "floor": {"seconds": floor_s},
            "requests": requests, "correct": correct,
            "expected_requests": {"secure": {"ping": 1, "token": 1, "head": m, "get": 0}},
            "runs": [{"registry_requests": {"secure": {"ping": 1, "head": heads, "get": 0, "other": 0,
                                                       "refused": 0}},
                      "token_requests": [{"status": 200}]}]}


def test_targets_say_by_how_much_they_are_missed():
    result = {"points": [_point("a", 50, 25, ["n-sweep"], 1.0, 0.8),
                         _point("b", 1000, 25, ["n-sweep"], 1.5, 0.8, rss=90.0),
                         _point("c", 300, 100, ["default"], 1.8, 1.0, heads=99)],
              "startup": {"import_cli": {"seconds": 0.05}}}
    verdicts = {t["target"].split(" (")[0]: t for t in output.targets(result)}
    ratio = verdicts["median wall within 1.5x of the floor at the defaults"]
    assert not ratio["met"] and ratio["missed_by"].startswith("+20% over")
    assert not verdicts["time nearly flat in N"]["met"]
    assert not verdicts["peak RSS at N=1000"]["met"]
    assert verdicts["Engine API calls constant in N"]["met"]
    requests = next(t for k, t in verdicts.items() if k.startswith("registry requests"))
    assert not requests["met"] and "secure head 99 (expected 100)" in requests["measured"][0]
    assert verdicts["CLI import"]["met"]


def test_the_tables_render_from_a_result():
    result = {"points": [_point("N=50 M=25 S=20", 50, 25, ["n-sweep"], 1.0, 0.8)],
              "settings": {"delay_ms": 25}}
    table = output.scaling_table(result)
    assert "| N | 50 | 25 | 1.000 (1.000) | 0.800 | 1.25 |" in table


def test_the_docs_section_between_the_markers_is_replaced_and_the_prose_kept(tmp_path):
    docs = tmp_path / "performance.md"
    docs.write_text(f"# Performance\n\nprose\n\n{output.DOCS_BEGIN}\nold\n{output.DOCS_END}\n\nclosing note\n")
    output.update_docs(docs, "new table")
    text = docs.read_text()
    assert "new table" in text and "old" not in text
    assert text.startswith("# Performance\n\nprose") and text.endswith("closing note\n")


def test_settling_waits_at_most_its_limit():
    from bench.measure import settle

    waited = settle(idle_share=1.01, window=0.05, limit=0.2)  # never idle enough: the limit ends it
    assert 0.2 <= waited < 1.0
    assert settle(idle_share=0.0, window=0.05, limit=5.0) < 1.0  # any window is idle enough


# -- the pulled state ------------------------------------------------------------------


def _with_pulled(point, wall, calls, listed_by_id=20, correct=True):
    point["stale"] = listed_by_id
    point["pulled"] = {"wall_median_s": wall, "to_clean": round(wall / point["wall_median_s"], 3),
                       "engine_calls": list(calls), "listed_by_id": listed_by_id, "correct": correct,
                       "runs": [{"wall_s": wall, "cpu_s": 0.4, "max_rss_mib": 40.0, "engine_calls": calls[0],
                                 "requests": {"ping": 3, "token": 1, "head": 100, "get": 8},
                                 "timeline_s": {"first_request": 0.17}, "correct": correct}],
                       "first_request_median_s": 0.17, "daemon_done_median_s": 0.5,
                       "registry_first_median_s": 0.4, "registry_done_median_s": 1.4}
    return point


def test_the_pulled_state_is_held_to_115_percent_of_the_clean_one_and_one_inspect_per_container():
    within = _with_pulled(_point("d", 300, 100, ["default"], 1.40, 1.0, calls=(4,)), 1.55, calls=(24,))
    verdicts = {t["target"].split(",")[0]: t for t in output.targets({"points": [within]})}
    assert verdicts["after docker pull without a recreate"]["met"]
    assert verdicts["Engine API calls after docker pull: the clean count + one inspect per container listed by "
                    "image ID"]["met"]
    beyond = _with_pulled(_point("d", 300, 100, ["default"], 1.00, 1.0, calls=(4,)), 1.30, calls=(4 + 20 * 2,))
    verdicts = {t["target"].split(",")[0]: t for t in output.targets({"points": [beyond]})}
    wall = verdicts["after docker pull without a recreate"]
    assert not wall["met"] and wall["measured"] == 1.3 and wall["missed_by"] == "+13% over (+0.150 s)"
    calls = next(t for k, t in verdicts.items() if k.startswith("Engine API calls after docker pull"))
    assert not calls["met"] and calls["missed_by"] == "[44] instead of [24]"


def test_a_wrong_report_in_the_pulled_state_fails_the_run():
    wrong = _with_pulled(_point("d", 300, 100, ["default"], 1.0, 1.0, calls=(4,)), 1.0, calls=(24,), correct=False)
    assert not output.all_correct({"points": [wrong]})
    assert output.all_correct({"points": [_point("d", 300, 100, ["default"], 1.0, 1.0)]})


def test_the_pulled_state_has_its_line_its_runs_and_a_timeline_row():
    point = _with_pulled(_point("N=300 M=100 S=20", 300, 100, ["default"], 1.40, 1.0, calls=(4,)), 1.54,
                         calls=(24,))
    point.update(first_request_median_s=0.17, daemon_done_median_s=0.3, registry_first_median_s=0.35,
                 registry_done_median_s=1.38)
    assert output.pulled_line(point).endswith("**1.10x the clean state** (1.400 s).")
    assert "| 1 | 1.540 | 0.400 | 40.0 | 24 | 3 | 1 | 100 | 8 | 0.170 | yes |" in output.runs_table(point, "pulled")
    timeline = output.timeline_table({"points": [point], "settings": {"delay_ms": 25}})
    assert "| N=300 M=100 S=20 pulled | 25 | 0.170 | 0.500 | 0.400 | 1.400 | 1.540 |" in timeline


def test_the_quick_run_measures_the_pulled_state_too():
    quick, full = plan.Settings(**plan.QUICK, quick=True), plan.Settings()
    assert quick.pulled_runs == 1 and full.pulled_runs == full.runs
    assert quick.stale >= 1  # a pulled state needs stale tags to pull


# -- the fleet sweep (bench/fleetsweep.py) -------------------------------------------------------

def test_the_fleet_sweep_checks_every_endpoint_and_its_targets(tmp_path):
    import json as _json

    from bench.fleetsweep import _every_endpoint_right, targets

    truth = {"a": "fresh", "b": "stale"}
    report = {"endpoints": [{"containers": [{"name": "a", "status": "fresh"}, {"name": "b", "status": "stale"}]}] * 2}
    path = tmp_path / "r.json"
    path.write_text(_json.dumps(report))
    assert _every_endpoint_right(path, truth, 2) and not _every_endpoint_right(path, truth, 3)
    report["endpoints"][1] = {"containers": [{"name": "a", "status": "fresh"}]}
    path.write_text(_json.dumps(report))
    assert not _every_endpoint_right(path, truth, 2)
    same = {"ping": 3, "token": 1, "head": 25}
    points = [{"endpoints": 1, "ratio": 1.2, "requests": same}, {"endpoints": 8, "ratio": 1.6, "requests": same}]
    wall, requests = targets(points)
    assert (wall["met"], requests["met"]) == (False, True) and "K=8" in wall["measured"]
    points[1] = {"endpoints": 8, "ratio": 1.4, "requests": dict(same, head=26)}
    wall, requests = targets(points)
    assert (wall["met"], requests["met"]) == (True, False)
