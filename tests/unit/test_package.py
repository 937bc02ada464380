"""What the package carries: its version, written once in pyproject.toml and read from the metadata
everywhere else, and the report schema as package data."""
import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

from engine import transport
from engine.report import schema
from engine.version import NOT_INSTALLED, installed_version

ROOT = Path(__file__).parents[2]
# The given folders first, and no site-packages: no install of spyglass answers but one a test puts there.
_ISOLATED = ("import sys; sys.path[:] = sys.argv[1:] + [p for p in sys.path if 'site-packages' not in p]; "
             "import handler.cli; handler.cli.main(['--version'])")


def copy_sources(folder: Path) -> Path:
    """engine/ and handler/ alone: a checkout may hold an egg-info that importlib.metadata would read."""
    for part in ("engine", "handler"):
        shutil.copytree(ROOT / part, folder / part, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def spyglass_version(*path: Path) -> str:
    done = subprocess.run([sys.executable, "-I", "-c", _ISOLATED, *map(str, path)], capture_output=True,
                          text=True, timeout=60, cwd=path[0])
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_spyglass_version_prints_the_installed_metadata_version():
    done = subprocess.run([sys.executable, "-m", "handler.cli", "--version"], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"spyglass {metadata.version('spyglass')}\n"


def test_the_installed_metadata_is_the_version_pyproject_writes():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert metadata.version("spyglass") == project["version"]


def test_the_version_comes_from_whichever_dist_info_is_on_the_path(tmp_path):
    info = tmp_path / "spyglass-9.8.7.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: spyglass\nVersion: 9.8.7\n")
    assert spyglass_version(copy_sources(tmp_path / "src"), tmp_path) == "spyglass 9.8.7"


def test_sources_without_any_install_say_so_instead_of_guessing(tmp_path):
    assert spyglass_version(copy_sources(tmp_path)) == f"spyglass {NOT_INSTALLED}"
    assert installed_version("spyglass-no-such-distribution") == NOT_INSTALLED


def test_the_user_agent_carries_the_same_version():
    assert transport.USER_AGENT == f"spyglass/{metadata.version('spyglass')}"


def test_a_built_wheel_carries_the_report_schema(tmp_path):
    """pyproject.toml names engine/report.schema.json as package data; built from a copy, not in this tree."""
    source = copy_sources(tmp_path / "source")
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, source / part)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "-w", str(tmp_path / "wheels"),
                           "--no-deps", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    wheel, = (tmp_path / "wheels").glob("spyglass-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert json.loads(archive.read("engine/report.schema.json")) == schema()
