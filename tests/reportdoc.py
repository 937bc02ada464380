"""Test helpers for the report document (schema_version 2): a fleet's containers, flattened."""
from __future__ import annotations

from dataclasses import replace


def containers_of(doc: dict) -> list[dict]:
    """Every container of a JSON report, endpoint after endpoint (one endpoint: its containers)."""
    return [c for endpoint in doc["endpoints"] for c in endpoint["containers"]]


def with_containers(report, containers):
    """A fleet-of-one Report with other containers."""
    (endpoint,) = report.endpoints
    return replace(report, endpoints=(replace(endpoint, containers=tuple(containers)),))
