"""A headless Chromium for the page tests (tests/browser/cdp.py), one per session.

Every test here is marked `browser` (so `-m "not browser"` leaves them out) and skipped, with the
reason, when Chromium is not installed; scripts/setup installs Debian's `chromium`. Screenshots
go to $SPYGLASS_ARTEFACTS when it is set (CI can keep that folder), else to the test's tmp_path;
each test prints where.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser.cdp import Chromium, executable


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium(tmp_path_factory):
    if executable() is None:
        pytest.skip("browser tests need Chromium (apt-get install chromium; scripts/setup does it), "
                    "or SPYGLASS_CHROMIUM=/path/to/chromium")
    with Chromium.start(tmp_path_factory.mktemp("chromium") / "profile") as browser:
        yield browser


@pytest.fixture
def artefacts(tmp_path) -> Path:
    chosen = os.environ.get("SPYGLASS_ARTEFACTS")
    folder = Path(chosen) if chosen else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder
