"""The fleet sweep: K endpoints in one scan, `python -m bench.fleetsweep [options]`.

Outline:
    the distant stack (bench/distant.py), one fleet of N containers running M images
    → K delaying fronts on the daemon, each an endpoint of its own (25 ms each way, its own
      TCP and TLS): every endpoint lists the same containers, as fleets mostly run the same images
    → per K: a warm-up scan, then `spyglass scan -H front_1 ... -H front_K --endpoint-concurrency K`
      measured from outside (bench/measure.py): wall time, peak RSS, registry requests
    → against the floor of one endpoint (bench/floor.py: its listing, then the shared registry
      phase), which is the floor of K identical endpoints listed side by side
    → targets: wall within 1.5x the floor; registry requests the same for every K (each distinct
      reference asked once, one ping and token per registry)

One dockerd serves every front, so its CPU is shared by the K listings: what the sweep shows
beyond the floor is that daemon's work and the scanner's, not the network's.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.stack.procs import stopped_however_it_ends

from . import build
from .distant import DistantStack
from .fleet import Fleet, universe
from .measure import run_scan, settle
from .runner import DOCS, REPO_ROOT, RESULTS, _floor, _probe_all, _rtt, _say, _sizes, scanner_command

RATIO_TARGET = 1.5
DOCS_BEGIN, DOCS_END = "<!-- bench:fleet:begin -->", "<!-- bench:fleet:end -->"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    fleet = Fleet(args.containers, args.images, args.stale)
    workdir = Path(tempfile.mkdtemp(prefix="spyglass-fleet-bench-"))
    stack = DistantStack()

    def stop() -> None:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    with stopped_however_it_ends(stop):
        result = sweep(stack, fleet, args, workdir)
    print(text(result))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = Path(args.results) / f"{stamp}-fleet.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    _say(f"wrote {path}")
    if not args.no_docs:
        _update_docs(Path(args.docs), markdown(result))
        _say(f"wrote {args.docs}")
    return 0 if all(p["correct"] for p in result["points"]) else 1


def sweep(stack: DistantStack, fleet: Fleet, args, workdir: Path) -> dict:
    stack.start(workdir / "stack")
    network = _probe_all(stack, args.delay_ms / 1000)
    _say(f"round trip through the fronts: {_rtt(network) * 1000:.1f} ms")
    build.publish(stack, universe([fleet]))
    step = build.reconcile(stack, fleet)
    _say(f"{fleet.label}: {step.created} containers in {step.seconds:.1f} s; settled in {settle():.1f} s")
    fronts = [stack.network.front(f"daemon-{k}", stack.daemon.port) for k in range(max(args.endpoints))]
    floor = _floor(fleet, network, args.concurrency)
    # This checkout's scanner (python -m handler.cli with it on PYTHONPATH), not an installed one.
    scanner = [*scanner_command(REPO_ROOT), "scan", "-o", "json", "--concurrency", str(args.concurrency), *stack.scan_args()]
    points = [_point(stack, fleet, scanner, fronts[:k], args, workdir, floor.seconds) for k in args.endpoints]
    return {"schema": 1, "fleet": fleet.label, "delay_ms": args.delay_ms, "concurrency": args.concurrency,
            "rtt_ms": round(_rtt(network) * 1000, 3), "floor": floor.as_dict(), "points": points,
            "targets": targets(points)}


def _point(stack, fleet: Fleet, scanner: list[str], fronts, args, workdir: Path, floor_s: float) -> dict:
    command = [*scanner, "--endpoint-concurrency", str(len(fronts))]
    for front in fronts:
        command += ["-H", f"tcp://{front.address}"]
    truth = fleet.truth()
    stack.network.delay = args.delay_ms / 1000
    try:
        run_scan(stack, command, truth=truth, workdir=workdir / "reports", tag=f"k{len(fronts)}-warmup",
                 tree=REPO_ROOT)
        runs = [run_scan(stack, command, truth=truth, workdir=workdir / "reports", tag=f"k{len(fronts)}-{i}",
                         tree=REPO_ROOT) for i in range(args.runs)]
    finally:
        stack.network.delay = 0.0
    correct = all(_every_endpoint_right(workdir / "reports" / f"k{len(fronts)}-{i}.json", truth, len(fronts))
                  for i in range(args.runs)) and all(r.exit_code == 0 for r in runs)
    wall = statistics.median(r.wall for r in runs)
    point = {"endpoints": len(fronts), "wall_median_s": round(wall, 4), "wall_min_s": round(min(r.wall for r in runs), 4),
             "cpu_median_s": round(statistics.median(r.cpu for r in runs), 4),
             "max_rss_mib": round(max(r.max_rss_kib for r in runs) / 1024, 1),
             "ratio": round(wall / floor_s, 3) if floor_s > 0 else None,
             "requests": runs[-1].requests_by_kind(), "engine_calls": len(runs[-1].engine_calls),
             "correct": correct, "runs": [r.as_dict() for r in runs]}
    _say(f"K={len(fronts)}: median {wall:.3f} s, floor {floor_s:.3f} s, ratio {point['ratio']}, "
         f"peak RSS {point['max_rss_mib']} MiB, requests {point['requests']}, correct {correct}")
    return point


def _every_endpoint_right(path: Path, truth: dict, endpoints: int) -> bool:
    """Every endpoint listed, and each one's verdicts the fleet's truth."""
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    found = [{c["name"]: c["status"] for c in e["containers"]} for e in report["endpoints"]]
    return len(found) == endpoints and all(f == truth for f in found)


def targets(points: list[dict]) -> list[dict]:
    worst = max(points, key=lambda p: p["ratio"] or 0)
    requests = {json.dumps(p["requests"], sort_keys=True) for p in points}
    return [{"target": f"wall within {RATIO_TARGET}x the floor at every K",
             "measured": f"worst {worst['ratio']} at K={worst['endpoints']}",
             "met": all(p["ratio"] is not None and p["ratio"] <= RATIO_TARGET for p in points)},
            {"target": "registry requests the same at every K", "measured": f"{len(requests)} distinct count(s)",
             "met": len(requests) == 1}]


def text(result: dict) -> str:
    lines = [f"fleet sweep: {result['fleet']} on every endpoint, {result['delay_ms']:g} ms each way, "
             f"floor {result['floor']['seconds']:.3f} s"]
    for p in result["points"]:
        lines.append(f"  K={p['endpoints']:>3}: wall {p['wall_median_s']:.3f} s ({p['ratio']}x floor), CPU "
                     f"{p['cpu_median_s']:.2f} s, peak RSS {p['max_rss_mib']} MiB, registry {p['requests']}")
    lines += [f"  {'met' if t['met'] else 'MISSED'}: {t['target']} ({t['measured']})" for t in result["targets"]]
    return "\n".join(lines)


def markdown(result: dict) -> str:
    floor = result["floor"]
    lines = [f"Fleet sweep ({time.strftime('%Y-%m-%d', time.gmtime())}): {result['fleet']} on each of K endpoints "
             f"(delaying fronts on one dockerd), {result['delay_ms']:g} ms each way (round trip "
             f"{result['rtt_ms']:.1f} ms), --concurrency {result['concurrency']}, --endpoint-concurrency K. "
             f"Floor: one endpoint's listing, then the shared registry phase = {floor['round_trips']} round trips "
             f"= {floor['seconds']:.3f} s.", "",
             "| K | wall (median) | / floor | CPU | peak RSS | registry requests (ping, token, head, get, tags) | "
             "engine calls | correct |", "|---|---|---|---|---|---|---|---|"]
    for p in result["points"]:
        r = p["requests"]
        lines.append(f"| {p['endpoints']} | {p['wall_median_s']:.3f} s | {p['ratio']} | {p['cpu_median_s']:.2f} s | "
                     f"{p['max_rss_mib']} MiB | {r['ping']}, {r['token']}, {r['head']}, {r['get']}, {r['tags']} | "
                     f"{p['engine_calls']} | {'yes' if p['correct'] else 'NO'} |")
    lines += [""] + [f"- {'met' if t['met'] else 'missed'}: {t['target']} ({t['measured']})"
                     for t in result["targets"]]
    return "\n".join(lines)


def _update_docs(path: Path, section: str) -> None:
    """The fleet section of docs/performance.md between its own markers (added at the end once)."""
    text_now = path.read_text() if path.exists() else "# Performance\n"
    if DOCS_BEGIN not in text_now:
        text_now = text_now.rstrip() + f"\n\n## Fleet sweep\n\n{DOCS_BEGIN}\n{DOCS_END}\n"
    pattern = re.compile(re.escape(DOCS_BEGIN) + ".*?" + re.escape(DOCS_END), re.S)
    path.write_text(pattern.sub(lambda _: f"{DOCS_BEGIN}\n{section}\n{DOCS_END}", text_now, count=1))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.fleetsweep", description=(
        "Scan K endpoints in one run on the delaying test stack; wall time against the floor, registry "
        "requests and peak RSS per K. Needs root (it starts its own dockerd)."))
    p.add_argument("--endpoints", type=_sizes, default=(1, 4, 16, 32), help="the K swept (default 1,4,16,32)")
    p.add_argument("-N", "--containers", type=int, default=50, help="containers on the daemon (default 50)")
    p.add_argument("-M", "--images", type=int, default=25, help="distinct images (default 25)")
    p.add_argument("-S", "--stale", type=int, default=5, help="stale containers (default 5)")
    p.add_argument("--delay-ms", type=float, default=25.0, help="delay each way (default 25)")
    p.add_argument("--concurrency", type=int, default=8, help="spyglass --concurrency (default 8)")
    p.add_argument("--runs", type=int, default=3, help="measured scans per K (default 3)")
    p.add_argument("--results", default=str(RESULTS))
    p.add_argument("--docs", default=str(DOCS))
    p.add_argument("--no-docs", action="store_true")
    return p


if __name__ == "__main__":
    sys.exit(main())
