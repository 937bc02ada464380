"""What each engine answers, saved as the unit tests' fixtures: `python -m tests.engines.capture DIR [KEY...]`.

For each engine and store of the matrix (tests/engines/matrix.py), on the stack with the demo fleet
and again after the pull-without-recreate phase: the Engine API's answers to what spyglass calls
(`/version`, `/info`, `/containers/json?all=1`, `/images/json`) and to the inspects it may need (each
container's image, and the container where the list shows an image ID), in the engine's own API
version; what the registries answer for each tag the fleet runs; and the scan's verdicts beside the
expected ones. Prints one line per engine and state; writes DIR/<key>-<state>.json
(tests/unit/fixtures/engines/ holds the pulled state of each, which includes the clean cases).
/info is cut to its storage fields and the version to its numbers: nothing else of them is read.
"""
from __future__ import annotations

import io
import json
import sys
import tempfile
import time
from pathlib import Path

import docker

from handler.cli import main as cli
from tests.reportdoc import containers_of
from tests.stack import build_demo_fleet
from tests.stack.pulled import pull_without_recreate

from .matrix import MATRIX, started_stack


def snapshot(stack) -> dict:
    client = docker.APIClient(base_url=f"unix://{stack.daemon.socket}", version="auto", timeout=60)
    try:
        containers = client.containers(all=True)
        images = {}
        for image_id in sorted({c["ImageID"] for c in containers}):
            try:
                images[image_id] = client.inspect_image(image_id)
            except docker.errors.NotFound as exc:
                images[image_id] = {"status": exc.status_code, "message": exc.explanation}
        info, version = client.info(), client.version()
        by_id = [c for c in containers if c["Image"].startswith("sha256:") or c["Image"] == c["ImageID"]]
        return {"api_version": client.api_version,
                "version": {k: version.get(k) for k in ("Version", "ApiVersion", "MinAPIVersion")},
                "info": {k: info.get(k) for k in ("Driver", "DriverStatus", "ServerVersion")},
                "containers": containers, "images": client.images(), "image_inspect": images,
                "container_inspect": {c["Id"]: client.inspect_container(c["Id"]) for c in by_id}}
    finally:
        client.close()


def registry_answers(stack, report: dict) -> dict:
    """{reference: what its registry answers}: digest and media type (None on 404), an index's body."""
    answers = {}
    for entry in containers_of(report):
        reference = entry.get("reference")
        if not reference or "@" in reference or entry["registry"] not in (stack.secure.address, stack.plain.address):
            continue
        repository, tag = reference.split("/", 1)[1].rsplit(":", 1)
        secure = entry["registry"] == stack.secure.address
        with (stack.secure_http() if secure else stack.plain_http()) as registry:
            found = registry.describe(repository, tag)
            answer = {"digest": found.digest, "media_type": found.media_type} if found else None
            if found and ("index" in found.media_type or "list" in found.media_type):
                answer["body"] = registry.get_manifest(repository, found.digest)[1].decode()
        answers[reference] = answer
    return answers


def scanned(stack) -> dict:
    out, err = io.StringIO(), io.StringIO()
    cli(["scan", "--output", "json", *stack.scan_args()], env=stack.env(), stdout=out, stderr=err,
        home=Path(stack.workdir))
    return json.loads(out.getvalue())


def capture(key: str, directory: Path) -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sg-capture-") as workdir, started_stack(MATRIX[key], workdir) as stack:
        expected = build_demo_fleet(stack)
        for state in ("clean", "pulled"):
            if state == "pulled":
                expected |= pull_without_recreate(stack)
            report = scanned(stack)
            found = {c["name"]: [c["status"], c["reason"]] for c in containers_of(report)}
            document = snapshot(stack) | {"expected": expected, "verdicts": found,
                                          "registry": registry_answers(stack, report)}
            (directory / f"{key}-{state}.json").write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
            wrong = {n: (found.get(n), list(e)) for n, e in expected.items() if found.get(n) != list(e)}
            print(f"{key} {state}: {len(expected) - len(wrong)}/{len(expected)} right {wrong} "
                  f"({time.monotonic() - started:.0f}s)", flush=True)


if __name__ == "__main__":
    target = Path(sys.argv[1])
    target.mkdir(parents=True, exist_ok=True)
    for key in sys.argv[2:] or list(MATRIX):
        capture(key, target)
