"""Without any rule the proxy is invisible: the fleet gets its baseline answers."""
from __future__ import annotations


def test_through_the_proxy_every_container_gets_its_baseline_answer(world):
    result = world.scan()
    world.check(result, {})
    assert world.proxy.seen("^HEAD /v2/faults/ok/manifests/1")
    assert world.proxy.seen("^GET /token")
