"""Fixtures for the fault tests: the proxied registry and its small fleet, built once on the session stack."""
from __future__ import annotations

import pytest

from tests.aws.conftest import aws  # noqa: F401 - moto's AWS, for the Lambda's fault tests


@pytest.fixture(scope="package")
def world(stack, tmp_path_factory):
    from .world import build_world, destroy_world

    built = build_world(stack, tmp_path_factory.mktemp("faults"))
    yield built
    destroy_world(built)
