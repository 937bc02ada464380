"""Start-up costs: module import times (`python -X importtime`) and the CLI's own start.

Each figure is the median of several fresh interpreters. An import's cost is
the sum of the cumulative times of the top-level modules the statement loads;
what the interpreter loads before any statement (`site`, `encodings`...) is
not counted, it is in the bare interpreter's start.
The time to the first network request comes from the scans' timelines instead
(the daemon's front records when the scanner connects).
"""
from __future__ import annotations

import compileall
import importlib.util
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = 7
_LINE = re.compile(r"^import time:\s+(?P<self>\d+) \|\s+(?P<cumulative>\d+) \|(?P<indent> *)(?P<name>\S+)\s*$")


def byte_compile(tree: Path | None = None) -> list[str]:
    """Write the scanner's bytecode beside its sources, as pip does when it installs a package.

    An editable install never gets it written when PYTHONDONTWRITEBYTECODE is set (this machine
    sets it): every scan would then compile engine/ and handler/ from source again, ~45 ms of CPU
    that no installed copy pays. Returns the package folders compiled.
    """
    folders = []
    for package in ("engine", "handler"):
        if tree is not None:
            folder = tree / package
        else:
            spec = importlib.util.find_spec(package)
            if spec is None or not spec.submodule_search_locations:
                continue
            folder = Path(list(spec.submodule_search_locations)[0])
        if compileall.compile_dir(str(folder), quiet=1, maxlevels=0):
            folders.append(str(folder))
    return folders


def parse_importtime(stderr: str) -> dict[str, int]:
    """Top-level modules of `-X importtime` output -> cumulative microseconds."""
    found = {}
    for line in stderr.splitlines():
        match = _LINE.match(line)
        if match and len(match["indent"]) == 1:  # one space after the bar: not nested
            found[match["name"]] = int(match["cumulative"])
    return found


def import_seconds(statement_modules: Sequence[str], *, python: str = sys.executable,
                   samples: int = SAMPLES, tree: Path | None = None) -> dict:
    """Median seconds to import the modules in a fresh interpreter, and the heaviest top-level ones."""
    started_with = set(_top_level(python, "pass", tree))  # site, encodings...: the interpreter's own start
    code = "; ".join(f"import {m}" for m in statement_modules)
    totals, last = [], {}
    for _ in range(samples):
        try:
            found = _top_level(python, code, tree)
        except RuntimeError as exc:
            return {"modules": list(statement_modules), "error": str(exc)}
        last = {name: us for name, us in found.items() if name not in started_with}
        totals.append(sum(last.values()) / 1e6)
    heaviest = sorted(last.items(), key=lambda item: -item[1])[:6]
    return {"modules": list(statement_modules), "seconds": round(statistics.median(totals), 4),
            "samples": [round(t, 4) for t in totals],
            "heaviest_ms": {name: round(us / 1000, 1) for name, us in heaviest}}


def _top_level(python: str, code: str, tree: Path | None) -> dict[str, int]:
    done = subprocess.run([python, "-X", "importtime", "-c", code], cwd=tree or REPO_ROOT, capture_output=True,
                          text=True, check=False, env=_env(tree))
    if done.returncode != 0:
        raise RuntimeError((done.stderr.strip().splitlines() or ["failed"])[-1])
    return parse_importtime(done.stderr)


def _env(tree: Path | None) -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(tree)} if tree else dict(os.environ)


def process_seconds(argv: Sequence[str], *, samples: int = SAMPLES, tree: Path | None = None) -> dict:
    """Median wall time of a whole short process (interpreter start included)."""
    times = []
    for _ in range(samples):
        started = time.monotonic()
        subprocess.run(list(argv), cwd=tree or REPO_ROOT, capture_output=True, check=False, env=_env(tree))
        times.append(time.monotonic() - started)
    return {"argv": [Path(argv[0]).name, *argv[1:]], "seconds": round(statistics.median(times), 4),
            "samples": [round(t, 4) for t in times]}


def lambda_module(tree: Path | None = None) -> str | None:
    """The Lambda entry point's module, if the tree has one (handler/aws/lambda_function.py today)."""
    for candidate in ("aws/lambda_function", "aws_lambda"):  # the second: trees before the aws package
        if ((tree or REPO_ROOT) / "handler" / f"{candidate}.py").is_file():
            return "handler." + candidate.replace("/", ".")
    return None


def measure(scanner: Sequence[str], *, samples: int = SAMPLES, tree: Path | None = None) -> dict:
    found = lambda_module(tree)
    common = dict(samples=samples, tree=tree)
    result = {
        "python_bare": process_seconds([sys.executable, "-c", "pass"], **common),
        "cli_version": process_seconds([*scanner, "--version"], **common),
        "import_cli": import_seconds(["handler.cli"], **common),
        # What the first scan imports after the flags are read: the composition, then the scan and the
        # registry code with urllib3 (while the first connections open); the Docker SDK only for an update.
        "import_scan_path": import_seconds(["handler.cli", "handler.compose", "engine.scan"], **common),
        "import_lambda": import_seconds([found], **common) if found else {"error": "no Lambda module"},
    }
    if found:
        # A cold Lambda's first invocation also loads boto3 and the scan path.
        result["import_lambda_first_invocation"] = import_seconds(
            [found, "handler.compose", "engine.scan", "boto3"], **common)
    return result
