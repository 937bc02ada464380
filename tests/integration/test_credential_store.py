"""A credsStore as the docker CLI reads it, through a real helper on PATH against the real stack:
"credentials not found" means anonymous (auths is not read behind a store), any other failure is a
`configuration` error for that registry's containers."""
from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

from handler.cli import main
from tests.reportdoc import containers_of

NOT_FOUND = 'echo "credentials not found in native keychain"; exit 1'
BROKEN = 'echo "error getting credentials - keychain is locked"; exit 1'


def scan_with_store(stack, tmp_path, monkeypatch, helper_body: str, *names: str):
    helper = tmp_path / "bin" / "docker-credential-spyglass-store"
    helper.parent.mkdir()
    helper.write_text(f"#!/bin/sh\nread server\n{helper_body}\n")
    helper.chmod(0o700)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    alice = base64.b64encode(f"alice:{stack.alice.password}".encode()).decode()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credsStore": "spyglass-store", "auths": {stack.secure.address: {"auth": alice}}}))
    out, err = io.StringIO(), io.StringIO()
    code = main(["scan", "--output", "json", "--registry-ca", str(stack.registry_ca), "--docker-config",
                 str(config), *names], env=stack.env(), stdout=out, stderr=err, home=Path(stack.workdir))
    report = json.loads(out.getvalue())
    return code, {c["name"]: (c["status"], c["reason"]) for c in containers_of(report)}, err.getvalue()


def test_a_store_without_the_registry_means_anonymous(stack, demo_fleet, tmp_path, monkeypatch):
    code, found, err = scan_with_store(stack, tmp_path, monkeypatch, NOT_FOUND, "web-1", "private")
    assert code == 0, err
    # web-1 is public: anonymous is enough; private needs alice, whose auths entry docker ignores too
    assert found == {"web-1": ("fresh", None), "private": ("error", "unauthorized")}


def test_a_failing_store_is_a_configuration_error_for_its_registry(stack, demo_fleet, tmp_path, monkeypatch):
    code, found, err = scan_with_store(stack, tmp_path, monkeypatch, BROKEN, "web-1", "private")
    assert found == {"web-1": ("error", "configuration"), "private": ("error", "configuration")}
    assert "keychain is locked" not in err  # a helper's output may hold a secret: never quoted
