"""The engine matrix's stacks: one per engine and store, started once and shared by its tests.

An engine that cannot be fetched (no network, a suite that no longer carries it) is a skip with
the reason; one that is fetched but does not start is a failure.
"""
from __future__ import annotations

import contextlib

import pytest

from tests.conftest import _why_no_stack

from .matrix import MATRIX, started_stack


@pytest.fixture(scope="module", params=list(MATRIX))
def engine_stack(request, tmp_path_factory):
    """(matrix key, EngineSpec, started Stack)."""
    reason = _why_no_stack()
    if reason:
        pytest.skip(reason)
    from tests.stack.engines import EngineUnavailable

    with contextlib.ExitStack() as running:
        try:
            stack = running.enter_context(started_stack(MATRIX[request.param],
                                                        tmp_path_factory.mktemp(f"engine-{request.param}")))
        except EngineUnavailable as exc:
            pytest.skip(f"engine {request.param} cannot be had: {exc}")
        yield request.param, MATRIX[request.param], stack
