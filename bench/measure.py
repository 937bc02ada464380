"""One `spyglass scan` as a child process, measured from outside.

    wall time      spawn to reaped (time.monotonic)
    CPU            os.wait4's rusage of that child (ru_utime + ru_stime)
    peak RSS       VmHWM of the child's own address space, read from /proc while it runs
                   (ru_maxrss will not do: the kernel carries the parent's high-water mark
                   across fork and exec, and this parent holds a fleet's worth of records)
    Engine calls   the daemon's debug log since a mark
    registry       each registry's access log since a mark (ping, HEAD, GET of manifests,
                   anything else), the token server's own records
    timeline       the fronts' connection records: when the first request reached the
                   daemon and each registry, and their last answers
    correct        the JSON report against the fleet's truth, container by container
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .distant import REGISTRIES, DistantStack
from .proxy import ConnectionRecord

SETTLE_POLL = 0.05  # seconds between reads of the logs while they still grow
SETTLE_LIMIT = 2.0


@dataclass
class Run:
    wall: float
    cpu: float
    user: float
    system: float
    max_rss_kib: int
    exit_code: int
    engine_calls: list[str]
    registry_requests: dict[str, dict[str, int]]  # registry -> kind -> count
    token_requests: list[dict]
    timeline: dict[str, float | None]
    connections: dict[str, int]
    correct: bool
    mismatches: list[str] = field(default_factory=list)
    stderr_tail: str = ""
    load_before: float = 0.0
    proxy_late_ms: dict[str, float] = field(default_factory=dict)  # median and p95 of chunk lateness

    def as_dict(self) -> dict:
        return {
            "wall_s": round(self.wall, 4), "cpu_s": round(self.cpu, 4), "user_s": round(self.user, 4),
            "system_s": round(self.system, 4), "max_rss_mib": round(self.max_rss_kib / 1024, 1),
            "exit_code": self.exit_code, "engine_calls": len(self.engine_calls),
            "engine_call_paths": self.engine_calls, "registry_requests": self.registry_requests,
            "requests": self.requests_by_kind(), "token_requests": self.token_requests,
            "timeline_s": {k: (round(v, 4) if v is not None else None) for k, v in self.timeline.items()},
            "connections": self.connections, "correct": self.correct, "mismatches": self.mismatches[:10],
            "stderr_tail": self.stderr_tail, "load_before": round(self.load_before, 2),
            "proxy_late_ms": self.proxy_late_ms,
        }

    def requests_by_kind(self) -> dict[str, int]:
        total = Counter()
        for counts in self.registry_requests.values():
            total.update({k: v for k, v in counts.items() if k in ("ping", "head", "get", "tags", "other", "refused")})
        total["token"] = len(self.token_requests)
        return {k: total[k] for k in ("ping", "token", "head", "get", "tags", "other", "refused")}


@dataclass(frozen=True)
class Marks:
    daemon: int
    registries: dict[str, int]
    token: int
    network: int
    late: int


def take_marks(stack: DistantStack) -> Marks:
    return Marks(stack.daemon.mark(), {name: stack.registry(name).mark() for name in REGISTRIES},
                 stack.token_server.mark(), stack.network.mark(), stack.network.late_mark())


def run_scan(stack: DistantStack, command: Sequence[str], *, truth: Mapping[str, str], workdir: Path,
             tag: str, tree: Path | None = None) -> Run:
    """Run `command` (spyglass scan ... -o json) once and measure it; `tree`: import spyglass from there."""
    workdir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = workdir / f"{tag}.json", workdir / f"{tag}.stderr"
    marks = take_marks(stack)
    load = os.getloadavg()[0]
    env = os.environ | stack.env() | ({"PYTHONPATH": str(tree)} if tree else {})
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.monotonic()
        child = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                 cwd=tree or workdir)
        with PeakRss(child.pid) as peak:
            _, status, usage = os.wait4(child.pid, 0)
        wall = time.monotonic() - started
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    calls, registry_log, tokens = _settled(stack, marks)
    records = stack.network.records_since(marks.network)
    correct, mismatches = _check(out_path, truth, child.returncode)
    return Run(
        wall=wall, cpu=usage.ru_utime + usage.ru_stime, user=usage.ru_utime, system=usage.ru_stime,
        max_rss_kib=peak.kib, exit_code=child.returncode,
        engine_calls=[f"{c.method} {c.path.split('?')[0]}" for c in calls],
        registry_requests={name: classify(requests) for name, requests in registry_log.items()},
        token_requests=[{"method": t.method, "scopes": len(t.scopes), "user": t.username, "status": t.status}
                        for t in tokens],
        timeline=timeline(records, started, wall, stack.network.delay), connections=dict(Counter(r.front for r in records)),
        correct=correct, mismatches=mismatches, stderr_tail=_tail(err_path), load_before=load,
        proxy_late_ms=lateness(stack.network.lateness_since(marks.late)))


def settle(*, idle_share: float = 0.6, window: float = 1.0, limit: float = 60.0) -> float:
    """Wait until the CPUs were at least `idle_share` idle over one `window`, for at most `limit`
    seconds; returns the seconds waited.

    Building a fleet starts hundreds of containers: dockerd and their shims keep the CPUs busy
    for a while after the API calls return, and scans measured in that tail measure it too.
    """
    started = time.monotonic()
    while True:
        before = _cpu_times()
        time.sleep(window)
        after = _cpu_times()
        busy, idle = (a - b for a, b in zip(after, before))
        waited = time.monotonic() - started
        if busy + idle == 0 or idle / (busy + idle) >= idle_share or waited >= limit:
            return waited


def _cpu_times() -> tuple[int, int]:
    """(busy, idle) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, idle


def lateness(values: list[float]) -> dict[str, float]:
    """Median and 95th percentile, in ms, of how late the proxy forwarded chunks."""
    if not values:
        return {}
    ordered = sorted(values)
    return {"median": round(ordered[len(ordered) // 2] * 1000, 3),
            "p95": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000, 3),
            "chunks": len(ordered)}


class PeakRss:
    """Polls /proc/<pid>/status for VmHWM (the high-water mark of the process's current address
    space) until the block ends; `kib` is the last value read, so only growth in the last poll
    interval before exit could be missed."""

    INTERVAL = 0.005

    def __init__(self, pid: int):
        self.pid, self.kib = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="peak-rss", daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        path = f"/proc/{self.pid}/status"
        while not self._stop.is_set():
            self.kib = max(self.kib, read_hwm(path))
            self._stop.wait(self.INTERVAL)


def read_hwm(path: str) -> int:
    """VmHWM in KiB from a /proc status file; 0 once the process is gone or before it has one."""
    try:
        with open(path) as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _settled(stack: DistantStack, marks: Marks):
    """Read the logs until two reads agree: a server may log a request just after answering it."""
    deadline = time.monotonic() + SETTLE_LIMIT
    previous = None
    while True:
        calls = stack.daemon.api_calls_since(marks.daemon)
        registry_log = {name: stack.registry(name).requests_since(marks.registries[name]) for name in REGISTRIES}
        tokens = stack.token_server.requests_since(marks.token)
        sizes = (len(calls), tuple(len(v) for v in registry_log.values()), len(tokens))
        if sizes == previous or time.monotonic() > deadline:
            return calls, registry_log, tokens
        previous = sizes
        time.sleep(SETTLE_POLL)


def classify(requests) -> dict[str, int]:
    """Access-log records -> counts: ping (GET /v2/), head/get (manifests), tags (tags list pages),
    other; refused = 4xx/5xx
    other than the ping's 401 challenge."""
    counts = Counter()
    for r in requests:
        path = r.path.split("?")[0]
        if path == "/v2/" and r.method == "GET":
            counts["ping"] += 1
            refused = r.status >= 400 and r.status != 401
        elif "/manifests/" in path and r.method in ("HEAD", "GET"):
            counts[r.method.lower()] += 1
            refused = r.status >= 400
        elif path.endswith("/tags/list") and r.method == "GET":
            counts["tags"] += 1
            refused = r.status >= 400
        else:
            counts["other"] += 1
            refused = r.status >= 400
        counts["refused"] += int(refused)
    return {k: counts[k] for k in ("ping", "head", "get", "tags", "other", "refused")}


def timeline(records: list[ConnectionRecord], started: float, wall: float,
             delay: float) -> dict[str, float | None]:
    """Seconds after spawn, as the scanner saw them (an answer reaches it one delay after the proxy)."""
    def first(fronts) -> float | None:
        times = [r.accepted for r in records if r.front in fronts]
        return min(times) - started if times else None

    def last_answer(fronts) -> float | None:
        times = [t for r in records if r.front in fronts for t in [r.last_answer()] if t is not None]
        return max(times) + delay - started if times else None

    registries = set(REGISTRIES) | {"token"}
    return {"first_request": first(set(REGISTRIES) | {"daemon", "token"}),
            "daemon_first": first({"daemon"}), "daemon_last_answer": last_answer({"daemon"}),
            "registry_first": first(registries), "registry_last_answer": last_answer(registries),
            "exit": wall}


def _check(out_path: Path, truth: Mapping[str, str], exit_code: int) -> tuple[bool, list[str]]:
    try:
        report = json.loads(out_path.read_text())
    except (OSError, ValueError) as exc:
        return False, [f"no JSON report ({type(exc).__name__}), exit {exit_code}"]
    found = {c["name"]: c["status"] for endpoint in report.get("endpoints", []) for c in endpoint["containers"]}
    mismatches = [f"{name}: expected {want}, got {found.get(name, 'nothing')}"
                  for name, want in sorted(truth.items()) if found.get(name) != want]
    mismatches += [f"{name}: not in the fleet, reported {status}" for name, status in sorted(found.items())
                   if name not in truth]
    if exit_code != 0:
        mismatches.insert(0, f"exit code {exit_code}")
    return not mismatches, mismatches


def _tail(path: Path, limit: int = 600) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    lines = [line for line in text.splitlines() if "is named insecure" not in line]  # expected warning
    return "\n".join(lines)[-limit:]
