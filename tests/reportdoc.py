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


def read_back(doc: dict) -> dict:
    """doc read into the report's dataclasses and written again (Report.from_dict, then to_dict)."""
    from engine.report import Report

    return Report.from_dict(doc).to_dict()


def assert_reads_back(doc: dict, *, extra: tuple[str, ...] = ()) -> None:
    """The document comes back from its dataclasses unchanged, but for top-level fields to_dict never
    writes (extra: the fleet aggregation's "run")."""
    assert read_back(doc) == {key: value for key, value in doc.items() if key not in extra}
