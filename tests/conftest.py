"""Session fixtures for the integration stack (tests/stack).

`stack` starts a private dockerd, two registries and a token server once per
session; `demo_fleet` builds the demo containers once and returns their expected
statuses. Tests that use either are marked `integration` automatically, so
`-m "not integration"` runs the unit tests alone. The stack package is imported
only when a fixture is used, so unit-test runs do not pay for it.
"""
from __future__ import annotations

import os

import pytest

_STACK_FIXTURES = frozenset({"stack", "demo_fleet"})
_NEEDED_BINARIES = ("/usr/sbin/dockerd", "/usr/bin/docker-registry", "/bin/busybox")


def pytest_collection_modifyitems(items):
    for item in items:
        if _STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def _why_no_stack() -> str | None:
    if os.geteuid() != 0:
        return "integration stack needs root: it starts its own dockerd"
    missing = [path for path in _NEEDED_BINARIES if not os.access(path, os.X_OK)]
    if missing:
        return f"integration stack needs {', '.join(missing)} (apt: docker.io docker-registry busybox-static)"
    return None


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    reason = _why_no_stack()
    if reason:
        pytest.skip(reason)
    from tests.stack import Stack

    with Stack().start(tmp_path_factory.mktemp("stack")) as started:
        yield started


@pytest.fixture(scope="session")
def demo_fleet(stack):
    from tests.stack import build_demo_fleet

    return build_demo_fleet(stack)
