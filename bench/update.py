"""`spyglass update` on a slow network: `python -m bench.update [-k 20] [--delay-ms 25]`.

Outline:
    the distant stack (bench/distant.py: every server behind a delaying front), at delay 0:
      k repositories, each with an old image (a health check every second) and a new one pushed
      over it; k containers on the old images (the new images removed, so each update pulls)
    → at the delay: a plain scan of the k (the part of an update that is a scan), then
      `spyglass update --yes` of 1 container, of k (default order) and of k with --rolling, the
      fleet reset before each; wall time, and the daemon's API calls by kind (its debug log)
    → the same two updates of k at delay 0: what the daemon's own work costs, apart from distance
    → Engine API calls per container = (calls for k - calls for 1) / (k - 1), by kind
    → floors (below): the scan as measured, plus the round trips an update cannot avoid and the
      health wait, for each order; the ratio of wall time to floor

Floor, with R the round trip to the daemon (and to the registry), C the concurrency, W = ceil(k/C)
waves and H the health check's interval (a container is healthy at its first check, one interval
after its start):
    plan      list, then W × (inspect container) and W × (inspect image)          (1 + 2W) R
    pull      W × (pull: daemon → registry ping, manifest, config; tag)          W × 5R
    default   W × (stop, rename)  +  W × (create, inspect, events, start, remove)  W × 7R + W × H
    rolling   k × (stop, rename, create, inspect, events, start, remove)          k × 7R + k × H
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.stack.images import import_image, push
from tests.stack.procs import stopped_however_it_ends
from tests.stack.updates import HEALTHY, TRAP

from .distant import DistantStack

REPO_ROOT = Path(__file__).resolve().parents[1]
HEALTH_INTERVAL = 1.0  # the images' HEALTHCHECK interval (tests.stack.updates.HEALTHY)
_ID_PATHS = [(re.compile(r"^/containers/(create|json)$"), r"/containers/\1"),
             (re.compile(r"^/(containers|exec)/[^/]+/(\w+)$"), r"/\1/{}/\2"),
             (re.compile(r"^/images/.+/(tag|json|push)$"), r"/images/{}/\1"),
             (re.compile(r"^/containers/[^/]+$"), "/containers/{}")]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="spyglass-bench-update-"))
    stack = DistantStack()

    def stop() -> None:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    with stopped_however_it_ends(stop):
        stack.start(workdir)
        results = run(stack, args.k, args.delay_ms / 1000, args.concurrency)
    print(json.dumps(results, indent=2))
    if args.results:
        Path(args.results).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def run(stack: DistantStack, k: int, delay: float, concurrency: int) -> dict:
    repositories = [f"{stack.address('plain')}/bench-update/app{i}" for i in range(k)]
    images = [_publish(stack, repository) for repository in repositories]
    names = [f"bu{i}" for i in range(k)]
    scan_args = ["--concurrency", str(concurrency), *stack.scan_args()]
    measured = {}
    _reset(stack, names, repositories, images)
    stack.network.delay = delay
    try:
        measured["scan"] = _run(stack, ["scan", *scan_args, *names])
        runs = [("update-1", 1, [], delay), ("update-k", k, [], delay), ("rolling-k", k, ["--rolling"], delay),
                ("update-k-no-delay", k, [], 0.0), ("rolling-k-no-delay", k, ["--rolling"], 0.0)]
        for label, count, extra, run_delay in runs:
            stack.network.delay = 0.0
            _reset(stack, names, repositories, images)
            stack.network.delay = run_delay
            measured[label] = _run(stack, ["update", "--yes", *extra, *scan_args, *names[:count]])
    finally:
        stack.network.delay = 0.0
    return _summary(measured, k, delay, concurrency)


def _publish(stack: DistantStack, repository: str) -> tuple[str, str]:
    """Old and new images pushed as repository:1; returns (old image ID, new image ID)."""
    client = stack.daemon.admin
    old = import_image(client, repository, "1", [TRAP, HEALTHY, "ENV V=1"])
    push(client, repository, "1")
    new = import_image(client, repository, "1", [TRAP, HEALTHY, "ENV V=2"])
    push(client, repository, "1")
    return old, new


def _reset(stack: DistantStack, names: list[str], repositories: list[str], images: list[tuple[str, str]]) -> None:
    """Each container on its old image again, the new image gone, so that each update pulls."""
    client = stack.daemon.admin
    for container in client.containers(all=True):
        client.remove_container(container["Id"], force=True)
    for repository, (old, new) in zip(repositories, images):
        try:
            client.remove_image(new, force=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
        client.tag(old, repository, "1")
    for name, repository in zip(names, repositories):
        created = client.create_container(f"{repository}:1", name=name,
                                          host_config=client.create_host_config(network_mode="none"))
        client.start(created["Id"])
    time.sleep(HEALTH_INTERVAL * 2)  # healthy before the update, as a running fleet would be


def _run(stack: DistantStack, argv: list[str]) -> dict:
    mark, connections_mark = stack.daemon.mark(), stack.network.mark()
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "handler.cli", *argv, "--output", "json"], cwd=REPO_ROOT,
                          env=os.environ | stack.env(), capture_output=True, text=True, timeout=900)
    wall = time.monotonic() - started
    report = json.loads(done.stdout) if done.stdout.strip() else {}
    containers = [c for endpoint in report.get("endpoints", ()) for c in endpoint["containers"]]
    actions = Counter((c.get("action") or {}).get("action") for c in containers)
    calls = Counter(_kind(call.method, call.path) for call in stack.daemon.api_calls_since(mark))
    connections = Counter(record.front for record in stack.network.records_since(connections_mark))
    return {"wall_s": round(wall, 3), "exit": done.returncode, "actions": {str(a): n for a, n in actions.items() if a},
            "calls": dict(sorted(calls.items())), "calls_total": sum(calls.values()),
            "connections": dict(sorted(connections.items())),
            "stderr_tail": done.stderr[-400:] if done.returncode else ""}


def _kind(method: str, path: str) -> str:
    bare = re.sub(r"^/v[0-9.]+", "", path.split("?", 1)[0])
    for pattern, replacement in _ID_PATHS:
        if pattern.match(bare):
            bare = pattern.sub(replacement, bare)
            break
    return f"{method} {bare}"


def _summary(measured: dict, k: int, delay: float, concurrency: int) -> dict:
    one, many, rolling = measured["update-1"], measured["update-k"], measured["rolling-k"]
    per_container = {kind: (many["calls"].get(kind, 0) - one["calls"].get(kind, 0)) / (k - 1)
                     for kind in sorted(set(many["calls"]) | set(one["calls"]))}
    rtt = 2 * delay
    waves = math.ceil(k / concurrency)
    scan = measured["scan"]["wall_s"]
    common = (1 + 2 * waves) * rtt + waves * 5 * rtt
    floors = {"default": scan + common + waves * (7 * rtt + HEALTH_INTERVAL),
              "rolling": scan + common + k * (7 * rtt + HEALTH_INTERVAL)}
    return {
        "k": k, "delay_ms_each_way": delay * 1000, "concurrency": concurrency, "measured": measured,
        "engine_calls_per_container": {kind: n for kind, n in per_container.items() if n},
        "engine_calls_per_container_total": sum(per_container.values()),
        "fixed_calls_per_run": one["calls_total"] - sum(per_container.values()),
        "floor_s": {mode: round(value, 3) for mode, value in floors.items()},
        "ratio": {"default": round(many["wall_s"] / floors["default"], 2),
                  "rolling": round(rolling["wall_s"] / floors["rolling"], 2)},
        # What the delay costs: the same update at delay 0 holds the daemon's own work (create,
        # start, exec of the health check) that no floor of round trips counts.
        "delay_cost_s": {"default": round(many["wall_s"] - measured["update-k-no-delay"]["wall_s"], 3),
                         "rolling": round(rolling["wall_s"] - measured["rolling-k-no-delay"]["wall_s"], 3)},
        "round_trips_floor_s": {mode: round(value - scan - (waves if mode == "default" else k) * HEALTH_INTERVAL,
                                            3) for mode, value in floors.items()},
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.update", description=__doc__.splitlines()[0])
    parser.add_argument("-k", type=int, default=20, help="stale containers to update (default 20)")
    parser.add_argument("--delay-ms", type=float, default=25.0, help="delay each way to every server (default 25)")
    parser.add_argument("--concurrency", type=int, default=8, help="spyglass --concurrency (default 8)")
    parser.add_argument("--results", help="also write the JSON figures to this file")
    return parser


if __name__ == "__main__":
    sys.exit(main())
