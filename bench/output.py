"""The benchmark's results as a dated JSON file, markdown tables, a PNG plot and target verdicts."""
from __future__ import annotations

import json
import re
from pathlib import Path

from .measure import Run

# Targets from the issue (on this machine, 2 cores).
RATIO_TARGET = 1.5
FLAT_TARGET = 1.2  # median wall at the largest N over that at the smallest, M fixed
PULLED_TARGET = 1.15  # median wall after `docker pull` without a recreate over the clean state's
RSS_TARGET_MIB = 80.0
CLI_IMPORT_TARGET_S = 0.3
DOCS_BEGIN, DOCS_END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"


def run_line(run: Run) -> str:
    r = run.requests_by_kind()
    verdict = "correct" if run.correct else "WRONG: " + "; ".join(run.mismatches[:3])
    return (f"wall {run.wall:.3f} s  cpu {run.cpu:.3f} s  rss {run.max_rss_kib / 1024:.1f} MiB  "
            f"engine {len(run.engine_calls)}  ping {r['ping']} token {r['token']} head {r['head']} "
            f"get {r['get']}" + (f" tags {r['tags']}" if r.get("tags") else "")
            + (f" other {r['other']}" if r["other"] else "")
            + (f" refused {r['refused']}" if r["refused"] else "")
            + f"  proxy late p95 {run.proxy_late_ms.get('p95', 0):.1f} ms  load {run.load_before:.1f}  {verdict}")


# -- targets -----------------------------------------------------------------------------


def targets(result: dict) -> list[dict]:
    points = result["points"]
    found = []
    default = next((p for p in points if "default" in p["roles"]), None)
    if default and default["ratio"] is not None:
        found.append(_verdict("median wall within 1.5x of the floor at the defaults", f"<= {RATIO_TARGET}",
                              default["ratio"], default["ratio"] <= RATIO_TARGET,
                              f"{default['ratio'] / RATIO_TARGET - 1:+.0%} over"
                              f" ({default['wall_median_s'] - RATIO_TARGET * default['floor']['seconds']:+.3f} s)"))
    sweep = sorted((p for p in points if "n-sweep" in p["roles"]), key=lambda p: p["containers"])
    if len(sweep) >= 2:
        growth = sweep[-1]["wall_median_s"] / sweep[0]["wall_median_s"]
        found.append(_verdict(f"time nearly flat in N (N {sweep[0]['containers']} -> {sweep[-1]['containers']}, "
                              f"M {sweep[0]['images']})", f"<= {FLAT_TARGET}x", round(growth, 3),
                              growth <= FLAT_TARGET, f"{growth / FLAT_TARGET - 1:+.0%} over"))
        calls = sorted({c for p in sweep for c in p["engine_calls"]})
        found.append(_verdict("Engine API calls constant in N", "one value", calls, len(calls) == 1,
                              f"{len(calls)} different counts"))
        rss = sweep[-1]["max_rss_mib"]
        found.append(_verdict(f"peak RSS at N={sweep[-1]['containers']}", f"< {RSS_TARGET_MIB:g} MiB", rss,
                              rss < RSS_TARGET_MIB, f"{rss - RSS_TARGET_MIB:+.1f} MiB over"))
    if default and default.get("pulled"):
        found += _pulled_verdicts(default)
    exact = [(p["label"], _request_diff(p)) for p in points]
    wrong = [f"{label}: {diff}" for label, diff in exact if diff]
    found.append(_verdict("registry requests: M HEADs, one ping per registry, one token per registry and "
                          "credential (and one GET per index tag)", "exact at every point",
                          "exact" if not wrong else wrong, not wrong, f"{len(wrong)} point(s) differ"))
    cli = result.get("startup", {}).get("import_cli", {}).get("seconds")
    if cli is not None:
        found.append(_verdict("CLI import", f"< {CLI_IMPORT_TARGET_S} s", cli, cli < CLI_IMPORT_TARGET_S,
                              f"{cli - CLI_IMPORT_TARGET_S:+.3f} s over"))
    correct = all_correct(result)
    found.append(_verdict("every report correct", "all", correct, correct, "see the runs' mismatches"))
    return found


def all_correct(result: dict) -> bool:
    """Every scan's report matched the truth, the pulled state's included."""
    return all(p["correct"] and p.get("pulled", {}).get("correct", True) for p in result["points"])


def _pulled_verdicts(default: dict) -> list[dict]:
    """The pulled state against the clean one: the wall time, and one inspect per container listed by ID."""
    pulled = default["pulled"]
    ratio = pulled["to_clean"]
    over = pulled["wall_median_s"] - PULLED_TARGET * default["wall_median_s"]
    wall = _verdict("after docker pull without a recreate, median wall within 1.15x of the clean state at the "
                    "defaults", f"<= {PULLED_TARGET}x", ratio, ratio <= PULLED_TARGET,
                    f"{ratio / PULLED_TARGET - 1:+.0%} over ({over:+.3f} s)")
    expected = [calls + pulled["listed_by_id"] for calls in default["engine_calls"]]
    calls = _verdict("Engine API calls after docker pull: the clean count + one inspect per container listed "
                     "by image ID", expected, pulled["engine_calls"], pulled["engine_calls"] == expected,
                     f"{pulled['engine_calls']} instead of {expected}")
    return [wall, calls]


def _verdict(name: str, target: str, measured, met: bool, miss: str) -> dict:
    return {"target": name, "goal": target, "measured": measured, "met": met, "missed_by": None if met else miss}


def _request_diff(point: dict) -> str:
    """Expected minus counted per registry and kind, empty when they agree (all runs)."""
    problems = []
    for run in point["runs"]:
        for registry, want in point["expected_requests"].items():
            got = run["registry_requests"].get(registry, {})
            tokens = sum(1 for t in run["token_requests"]) if registry == "secure" else 0
            counted = {"ping": got.get("ping", 0), "token": tokens, "head": got.get("head", 0),
                       "get": got.get("get", 0), "tags": got.get("tags", 0)}
            for kind in ("ping", "token", "head", "get", "tags"):
                if counted[kind] != want.get(kind, 0):
                    problems.append(f"{registry} {kind} {counted[kind]} (expected {want.get(kind, 0)})")
            if got.get("other") or got.get("refused"):
                problems.append(f"{registry} other {got.get('other', 0)} refused {got.get('refused', 0)}")
    return "; ".join(sorted(set(problems)))


# -- tables --------------------------------------------------------------------------------


def runs_table(point: dict, key: str = "runs") -> str:
    rows = ["| run | wall s | CPU s | peak RSS MiB | Engine calls | ping | token | HEAD | GET | first request s "
            "| correct |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    runs = point["runs"] if key == "runs" else point[key]["runs"]
    for i, run in enumerate(runs, 1):
        r = run["requests"]
        rows.append(f"| {i} | {run['wall_s']:.3f} | {run['cpu_s']:.3f} | {run['max_rss_mib']:.1f} | "
                    f"{run['engine_calls']} | {r['ping']} | {r['token']} | {r['head']} | {r['get']} | "
                    f"{_fmt(run['timeline_s']['first_request'])} | {'yes' if run['correct'] else 'NO'} |")
    return "\n".join(rows)


def scaling_table(result: dict) -> str:
    rows = ["| sweep | N | M | wall s median (min) | floor s | ratio | CPU s | peak RSS MiB | Engine calls | "
            "HEAD | GET | correct | load | proxy late p95 ms |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for role, key in (("n-sweep", "containers"), ("m-sweep", "images")):
        for p in sorted((p for p in result["points"] if role in p["roles"]), key=lambda p: p[key]):
            r = p["requests"]
            rows.append(f"| {role[0].upper()} | {p['containers']} | {p['images']} | {p['wall_median_s']:.3f} "
                        f"({p['wall_min_s']:.3f}) | {p['floor']['seconds']:.3f} | {_fmt(p['ratio'], 2)} | "
                        f"{p['cpu_median_s']:.3f} | {p['max_rss_mib']:.1f} | {'/'.join(map(str, p['engine_calls']))} | "
                        f"{r['head']} | {r['get']} | {'yes' if p['correct'] else 'NO'} | {_fmt(p.get('load_median'), 1)} | "
                        f"{_fmt(p.get('proxy_late_p95_ms'), 1)} |")
    return "\n".join(rows)


def startup_table(result: dict) -> str:
    s = result["startup"]
    rows = ["| what | median s | heaviest imports (ms) |", "|---|---|---|"]
    for key, label in (("python_bare", "`python -c pass` (the interpreter alone)"),
                       ("cli_version", "`spyglass --version` (whole process)"),
                       ("import_cli", "import `handler.cli`"),
                       ("import_scan_path", "import what a scan loads (`handler.compose`, `engine.scan`)"),
                       ("import_lambda", "import the Lambda module"),
                       ("import_lambda_first_invocation", "import a cold Lambda's first invocation (+ scan path, boto3)")):
        entry = s.get(key)
        if not entry:
            continue
        heavy = ", ".join(f"{n} {ms:g}" for n, ms in entry.get("heaviest_ms", {}).items()) or ""
        value = f"{entry['seconds']:.3f}" if "seconds" in entry else entry.get("error", "?")
        name = label + (f" `{entry['modules'][0]}`" if key == "import_lambda" and entry.get("modules") else "")
        rows.append(f"| {name} | {value} | {heavy} |")
    default = next((p for p in result["points"] if "default" in p["roles"]), None)
    if default:
        rows.append(f"| spawn to first network request (default fleet, median) | "
                    f"{_fmt(default['first_request_median_s'])} | |")
    return "\n".join(rows)


def targets_table(result: dict) -> str:
    rows = ["| target | goal | measured | met | missed by |", "|---|---|---|---|---|"]
    for t in result["targets"]:
        measured = t["measured"] if not isinstance(t["measured"], list) else ", ".join(map(str, t["measured"]))
        rows.append(f"| {t['target']} | {t['goal']} | {measured} | {'yes' if t['met'] else 'NO'} | "
                    f"{t['missed_by'] or ''} |")
    return "\n".join(rows)


def timeline_table(result: dict) -> str:
    rows = ["| fleet | delay ms | spawn → daemon | daemon done | first registry | registries done | exit |",
            "|---|---|---|---|---|---|---|"]
    for p in result["points"]:
        delay = result["settings"]["delay_ms"]
        for fleet, label, part in ((p["label"], delay, p), (p["label"], 0, p.get("local")),
                                   (f"{p['label']} pulled", delay, p.get("pulled"))):
            if part:
                rows.append(f"| {fleet} | {label:g} | {_fmt(part['first_request_median_s'])} | "
                            f"{_fmt(part['daemon_done_median_s'])} | {_fmt(part['registry_first_median_s'])} | "
                            f"{_fmt(part['registry_done_median_s'])} | {part['wall_median_s']:.3f} |")
    return "\n".join(rows)


def markdown(result: dict, plot_name: str | None) -> str:
    default = next((p for p in result["points"] if "default" in p["roles"]), None)
    net = result["network"]
    parts = [f"Run {result['started_at']} → {result['finished_at']} ({'quick' if result['settings']['quick'] else 'full'}"
             f" mode); {result['machine']['cpus']} CPUs, load {result['machine']['load_before']} before, "
             f"{result['machine'].get('load_after')} after; {result['machine']['dockerd']}; storage "
             f"{result['machine']['storage_driver']}. Delay {net['delay_ms']:g} ms each way, measured round trip "
             f"{net['rtt_ms']:.1f} ms; TLS "
             + ", ".join(f"{n} {p['tls'] or 'none'}" for n, p in net["probes"].items())
             + f"; concurrency {result['settings']['concurrency']}. Images pushed in {result['publish_s']} s."]
    if default:
        f = default["floor"]
        parts += ["", f"### Default fleet: {default['label']}", "",
                  f"Floor {f['seconds']:.3f} s = {f['round_trips']} round trips x {f['rtt_ms']:.1f} ms "
                  f"(daemon {f['daemon_round_trips']}, registries {f['registry_round_trips']}; chains "
                  + ", ".join(f"{k} {v}" for k, v in f["chains"].items())
                  + f"). Median wall {default['wall_median_s']:.3f} s: **{_fmt(default['ratio'], 2)}x the floor**.",
                  "", runs_table(default)]
        if default.get("local"):
            parts += ["", "The same fleet at delay 0 (CPU and servers only):", "", runs_table(default, "local")]
        if default.get("pulled"):
            parts += ["", pulled_line(default), "", runs_table(default, "pulled")]
    parts += ["", "### How cost grows", "", scaling_table(result)]
    if plot_name:
        parts += ["", f"![wall time against N and M](../bench/results/{plot_name})"]
    parts += ["", "### Where the time goes (medians, seconds after spawn)", "", timeline_table(result),
              "", "### Start-up", "", startup_table(result), "", "### Targets", "", targets_table(result)]
    return "\n".join(parts)


def pulled_line(point: dict) -> str:
    pulled = point["pulled"]
    return (f"After `docker pull` of the {point['stale']} stale tags without a recreate ({pulled['listed_by_id']} "
            f"containers listed by image ID), at the delay: median wall {pulled['wall_median_s']:.3f} s, "
            f"**{pulled['to_clean']:.2f}x the clean state** ({point['wall_median_s']:.3f} s).")


def text_summary(result: dict) -> str:
    default = next((p for p in result["points"] if "default" in p["roles"] and p.get("pulled")), None)
    pulled = ["== pulled without a recreate ==\n" + pulled_line(default)] if default else []
    return "\n\n".join(pulled + ["== how cost grows ==\n" + scaling_table(result),
                        "== where the time goes ==\n" + timeline_table(result),
                        "== start-up ==\n" + startup_table(result),
                        "== targets ==\n" + targets_table(result)])


# -- files ----------------------------------------------------------------------------------


def write(result: dict, results_dir: Path, *, docs: Path | None) -> list[Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = result["started_at"].replace(":", "").replace("-", "") + ("-quick" if result["settings"]["quick"] else "")
    json_path = results_dir / f"{stem}.json"
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    written = [json_path]
    png = plot(result, results_dir / f"{stem}.png")
    if png:
        written.append(png)
    if docs is not None:
        update_docs(docs, markdown(result, png.name if png else None))
        written.append(docs)
    return written


def update_docs(path: Path, section: str) -> None:
    """Replace what lies between the results markers (the prose around them is left as it is)."""
    block = f"{DOCS_BEGIN}\n{section}\n{DOCS_END}"
    text = path.read_text() if path.exists() else f"# Performance\n\n{DOCS_BEGIN}\n{DOCS_END}\n"
    if DOCS_BEGIN not in text:
        text = text.rstrip() + f"\n\n## Latest results\n\n{DOCS_BEGIN}\n{DOCS_END}\n"
    pattern = re.compile(re.escape(DOCS_BEGIN) + ".*?" + re.escape(DOCS_END), re.S)
    path.write_text(pattern.sub(lambda _: block, text, count=1))


def plot(result: dict, path: Path) -> Path | None:
    """Wall time and floor against N (M fixed) and against M (N fixed); None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axis, role, key, label in ((axes[0], "n-sweep", "containers", "N containers"),
                                   (axes[1], "m-sweep", "images", "M distinct images")):
        chosen = sorted((p for p in result["points"] if role in p["roles"]), key=lambda p: p[key])
        if not chosen:
            axis.set_visible(False)
            continue
        x = [p[key] for p in chosen]
        axis.plot(x, [p["wall_median_s"] for p in chosen], "o-", label="wall (median)")
        axis.fill_between(x, [p["wall_min_s"] for p in chosen], [p["wall_max_s"] for p in chosen], alpha=0.2)
        axis.plot(x, [p["cpu_median_s"] for p in chosen], "s--", label="CPU (median)")
        axis.plot(x, [p["floor"]["seconds"] for p in chosen], "k:", label="round-trip floor")
        axis.plot(x, [RATIO_TARGET * p["floor"]["seconds"] for p in chosen], ":", color="grey",
                  label=f"{RATIO_TARGET}x floor")
        fixed = "M" if role == "n-sweep" else "N"
        axis.set_title(f"{fixed} = {chosen[0]['images' if role == 'n-sweep' else 'containers']}")
        axis.set_xlabel(label)
        axis.set_xscale("log")
        axis.minorticks_off()
        axis.set_xticks(x, [str(v) for v in x])
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("seconds")
    axes[0].set_ylim(bottom=0)
    shown = next((a for a in axes if a.get_visible()), None)
    if shown is None:
        plt.close(figure)
        return None  # no sweep: nothing to draw
    shown.legend(fontsize=8)
    figure.suptitle(f"spyglass scan, {result['network']['delay_ms']:g} ms each way "
                    f"(round trip {result['network']['rtt_ms']:.0f} ms), {result['started_at']}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _fmt(value, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"
