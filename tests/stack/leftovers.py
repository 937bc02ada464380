"""What a stopped daemon may leave on the host: processes, cgroups, mounts.

Everything here is found by a name unique to one of our daemons (its runtime
dir, its containerd namespace, its cgroup parent), never by a program name, so
another engineer's daemon on the same machine is never touched.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

from . import procs


def kill_processes(needles: list[str], cgroup_parent: str, *, own_pid: int, rounds: int = 50) -> None:
    """SIGKILL every process whose command line holds a needle or that sits in our cgroup, until none is left."""
    for _ in range(rounds):
        pids = {pid for needle in needles for pid in procs.pids_with_arg(needle)}
        pids |= set(cgroup_pids(cgroup_parent))
        pids.discard(own_pid)
        if not pids:
            return
        procs.kill_pids(sorted(pids))
        time.sleep(0.1)


def _cgroup_dirs(name: str) -> list[Path]:
    return [p for p in Path("/sys/fs/cgroup").glob(f"*/{name}") if p.is_dir()]


def cgroup_pids(name: str) -> list[int]:
    pids = []
    for top in _cgroup_dirs(name):
        for procs_file in top.rglob("cgroup.procs"):
            try:
                pids += [int(line) for line in procs_file.read_text().split()]
            except OSError:
                continue
    return pids


def remove_cgroups(name: str) -> None:
    for top in _cgroup_dirs(name):
        # Deepest first: a cgroup directory can only be removed once it has no children.
        for directory in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            _rmdir(directory)
        _rmdir(top)


def _rmdir(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def unmount_below(directory: Path) -> None:
    prefix = str(directory.resolve()) + "/"
    with open("/proc/self/mountinfo") as handle:
        points = [line.split()[4] for line in handle]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
