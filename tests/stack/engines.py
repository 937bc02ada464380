"""Docker engines other than the machine's own, from Debian's archive, for the engine matrix.

    engine_tree(release, cache) → EngineTree (dockerd, containerd and the shim, unpacked)

Outline: with an apt configuration of our own (its sources list, state, lists and cache under
`cache/apt`; the machine's apt configuration is never read or touched), `apt-get update`, find the
docker.io version whose upstream part is the release's, `apt-get download` it and the containerd of
the same suite, and `dpkg -x` both into `cache/trees/<docker.io version>`. A tree already unpacked is
used as it is, with no network at all, so the matrix costs little after its first run.

runc is never taken from the archive: the newer suites' runc needs a newer glibc than Debian 12
has, and the machine's own runc (first on PATH after the tree's directories) serves both engines.
Anything that cannot be had (no network, a suite that no longer carries the release, no apt) is
`EngineUnavailable` with the reason, for the tests to skip on.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ARCHIVE = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
SUITES = ("trixie", "forky", "sid")
TESTS_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "engines"


class EngineUnavailable(RuntimeError):
    """An engine that cannot be had on this machine now; the message says why."""


@dataclass(frozen=True)
class EngineTree:
    """An unpacked docker.io + containerd: what a DockerDaemon needs to run that engine."""

    root: Path
    version: str  # docker.io's Debian version, e.g. 28.5.2+dfsg4-5

    @property
    def dockerd(self) -> Path:
        return self.root / "usr/sbin/dockerd"

    @property
    def path(self) -> tuple[str, ...]:
        """Directories to put before the system's on dockerd's PATH (containerd, its shim)."""
        return (str(self.root / "usr/bin"), str(self.root / "usr/sbin"))


def engine_tree(release: str, cache: Path = TESTS_CACHE, *, archive: str = ARCHIVE) -> EngineTree:
    """docker.io `release` (upstream version, e.g. "26.1.5") unpacked under cache; downloaded once."""
    trees = cache / "trees"
    for tree in sorted(trees.glob(f"{release}+*")) if trees.is_dir() else ():
        if (tree / "usr/sbin/dockerd").is_file() and (tree / ".complete").exists():
            return EngineTree(tree, tree.name)
    apt = _Apt(cache / "apt", archive)
    apt.update()
    version, suite = apt.find("docker.io", release)
    containerd = apt.version_in("containerd", suite)
    debs = apt.download([f"docker.io={version}", f"containerd={containerd}"])
    tree = trees / version
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    for deb in debs:
        _run(["dpkg", "-x", str(deb), str(tree)], f"unpack {deb.name}")
    for deb in debs:
        deb.unlink()  # the tree is what is kept: half the disk
    (tree / ".complete").write_text(f"docker.io {version}\ncontainerd {containerd}\n")
    return EngineTree(tree, version)


class _Apt:
    """apt-get and apt-cache with every directory of their own under `home`."""

    def __init__(self, home: Path, archive: str):
        self.home = home
        self.archive = archive
        self.sources = home / "sources.list"
        self.archives = home / "cache" / "archives"
        self.warnings = ""

    def options(self) -> list[str]:
        return ["-o", f"Dir::Etc::sourcelist={self.sources}", "-o", "Dir::Etc::sourceparts=-",
                "-o", f"Dir::State={self.home / 'state'}", "-o", f"Dir::State::status={self.home / 'state/status'}",
                "-o", f"Dir::Cache={self.home / 'cache'}", "-o", "Dir::Etc::preferencesparts=-",
                "-o", f"Dir::Etc::preferences={self.home / 'preferences'}", "-o", "Acquire::Languages=none",
                "-o", "APT::Sandbox::User=root", "-o", "Debug::NoLocking=1", "-o", "Acquire::Retries=1",
                "-o", "Acquire::http::Timeout=20"]

    def update(self) -> None:
        if not shutil.which("apt-get") or not os.path.exists(KEYRING):
            raise EngineUnavailable("no apt-get or Debian archive keyring on this machine")
        for directory in ("state/lists/partial", "cache/archives/partial"):
            (self.home / directory).mkdir(parents=True, exist_ok=True)
        (self.home / "state/status").touch()
        self.sources.write_text("".join(f"deb [signed-by={KEYRING}] {self.archive} {suite} main\n" for suite in SUITES))
        # apt-get update exits 0 when a mirror cannot be reached; its warnings explain an empty list.
        self.warnings = _run(["apt-get", *self.options(), "-q", "update"], "apt-get update (the tests' own sources)",
                             stderr=True)

    def madison(self, package: str) -> list[tuple[str, str]]:
        """(version, suite) for every version of package the sources carry."""
        out = _run(["apt-cache", *self.options(), "madison", package], f"apt-cache madison {package}")
        rows = []
        for line in out.splitlines():
            parts = [part.strip() for part in line.split("|")]
            if len(parts) == 3 and parts[0] == package:
                rows.append((parts[1], parts[2].split()[1].split("/")[0]))
        return rows

    def find(self, package: str, release: str) -> tuple[str, str]:
        rows = [(version, suite) for version, suite in self.madison(package) if version.startswith(release + "+")]
        if not rows:
            hint = next((line for line in self.warnings.splitlines() if line.startswith(("W:", "E:"))), "")
            raise EngineUnavailable(f"no {package} {release} in Debian {', '.join(SUITES)}" + (f" ({hint})" if hint else ""))
        return rows[0]

    def version_in(self, package: str, suite: str) -> str:
        for version, found in self.madison(package):
            if found == suite:
                return version
        raise EngineUnavailable(f"no {package} in Debian {suite}")

    def download(self, pins: list[str]) -> list[Path]:
        self.archives.mkdir(parents=True, exist_ok=True)
        before = set(self.archives.glob("*.deb"))
        _run(["apt-get", *self.options(), "-qq", "download", *pins], f"apt-get download {' '.join(pins)}",
             cwd=self.archives)
        names = [pin.replace("=", "_").replace(":", "%3a") for pin in pins]
        found = [deb for deb in self.archives.glob("*.deb") if any(deb.name.startswith(n + "_") for n in names)]
        if len(found) != len(pins):
            raise EngineUnavailable(f"apt-get download {' '.join(pins)} left {sorted(set(found) - before)}")
        return found


def _run(argv: list[str], what: str, *, cwd: Path | None = None, stderr: bool = False) -> str:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=cwd, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineUnavailable(f"{what}: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise EngineUnavailable(f"{what}: exit {done.returncode}: {detail[0]}")
    return done.stderr if stderr else done.stdout
