"""Synthetic reports of any size, for the delivery tests (no daemon needed to build 1,000 containers)."""
from __future__ import annotations

import hashlib

from engine.report import ContainerResult, RegistrySummary, Report


def digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def container(i: int, status: str, *, error_length: int = 60) -> ContainerResult:
    reference = f"registry.example.com/team-{i % 17}/service-{i}:1.{i % 9}.0"
    local = (digest(f"local-{i}"),)
    if status == "fresh":
        return ContainerResult(digest(f"id-{i}")[7:], f"service-{i}", reference, "fresh", None, reference,
                               "registry.example.com", local, local[0])
    if status == "stale":
        return ContainerResult(digest(f"id-{i}")[7:], f"service-{i}", reference, "stale", None, reference,
                               "registry.example.com", local, digest(f"remote-{i}"))
    if status == "error":
        return ContainerResult(digest(f"id-{i}")[7:], f"service-{i}", reference, "error", "not-found", reference,
                               "registry.example.com", local, None,
                               f"HEAD manifest {reference}: HTTP 404 " + "x" * error_length)
    return ContainerResult(digest(f"id-{i}")[7:], f"service-{i}", reference, "skipped", "pinned-digest", reference,
                           "registry.example.com", local, None)


def fleet_report(counts: dict[str, int], *, endpoint: str = "tcp://docker-01.example.net:2376",
                 error_length: int = 60) -> Report:
    """A report with counts = {"fresh": n, "stale": n, "error": n, "skipped": n} containers."""
    containers, i = [], 0
    for status, count in counts.items():
        for _ in range(count):
            containers.append(container(i, status, error_length=error_length))
            i += 1
    return Report.single(endpoint, 1_700_000_000.0, 1_700_000_012.5, tuple(containers),
                  (RegistrySummary("registry.example.com", {"ping": 1, "token": 1, "head": i}),), "1.45")
