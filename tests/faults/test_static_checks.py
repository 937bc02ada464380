"""Checks that stay on: bandit over engine/ and handler/, checkov over infra/ when it is installed.

A finding is either fixed or justified in place with `# nosec BXXX # why`, so the
scan must come back empty. cfn-lint runs in tests/aws/test_infra.py.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.mark.skipif(importlib.util.find_spec("bandit") is None, reason="bandit is not installed (test extras)")
def test_bandit_finds_nothing_unjustified_in_engine_and_handler():
    done = subprocess.run([sys.executable, "-m", "bandit", "-r", "engine", "handler", "-f", "json", "-q"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    results = json.loads(done.stdout)["results"]
    findings = [f"{r['filename']}:{r['line_number']}: {r['test_id']} {r['issue_text']}" for r in results]
    assert not findings, "\n".join(findings)


@pytest.mark.skipif(importlib.util.find_spec("checkov") is None, reason="checkov is not installed")
def test_checkov_passes_the_template():
    done = subprocess.run([sys.executable, "-m", "checkov.main", "-f", "infra/template.yaml", "--framework",
                           "cloudformation", "-o", "json", "--quiet", "--compact", "--skip-download"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    report = json.loads(done.stdout) if done.stdout.strip() else {}
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}"
              for c in report.get("results", {}).get("failed_checks", [])]
    assert not failed, "\n".join(failed)
