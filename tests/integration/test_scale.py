"""The scan's cost does not grow with the number of containers: 200 containers over 60 images.

Counted on the servers' own logs: the daemon's debug log for Engine API calls,
the registry's access log for manifest requests, the token server's records.
"""
from __future__ import annotations

import io
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from handler.cli import main
from tests.stack import ContainerSpec, run_containers
from tests.reportdoc import containers_of

CONTAINERS, IMAGES, STALE = 200, 60, 6
SCOPE = "scale"
SCOPE_LABEL = "com.centurylinklabs.watchtower.scope"


@pytest.fixture(scope="module")
def scale_fleet(stack):
    """60 repositories on the token-auth registry, 200 running containers spread over them, 6 tags moved."""
    address = stack.secure.address
    images = [f"{address}/scale/app-{i:02d}:1" for i in range(IMAGES)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: stack.publish(stack.secure, f"scale/app-{i:02d}", "1", f"scale-{i}-a"),
                      range(IMAGES)))
    specs = [ContainerSpec(f"scale-{n:03d}", images[n % IMAGES], {SCOPE_LABEL: SCOPE}) for n in range(CONTAINERS)]
    ids = run_containers(stack.daemon.admin, specs, workers=4)
    # Move some tags in the registry only (a new image pushed under another tag, then copied).
    with stack.secure_http() as registry:
        for i in range(STALE):
            stack.publish(stack.secure, f"scale/app-{i:02d}", "next", f"scale-{i}-b")
            registry.copy_tag(f"scale/app-{i:02d}", "next", "1")
    stale = {spec.name for spec in specs if int(spec.image.split("app-")[1][:2]) < STALE}
    yield {"stale": stale, "names": {s.name for s in specs}}
    client = stack.daemon.admin
    for container_id in ids:  # kill, not stop: sleep as PID 1 ignores SIGTERM
        client.remove_container(container_id, force=True)


def test_200_containers_cost_four_engine_calls_and_one_head_per_image(stack, scale_fleet):
    daemon_mark, registry_mark, token_mark = stack.daemon.mark(), stack.secure.mark(), stack.token_server.mark()
    out, err = io.StringIO(), io.StringIO()
    code = main(["scan", "--output", "json", "--scope", SCOPE, "--concurrency", "8", *stack.scan_args()],
                env=stack.env(), stdout=out, stderr=err, home=Path(stack.workdir))
    assert code == 0, err.getvalue()
    report = json.loads(out.getvalue())

    statuses = {c["name"]: c["status"] for c in containers_of(report)}
    assert set(statuses) == scale_fleet["names"]
    assert {n for n, s in statuses.items() if s == "stale"} == scale_fleet["stale"]
    assert set(statuses.values()) == {"stale", "fresh"}

    calls = stack.daemon.api_calls_since(daemon_mark)
    assert sorted(c.path.split("?")[0] for c in calls) == [
        "/_ping", "/_ping", "/v1.41/containers/json", "/v1.41/images/json"], calls
    requests = Counter(r.method for r in stack.secure.requests_since(registry_mark))
    assert requests["HEAD"] == IMAGES
    # the ping, and one tags list per repository: tag 1 is a version (issue 12), its pages asked for
    # under the same combined token as the HEADs
    assert requests["GET"] == 1 + IMAGES
    tokens = stack.token_server.requests_since(token_mark)
    assert len(tokens) == 1 and len(tokens[0].scopes) == IMAGES
