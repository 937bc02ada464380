"""Build the Lambda artifact: spyglass's packages plus its dependencies for arm64 / CPython 3.12, as one zip.

    python infra/package.py                       # infra/build/spyglass-lambda.zip
    python infra/package.py --wheelhouse DIR      # no index: wheels from DIR only (offline)
    python infra/package.py --deps-dir DIR        # dependencies already installed in DIR (no pip)
    python infra/package.py --check               # then run the handler from it with Python 3.12

Outline:
    1. pip installs infra/lambda-requirements.txt (pinned, hashed) for manylinux2014_aarch64 /
       cp312 into a scratch folder: wheels only, nothing compiled, so the host's architecture
       and Python version do not matter
    2. engine/ and handler/ are copied next to them (sources only, no __pycache__), with a
       spyglass-<version>.dist-info/METADATA written from pyproject.toml, so that
       importlib.metadata (engine/version.py) answers in the Lambda as in an install
    3. a Python 3.12 interpreter (--python, else python3.12 on PATH or in pyenv) compiles every
       .py file with unchecked-hash invalidation: the .pyc holds a hash of its source instead of
       a time, is never checked against the source, and names its file under /var/task, so
       cold starts skip compiling and the bytes stay the same from build to build
    4. the zip is written in a fixed order with fixed timestamps and permissions, so the
       same inputs give the same bytes (its sha256 is printed)
    5. --check unpacks the zip read-only, as Lambda does, and with that 3.12 interpreter and only
       the zip (plus boto3 from this environment, as the runtime provides it) on its path, imports
       the handler, the Docker SDK and requests, checks each module came from its bytecode, runs
       one invocation against a closed port, and prints the cold import time
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "handler")
REQUIREMENTS = ROOT / "infra" / "lambda-requirements.txt"
DEFAULT_OUTPUT = ROOT / "infra" / "build" / "spyglass-lambda.zip"
PLATFORM, PYTHON = "manylinux2014_aarch64", "3.12"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold; any fixed value would do
SKIPPED_PARTS = frozenset({"__pycache__", "bin"})  # bin: console scripts pip wrote for this host
MAX_ZIPPED, MAX_UNZIPPED = 50 * 2**20, 250 * 2**20  # Lambda's limits for a direct upload
TASK_ROOT = "/var/task"  # where Lambda unpacks the zip: the file names the bytecode carries
# boto3 and what it imports, which the python3.12 runtime provides (/var/runtime) and the zip leaves out
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six")


class NoTargetPython(Exception):
    """No Python 3.12 to compile or check with."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    output = Path(args.output)
    try:
        python = target_python(args.python) if args.check or not args.no_bytecode else None
    except NoTargetPython as exc:
        print(f"package: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="spyglass-package-") as scratch:
        deps = Path(args.deps_dir) if args.deps_dir else _install(Path(scratch) / "deps", args.wheelhouse)
        files = collect(deps) | write_dist_info(Path(scratch) / "meta")
        if not args.no_bytecode:
            files |= compile_for_target(files, python, Path(scratch) / "stage")
        write_zip(output, files)
    digest, unzipped = _describe(output)
    print(f"{output}: {output.stat().st_size} bytes ({unzipped} unzipped), {len(files)} files, sha256 {digest}")
    if output.stat().st_size > MAX_ZIPPED or unzipped > MAX_UNZIPPED:
        print("too large for a direct Lambda upload", file=sys.stderr)
        return 1
    return check_import(output, python) if args.check else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Build the spyglass Lambda zip (arm64, Python 3.12).")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help=f"zip to write (default {DEFAULT_OUTPUT})")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--wheelhouse", help="install from the wheels in this folder only (no index)")
    source.add_argument("--deps-dir", help="dependencies already installed here; pip is not run")
    parser.add_argument("--python", help=f"a Python {PYTHON} interpreter (default: python{PYTHON} on PATH or in pyenv)")
    parser.add_argument("--no-bytecode", action="store_true",
                        help="leave the .pyc files out (cold starts then compile every module)")
    parser.add_argument("--check", action="store_true", help=f"run the handler from the built zip with Python {PYTHON}")
    return parser


def target_python(explicit: str | None) -> str:
    """An interpreter of the function's Python version: the one named, else python3.12 on PATH or in pyenv."""
    candidates = [explicit] if explicit else [shutil.which(f"python{PYTHON}"), *sorted(glob.glob(
        os.path.join(os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv")), "versions", f"{PYTHON}*",
                     "bin", f"python{PYTHON}")), reverse=True)]
    for candidate in filter(None, candidates):
        try:
            found = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                   capture_output=True, text=True, timeout=30).stdout.strip()
        except OSError:
            continue
        if found == PYTHON:
            return candidate
    where = explicit or f"python{PYTHON} on PATH or in pyenv"
    raise NoTargetPython(f"no Python {PYTHON} interpreter ({where}); the bytecode and --check need the function's "
                         f"version: install it (e.g. pyenv install {PYTHON}) and pass --python PATH, or build "
                         "with --no-bytecode and without --check")


def _install(target: Path, wheelhouse: str | None) -> Path:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--target", str(target), "--platform", PLATFORM, "--implementation", "cp",
               "--python-version", PYTHON, "--only-binary=:all:", "--no-compile", "--require-hashes",
               "-r", str(REQUIREMENTS)]
    if wheelhouse:
        command += ["--no-index", "--find-links", wheelhouse]
    subprocess.run(command, check=True)
    return target


def collect(deps: Path) -> dict[str, Path]:
    """Archive name -> file: the dependencies, then our packages (which win on a clash)."""
    files = {}
    for path in sorted(deps.rglob("*")):
        relative = path.relative_to(deps)
        if path.is_file() and not SKIPPED_PARTS & set(relative.parts) and path.suffix != ".pyc":
            files[relative.as_posix()] = path
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".json"):
                files[path.relative_to(ROOT).as_posix()] = path
    return files


def write_dist_info(folder: Path) -> dict[str, Path]:
    """The two fields importlib.metadata needs for version(), from the one place they are written."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    name = f"{project['name']}-{project['version']}.dist-info/METADATA"
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    return {name: path}


def write_zip(output: Path, files: dict[str, Path]) -> None:
    """Same files in, same bytes out: sorted names, one timestamp, one mode."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so external_attr holds a mode
            info.external_attr = (0o100644 if not name.endswith(".so") else 0o100755) << 16
            archive.writestr(info, files[name].read_bytes(), compresslevel=9)
    partial.replace(output)


def _describe(output: Path) -> tuple[str, int]:
    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    with zipfile.ZipFile(output) as archive:
        return digest, sum(info.file_size for info in archive.infolist())


def compile_for_target(files: dict[str, Path], python: str, stage: Path) -> dict[str, Path]:
    """Archive name -> .pyc for every .py in files, compiled by python with unchecked-hash invalidation."""
    for name, path in files.items():
        (stage / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, stage / name)
    done = subprocess.run([python, "-I", "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
                           "-s", str(stage), "-p", TASK_ROOT, str(stage)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"package: compiling with {python} failed:\n{done.stdout}{done.stderr}")
    return {path.relative_to(stage).as_posix(): path for path in sorted(stage.rglob("*.pyc"))}


def check_import(output: Path, python: str) -> int:
    """Run the handler from the unpacked zip with the target interpreter; prints what it measured."""
    with tempfile.TemporaryDirectory(prefix="spyglass-check-") as scratch:
        task, runtime = Path(scratch) / "task", Path(scratch) / "runtime"
        with zipfile.ZipFile(output) as archive:
            archive.extractall(task)
        _read_only(task)
        _link_runtime_packages(runtime)
        done = subprocess.run([python, "-I", "-S", "-B", "-c", CHECK, str(task), str(runtime)],
                              capture_output=True, text=True, cwd=scratch, timeout=120)
        _writable(task)
    if done.returncode != 0:
        print(f"package: the zip does not run with {python}:\n{done.stdout}{done.stderr}", file=sys.stderr)
        return 1
    result = json.loads(done.stdout.splitlines()[-1])
    print(f"runs from the zip with Python {PYTHON} ({python}): cold imports {result['import_ms']:.0f} ms, "
          f"{result['modules']} modules from the zip, {result['from_bytecode']} of them from bytecode; "
          f"one invocation: {result['status']}")
    with zipfile.ZipFile(output) as archive:
        compiled = any(name.endswith(".pyc") for name in archive.namelist())
    if compiled and result["without_bytecode"]:
        print(f"package: compiled, but these load from source: {', '.join(result['without_bytecode'])}",
              file=sys.stderr)
        return 1
    return 0


def _read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)


def _writable(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _link_runtime_packages(runtime: Path) -> None:
    """boto3 and its dependencies from this environment (pure Python), as /var/runtime holds them."""
    runtime.mkdir()
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue  # an invocation without AWS options never imports boto3
        source = Path(spec.origin).parent if spec.submodule_search_locations else Path(spec.origin)
        (runtime / source.name).symlink_to(source)


# Runs in the target interpreter (-I -S -B: no site-packages, no user paths, writes nothing).
CHECK = r"""
import importlib, importlib.util, io, json, os, socket, sys, time, contextlib
task, runtime = sys.argv[1], sys.argv[2]
sys.path[:0] = [task, runtime]
files_before = sorted(os.path.join(d, f) for d, _, fs in os.walk(task) for f in fs)
started = time.perf_counter()
for name in ("handler.aws.lambda_function", "handler.compose", "handler.aws.sns", "handler.aws.dynamodb",
             "handler.aws.secrets", "handler.aws.ecr", "handler.outcome", "handler.aws.metrics",
             "docker", "requests", "urllib3", "certifi"):
    importlib.import_module(name)
import_ms = (time.perf_counter() - started) * 1000
from handler.aws.lambda_function import Runtime, invoke
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
with contextlib.redirect_stdout(io.StringIO()):
    result = invoke({}, None, env={"DOCKER_HOST": f"tcp://127.0.0.1:{port}"}, runtime=Runtime(),
                    log_stream=io.StringIO())
assert result["status"] == "errors" and result["error"], result
for name in ("docker", "requests", "urllib3", "certifi", "idna", "charset_normalizer", "engine", "handler"):
    assert sys.modules[name].__file__.startswith(task + os.sep), (name, sys.modules[name].__file__)
ours = [m.__file__ for m in list(sys.modules.values())
        if (getattr(m, "__file__", None) or "").startswith(task + os.sep) and m.__file__.endswith(".py")]
missing = []
for source in ours:
    cached = importlib.util.cache_from_source(source)
    header = open(cached, "rb").read(8) if os.path.exists(cached) else b""
    # magic number of this interpreter, then flags 0b01: hash-based, source never checked
    if header[:4] != importlib.util.MAGIC_NUMBER or int.from_bytes(header[4:8], "little") != 1:
        missing.append(os.path.relpath(source, task))
assert sorted(os.path.join(d, f) for d, _, fs in os.walk(task) for f in fs) == files_before, "wrote into the task folder"
print(json.dumps({"import_ms": import_ms, "modules": len(ours), "from_bytecode": len(ours) - len(missing),
                  "without_bytecode": missing[:10], "status": result["status"]}))
"""


if __name__ == "__main__":
    sys.exit(main())
