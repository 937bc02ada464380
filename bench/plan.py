"""What one benchmark run measures: its settings, and the fleets in the order they are built.

Points are built in order of (M, N): the N sweep grows one fleet (50 → 300 → 1,000
at fixed M), then the M sweep replaces only the containers whose image changes.
A fleet that two roles share (the default fleet is the middle of the M sweep) is
built and scanned once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .fleet import Fleet


@dataclass(frozen=True)
class Settings:
    containers: int = 300  # N
    images: int = 100  # M
    stale: int = 20  # S
    delay_ms: float = 25.0  # each way
    concurrency: int = 8
    runs: int = 5  # scans of the default fleet at the delay
    local_runs: int = 3  # scans of the default fleet at delay 0 (none when the delay is 0 already)
    sweep_runs: int = 3
    pulled_runs: int = 5  # scans of the default fleet after `docker pull` of its stale tags (0: none)
    warmups: int = 1  # unrecorded scans before each point's runs
    sweep_containers: tuple[int, ...] = (50, 300, 1000)
    sweep_images: tuple[int, ...] = (25, 100, 300)
    sweep_fixed_images: int | None = None  # M of the N sweep; default: the smallest M of the M sweep
    sweeps: bool = True
    startup_samples: int = 7
    storage_driver: str = "overlay2"
    scanner_tree: str | None = None  # import spyglass from this checkout instead of the installed one
    quick: bool = False

    @property
    def delay(self) -> float:
        return self.delay_ms / 1000

    @property
    def fixed_images(self) -> int:
        return self.sweep_fixed_images or min(self.sweep_images)

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(self).items()}


QUICK = dict(containers=40, images=20, stale=5, runs=1, local_runs=1, sweep_runs=1, pulled_runs=1, warmups=1,
             sweep_containers=(20, 40, 80), sweep_images=(10, 20, 40), startup_samples=3)


@dataclass
class Point:
    fleet: Fleet
    roles: set[str] = field(default_factory=set)  # default | n-sweep | m-sweep

    def runs(self, settings: Settings) -> int:
        counts = [settings.runs if "default" in self.roles else 0]
        counts.append(settings.sweep_runs if self.roles & {"n-sweep", "m-sweep"} else 0)
        return max(counts)


def points(settings: Settings) -> list[Point]:
    found: dict[tuple[int, int], Point] = {}

    def add(containers: int, images: int, role: str) -> None:
        key = (containers, images)
        if key not in found:
            found[key] = Point(Fleet(containers, images, settings.stale))
        found[key].roles.add(role)

    add(settings.containers, settings.images, "default")
    if settings.sweeps:
        for n in settings.sweep_containers:
            add(n, settings.fixed_images, "n-sweep")
        for m in settings.sweep_images:
            add(settings.containers, m, "m-sweep")
    return [found[key] for key in sorted(found, key=lambda k: (k[1], k[0]))]
