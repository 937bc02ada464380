"""The benchmark, start to end: `python -m bench [--quick] [options]`.

Outline:
    byte-compile the scanner (as pip would at install)
    → start-up figures (fresh interpreters, before anything else loads the machine)
    → the distant stack: servers, delaying fronts, the daemon
    → probe each front at the delay: round-trip time, TLS version
    → push every image the fleets need (delay 0)
    → per fleet, in build order: rebuild what differs, wait for the CPUs to settle,
      then at the delay a warm-up scan and the measured scans (the default fleet
      also at delay 0)
    → probe again; stop everything (also on failure or Ctrl-C); write the results
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.stack import sandbox
from tests.stack.procs import stopped_however_it_ends

from . import build, output, startup
from .distant import REGISTRIES, DistantStack
from .fleet import Fleet, universe
from .floor import RegistryLoad, Server, floor
from .measure import Run, run_scan, settle
from .plan import QUICK, Point, Settings, points
from .probe import Target, client_context, probe

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results"
DOCS = REPO_ROOT / "docs" / "performance.md"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = _settings(args)
    except ValueError as exc:
        parser.error(str(exc))
    workdir = Path(tempfile.mkdtemp(prefix="spyglass-bench-"))
    stack = DistantStack(storage_driver=settings.storage_driver)

    def stop() -> None:
        stopped = time.monotonic()
        stack.stop()
        _say(f"stack stopped in {time.monotonic() - stopped:.1f} s")
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    try:
        with stopped_however_it_ends(stop):
            result = _run(settings, stack, workdir)
    except KeyboardInterrupt:
        _say("interrupted; the stack is stopped")
        return 130
    paths = output.write(result, Path(args.results), docs=None if args.no_docs or settings.quick else Path(args.docs))
    print(output.text_summary(result))
    for path in paths:
        _say(f"wrote {path}")
    return 0 if output.all_correct(result) else 1


def _run(settings: Settings, stack: DistantStack, workdir: Path) -> dict:
    result = {"schema": 1, "started_at": _now(), "settings": settings.as_dict(), "machine": _machine(settings)}
    tree = Path(settings.scanner_tree) if settings.scanner_tree else None
    scanner = scanner_command(tree)
    _say(f"scanner: {' '.join(scanner)}" + (f" (spyglass from {tree})" if tree else ""))
    result["byte_compiled"] = startup.byte_compile(tree)
    _say(f"byte-compiled {', '.join(result['byte_compiled']) or 'nothing'}")
    _say(f"start-up: {settings.startup_samples} fresh interpreters per figure")
    result["startup"] = startup.measure(scanner, samples=settings.startup_samples, tree=tree)
    began = time.monotonic()
    stack.start(workdir / "stack")
    _say(f"stack up in {time.monotonic() - began:.1f} s; fronts: "
         + ", ".join(f"{n} {f.address}" for n, f in stack.network.fronts.items()))
    network = _probe_all(stack, settings.delay)
    result["network"] = {"delay_ms": settings.delay_ms, "handshake_emulated": stack.network.handshake,
                         "probes": {n: p.as_dict() for n, p in network.items()},
                         "rtt_ms": round(_rtt(network) * 1000, 3)}
    _say(f"round trip through the fronts: {_rtt(network) * 1000:.1f} ms; TLS: "
         + ", ".join(f"{n} {p.tls_version or 'none'}" for n, p in network.items()))
    plan = points(settings)
    slots = universe([p.fleet for p in plan])
    _say(f"pushing {len(slots)} images to {len(REGISTRIES)} registries")
    result["publish_s"] = round(build.publish(stack, slots), 1)
    _say(f"pushed in {result['publish_s']} s")
    command = [*scanner, "scan", "-o", "json", "--concurrency", str(settings.concurrency), *stack.scan_args()]
    result["points"] = [_point(stack, point, settings, network, command, workdir, tree) for point in plan]
    result["network"]["probes_after"] = {n: p.as_dict() for n, p in _probe_all(stack, settings.delay).items()}
    result["finished_at"] = _now()
    result["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    result["targets"] = output.targets(result)
    return result


def _point(stack: DistantStack, point: Point, settings: Settings, network: dict, command: list[str],
           workdir: Path, tree: Path | None) -> dict:
    fleet = point.fleet
    step = build.reconcile(stack, fleet)
    settled = settle()
    _say(f"\n{fleet.label} ({', '.join(sorted(point.roles))}): +{step.created} -{step.removed} containers "
         f"in {step.seconds:.1f} s; machine settled in {settled:.1f} s")
    truth = fleet.truth()
    runs = _scans(stack, fleet, truth, command, workdir, tree, settings.delay, point.runs(settings),
                  settings.warmups)
    summary = {"label": fleet.label, "containers": fleet.containers, "images": fleet.images,
               "stale": fleet.stale, "roles": sorted(point.roles), "build": step.as_dict(),
               "settled_s": round(settled, 1),
               "expected_requests": fleet.expected_requests(),
               "floor": _floor(fleet, network, settings.concurrency).as_dict(),
               **_summarise(runs), "runs": [r.as_dict() for r in runs]}
    floor_s = summary["floor"]["seconds"]
    summary["ratio"] = round(summary["wall_median_s"] / floor_s, 3) if floor_s > 0 else None
    _say(f"  median {summary['wall_median_s']:.3f} s, floor {floor_s:.3f} s "
         f"({summary['floor']['round_trips']} round trips), ratio {_fmt_ratio(summary['ratio'])}")
    if "default" in point.roles and settings.delay > 0 and settings.local_runs:
        local = _scans(stack, fleet, truth, command, workdir, tree, 0.0, settings.local_runs, settings.warmups)
        summary["local"] = {**_summarise(local), "runs": [r.as_dict() for r in local]}
        _say(f"  at delay 0: median {summary['local']['wall_median_s']:.3f} s")
    if "default" in point.roles and settings.pulled_runs:
        summary["pulled"] = _pulled(stack, fleet, truth, command, workdir, tree, settings, summary)
    return summary


def _pulled(stack: DistantStack, fleet: Fleet, truth, command, workdir: Path, tree: Path | None,
            settings: Settings, clean: dict) -> dict:
    """The same fleet after `docker pull` of its stale tags without a recreate, at the delay."""
    with build.pulled(stack, fleet) as listed_by_id:
        settle()
        _say(f"  pulled {fleet.stale} stale tags without a recreate: {listed_by_id} containers listed by image ID")
        runs = _scans(stack, fleet, truth, command, workdir, tree, settings.delay, settings.pulled_runs,
                      settings.warmups)
    pulled = {**_summarise(runs), "runs": [r.as_dict() for r in runs], "listed_by_id": listed_by_id}
    pulled["to_clean"] = round(pulled["wall_median_s"] / clean["wall_median_s"], 3)
    _say(f"  pulled: median {pulled['wall_median_s']:.3f} s, {pulled['to_clean']:.2f}x the clean state")
    return pulled


def _scans(stack, fleet: Fleet, truth, command, workdir: Path, tree: Path | None, delay: float, count: int,
           warmups: int) -> list[Run]:
    stack.network.delay = delay
    try:
        for i in range(warmups):
            run_scan(stack, command, truth=truth, workdir=workdir / "reports", tag="warmup", tree=tree)
        runs = []
        for i in range(count):
            run = run_scan(stack, command, truth=truth, workdir=workdir / "reports", tree=tree,
                           tag=f"n{fleet.containers}-m{fleet.images}-d{delay * 1000:g}-{i}")
            runs.append(run)
            _say(f"  {delay * 1000:g} ms run {i + 1}/{count}: " + output.run_line(run))
        return runs
    finally:
        stack.network.delay = 0.0


def _summarise(runs: list[Run]) -> dict:
    walls = [r.wall for r in runs]
    return {
        "wall_median_s": round(statistics.median(walls), 4), "wall_min_s": round(min(walls), 4),
        "wall_max_s": round(max(walls), 4), "cpu_median_s": round(statistics.median(r.cpu for r in runs), 4),
        "max_rss_mib": round(max(r.max_rss_kib for r in runs) / 1024, 1),
        "engine_calls": sorted({len(r.engine_calls) for r in runs}),
        "requests": runs[-1].requests_by_kind() if runs else {},
        "registry_requests": runs[-1].registry_requests if runs else {},
        "requests_stable": len({str(r.requests_by_kind()) for r in runs}) == 1,
        "first_request_median_s": _median([r.timeline["first_request"] for r in runs]),
        "daemon_done_median_s": _median([r.timeline["daemon_last_answer"] for r in runs]),
        "registry_first_median_s": _median([r.timeline["registry_first"] for r in runs]),
        "registry_done_median_s": _median([r.timeline["registry_last_answer"] for r in runs]),
        "correct": all(r.correct for r in runs),
        "proxy_late_p95_ms": _median([r.proxy_late_ms.get("p95") for r in runs]),
        "load_median": _median([r.load_before for r in runs]),
    }


def _floor(fleet: Fleet, network: dict, concurrency: int):
    per_registry, tags = fleet.images_per_registry(), fleet.tags_lists_per_registry()
    token = Server(network["token"].tls_round_trips)
    loads = [RegistryLoad(name, Server(network[name].tls_round_trips), per_registry.get(name, 0),
                          token if name == "secure" else None, tags=tags.get(name, 0)) for name in REGISTRIES]
    return floor(rtt=_rtt(network), daemon=Server(network["daemon"].tls_round_trips), registries=loads,
                 concurrency=concurrency)


def _probe_all(stack: DistantStack, delay: float) -> dict:
    pki = stack.pki
    registry_tls = client_context(pki.ca)
    targets = [
        Target("daemon", stack.network.fronts["daemon"].port, "/_ping", client_context(pki.ca, pki.client.cert,
                                                                                      pki.client.key)),
        Target("secure", stack.network.fronts["secure"].port, "/v2/", registry_tls),
        Target("open", stack.network.fronts["open"].port, "/v2/", registry_tls),
        Target("plain", stack.network.fronts["plain"].port, "/v2/", None),
        Target("token", stack.network.fronts["token"].port, "/probe", registry_tls),
    ]
    stack.network.delay = delay
    try:
        return {t.name: probe(t) for t in targets}
    finally:
        stack.network.delay = 0.0


def _rtt(network: dict) -> float:
    return statistics.median(p.rtt for p in network.values())


def scanner_command(tree: Path | None = None) -> list[str]:
    """The installed `spyglass` script beside this interpreter (not a version manager's shim);
    with a tree, `python -m handler.cli` run from it."""
    if tree is not None:
        return [sys.executable, "-m", "handler.cli"]
    return sandbox.scanner_command()


def _machine(settings: Settings) -> dict:
    def version(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return None

    return {"cpus": os.cpu_count(), "load_before": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "kernel": platform.release(),
            "dockerd": version(["/usr/sbin/dockerd", "--version"]),
            "registry": version(["/usr/bin/docker-registry", "--version"]),
            "storage_driver": settings.storage_driver}


def _fmt_ratio(ratio: float | None) -> str:
    return f"{ratio:.2f}" if ratio is not None else "- (no delay)"


def _median(values):
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 4) if present else None


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of whole numbers: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("sizes must be at least 1")
    return values


def _parser() -> argparse.ArgumentParser:
    defaults = Settings()
    p = argparse.ArgumentParser(prog="python -m bench", description=(
        "Scan a fleet on the real test stack with every server behind a delaying proxy, and compare "
        "the wall time with the round-trip floor. Needs root (it starts its own dockerd)."))
    p.add_argument("--quick", action="store_true", help="small fleets, one run each (a couple of minutes); "
                   "does not touch docs/performance.md")
    p.add_argument("-N", "--containers", type=int, help=f"running containers (default {defaults.containers})")
    p.add_argument("-M", "--images", type=int, help=f"distinct images (default {defaults.images})")
    p.add_argument("-S", "--stale", type=int, help=f"stale containers (default {defaults.stale})")
    p.add_argument("--delay-ms", type=float, default=defaults.delay_ms,
                   help="delay each way to every server, in ms (default 25; 0 for none)")
    p.add_argument("--concurrency", type=int, default=defaults.concurrency, help="spyglass --concurrency")
    p.add_argument("--runs", type=int, help=f"measured scans of the default fleet (default {defaults.runs})")
    p.add_argument("--sweep-runs", type=int, help=f"measured scans per sweep fleet (default {defaults.sweep_runs})")
    p.add_argument("--pulled-runs", type=int, help="measured scans of the default fleet after `docker pull` of "
                   f"its stale tags without a recreate (default {defaults.pulled_runs}; 0 for none)")
    p.add_argument("--sweep-containers", type=_sizes, help="N of the N sweep (default 50,300,1000)")
    p.add_argument("--sweep-images", type=_sizes, help="M of the M sweep (default 25,100,300)")
    p.add_argument("--sweep-fixed-images", type=int, help="M held during the N sweep (default: smallest M)")
    p.add_argument("--no-sweeps", action="store_true", help="only the default fleet")
    p.add_argument("--storage-driver", default=defaults.storage_driver, help="dockerd storage driver")
    p.add_argument("--scanner-tree", metavar="DIR", help="run spyglass from this checkout (engine/ and "
                   "handler/ in DIR) instead of the installed one, to compare two versions")
    p.add_argument("--results", default=str(RESULTS), help="where the dated JSON and the plot go")
    p.add_argument("--docs", default=str(DOCS), help="the markdown file whose results section is rewritten")
    p.add_argument("--no-docs", action="store_true", help="leave docs/performance.md alone")
    p.add_argument("--keep-workdir", action="store_true", help="keep logs and reports under /tmp")
    return p


def _settings(args) -> Settings:
    chosen = dict(QUICK) if args.quick else {}
    for name in ("containers", "images", "stale", "runs", "sweep_runs", "pulled_runs", "sweep_containers",
                 "sweep_images", "sweep_fixed_images"):
        value = getattr(args, name)
        if value is not None:
            chosen[name] = value
    if args.delay_ms == 0:
        chosen["local_runs"] = 0
    tree = str(Path(args.scanner_tree).resolve()) if args.scanner_tree else None
    if tree and not (Path(tree) / "handler" / "cli.py").is_file():
        raise ValueError(f"--scanner-tree {args.scanner_tree}: no handler/cli.py there")
    settings = Settings(delay_ms=args.delay_ms, concurrency=args.concurrency, sweeps=not args.no_sweeps,
                        storage_driver=args.storage_driver, scanner_tree=tree, quick=args.quick, **chosen)
    for point in points(settings):  # a bad size fails here, before anything starts
        point.fleet.truth()
    return settings
