"""Build the Lambda artifact: spyglass's packages plus its dependencies for arm64 / CPython 3.12, as one zip.

    python infra/package.py                       # infra/build/spyglass-lambda.zip
    python infra/package.py --wheelhouse DIR      # no index: wheels from DIR only (offline)
    python infra/package.py --deps-dir DIR        # dependencies already installed in DIR (no pip)

Outline:
    1. pip installs infra/lambda-requirements.txt (pinned, hashed) for manylinux2014_aarch64 /
       cp312 into a scratch folder: wheels only, nothing compiled, so the host's architecture
       and Python version do not matter
    2. engine/ and handler/ are copied next to them (sources only, no __pycache__), with a
       spyglass-<version>.dist-info/METADATA written from pyproject.toml, so that
       importlib.metadata (engine/version.py) answers in the Lambda as in an install
    3. the zip is written in a fixed order with fixed timestamps and permissions, so the
       same inputs give the same bytes (its sha256 is printed)
    4. --check imports the handler from the zip with this interpreter (pure-Python parts only)
"""
from __future__ import annotations

import argparse
import hashlib
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    output = Path(args.output)
    with tempfile.TemporaryDirectory(prefix="spyglass-package-") as scratch:
        deps = Path(args.deps_dir) if args.deps_dir else _install(Path(scratch) / "deps", args.wheelhouse)
        files = collect(deps) | write_dist_info(Path(scratch) / "meta")
        write_zip(output, files)
    digest, unzipped = _describe(output)
    print(f"{output}: {output.stat().st_size} bytes ({unzipped} unzipped), {len(files)} files, sha256 {digest}")
    if output.stat().st_size > MAX_ZIPPED or unzipped > MAX_UNZIPPED:
        print("too large for a direct Lambda upload", file=sys.stderr)
        return 1
    return check_import(output) if args.check else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Build the spyglass Lambda zip (arm64, Python 3.12).")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help=f"zip to write (default {DEFAULT_OUTPUT})")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--wheelhouse", help="install from the wheels in this folder only (no index)")
    source.add_argument("--deps-dir", help="dependencies already installed here; pip is not run")
    parser.add_argument("--check", action="store_true", help="import the handler from the built zip")
    return parser


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


def check_import(output: Path) -> int:
    """Import the handler and the composition from the zip alone, as zipimport would in a pinch."""
    code = ("import sys; sys.path[:] = [sys.argv[1]] + [p for p in sys.path if 'site-packages' not in p]; "
            "import handler.aws.lambda_function, handler.compose, handler.aws.sns, urllib3, certifi, engine.version; "
            "print('imports from the zip: ok (spyglass', engine.version.__version__ + ', urllib3', "
            "urllib3.__version__ + ')')")
    done = subprocess.run([sys.executable, "-I", "-c", code, str(output)], cwd=tempfile.gettempdir())
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
