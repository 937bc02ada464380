"""The README's commands, run the way a new user runs them: as subprocesses."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from engine.report import schema
from tests.stack.listener import CountingListener
from tests.reportdoc import containers_of

ROOT = Path(__file__).parents[2]
SCHEMA = schema()


@pytest.mark.integration
@pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox starts its own dockerd: root only")
def test_the_sandbox_command_prints_a_valid_report_that_matches_its_fleet():
    result = subprocess.run([sys.executable, "-m", "tests.stack.sandbox", "--output", "json"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    jsonschema.validate(report, SCHEMA)
    expected = {}
    for line in result.stderr.splitlines():  # "  name         status (reason)" lines printed before the scan
        parts = line.split()
        if line.startswith("  ") and len(parts) in (2, 3) and parts[1] in ("fresh", "stale", "skipped", "error"):
            expected[parts[0]] = (parts[1], parts[2].strip("()") if len(parts) == 3 else None)
    assert len(expected) == 11
    assert {c["name"]: (c["status"], c["reason"]) for c in containers_of(report)} == expected
    assert "Traceback" not in result.stderr


def test_a_wrong_registry_ca_exits_2_before_connecting_to_the_daemon(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    with CountingListener() as daemon:
        result = subprocess.run([sys.executable, "-m", "handler.cli", "scan", "--registry-ca", str(bundle),
                                 "--registry-ca-validate", "-H", daemon.address], cwd=ROOT,
                                capture_output=True, text=True, timeout=30)
        assert daemon.connections() == 0
    assert result.returncode == 2 and result.stdout == ""
    assert str(bundle) in result.stderr and "malformed PEM" in result.stderr


def test_version_and_help():
    version = subprocess.run([sys.executable, "-m", "handler.cli", "--version"], cwd=ROOT, capture_output=True,
                             text=True, timeout=30)
    assert version.returncode == 0 and version.stdout.startswith("spyglass ")
    bare = subprocess.run([sys.executable, "-m", "handler.cli"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert bare.returncode == 2 and "scan" in bare.stderr
