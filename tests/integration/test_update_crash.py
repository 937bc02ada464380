"""The daemon killed in the middle of an update (after the old container was renamed aside, before
the new one exists): no container is lost, `scan` reports the half-done update, and the next
`update` reverses it and then updates.

Runs its own dockerd (killing the session's would end every other test), with the stack's PKI
and registries.
"""
from __future__ import annotations

import io
import json
import os
import secrets
import signal
from pathlib import Path

import pytest

from engine.apply import UpdateOptions
from engine.daemon import DaemonSettings
from engine.engineapi import EngineApi
from engine.selection import Selection
from engine.update import update
from handler.cli import main
from handler.compose import ScanConfig, run_scan
from tests.reportdoc import containers_of
from tests.stack import DockerDaemon, leftovers
from tests.stack.images import import_image, push
from tests.stack.updates import TRAP


def settings_of(daemon: DockerDaemon) -> DaemonSettings:
    certs = daemon.cert_dir
    return DaemonSettings(host=daemon.host, tls_verify=True, ca_cert=str(certs / "ca.pem"),
                          client_cert=str(certs / "cert.pem"), client_key=str(certs / "key.pem"))


def cli(daemon: DockerDaemon, stack, *args) -> tuple[int, dict, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([*args, "--output", "json", "--insecure-registry", stack.plain.address], env=daemon.env(),
                stdout=out, stderr=err, home=Path(stack.workdir))
    return code, json.loads(out.getvalue()), err.getvalue()


@pytest.fixture
def daemons(stack, tmp_path):
    made: list[DockerDaemon] = []

    def start() -> DockerDaemon:
        daemon = DockerDaemon(tmp_path / "dockerd", stack.pki, insecure_registries=[stack.plain.address])
        made.append(daemon)
        return daemon.start()

    yield start
    for daemon in reversed(made):  # the restarted one first: the first one's leftovers are killed already
        daemon.stop()
    # The killed dockerd left its data root mounted on itself (a clean stop unmounts it).
    leftovers.unmount_below(tmp_path)


def test_a_daemon_killed_between_rename_and_start_loses_no_container(stack, daemons):
    first = daemons()
    client = first.admin
    repository = f"{stack.plain.address}/crash{secrets.token_hex(3)}/app"
    old = import_image(client, repository, "1", [TRAP, "ENV V=1"])
    push(client, repository, "1")
    new = import_image(client, repository, "1", [TRAP, "ENV V=2"])
    new_digest = push(client, repository, "1")
    client.remove_image(new, force=True)
    client.tag(old, repository, "1")
    victim = client.create_container(f"{repository}:1", name="victim",
                                     host_config=client.create_host_config(network_mode="none"))["Id"]
    client.start(victim)

    class KilledAtCreate(EngineApi):
        def create(self, name, body):
            os.kill(first.child.pid, signal.SIGKILL)
            first.child.popen.wait(timeout=30)
            first._kill_leftovers()  # containerd and the shims go too, as in a host crash
            return super().create(name, body)

    api = KilledAtCreate(settings_of(first))
    config = ScanConfig(daemon=settings_of(first), names=("victim",), insecure_registries=(stack.plain.address,))
    try:
        cut = update(api, lambda: run_scan(config), UpdateOptions(), selection=Selection(names=frozenset({"victim"})))
    finally:
        api.close()
    assert cut.report.containers[0].action.action == "failed"

    second = daemons()
    names = sorted(n for c in second.admin.containers(all=True) for n in c["Names"])
    assert names == ["/victim.spyglass-old"]  # nothing lost: the old container, aside

    code, report, err = cli(second, stack, "scan")
    assert code == 0, err
    (aside,) = containers_of(report)
    assert aside["name"] == "victim.spyglass-old"
    assert aside["action"]["action"] == "failed" and aside["action"]["reason"] == "interrupted-update"

    code, report, err = cli(second, stack, "update", "--yes", "victim")
    assert code == 0, err
    (entry,) = containers_of(report)
    assert entry["name"] == "victim" and entry["action"]["action"] == "updated", entry
    assert entry["action"]["reason"] == "interrupted-update-reversed"
    after = second.admin.inspect_container("victim")
    assert after["State"]["Running"] and after["Id"] != victim
    assert new_digest in " ".join(second.admin.inspect_image(after["Image"])["RepoDigests"])
    assert [c["Names"] for c in second.admin.containers(all=True)] == [["/victim"]]
