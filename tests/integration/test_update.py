"""`spyglass update` on the real stack: a TLS dockerd (--bridge=none: user-defined networks, none
and container:X modes work), images made here with different defaults between old and new.

Each test builds its own images and containers under a unique prefix, names them on the
command line (the demo fleet is never touched), and removes them at the end, so the scan
tests' call counts stay as they were.
"""
from __future__ import annotations

import io
import json
import time
from pathlib import Path

import jsonschema
import pytest

from engine.apply import UpdateOptions
from engine.report import schema
from handler.cli import main
from handler.compose import ScanConfig, daemon_settings, run_update
from tests.reportdoc import assert_reads_back, containers_of
from tests.stack.updates import HEALTHY, TRAP, UNHEALTHY, W, App

SCHEMA = schema()


class CliApp(App):
    """An App that runs `spyglass update` on its containers, in-process, as the user would."""

    def update(self, *names: str, args=()) -> tuple[int, dict, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(["update", "--yes", "--output", "json", *self.stack.scan_args(), *args,
                     *(self.name(n) for n in names)], env=self.stack.env(), stdout=out, stderr=err,
                    home=Path(self.stack.workdir))
        report = json.loads(out.getvalue()) if out.getvalue().strip() else None
        if report is not None:
            jsonschema.validate(report, SCHEMA)
            assert_reads_back(report)  # actions included (Report.from_dict)
        return code, report, err.getvalue()

    def update_within(self, *names: str, options: UpdateOptions) -> dict:
        """The update as the Lambda runs it (a time limit the CLI never sets); its report as a document."""
        stack = self.stack
        config = ScanConfig(daemon=daemon_settings(stack.daemon.host, tls_verify=True, cert_dir=stack.daemon.cert_dir),
                            names=tuple(self.name(n) for n in names), registry_ca=str(stack.registry_ca),
                            docker_config=str(stack.docker_config), insecure_registries=(stack.plain.address,))
        report = run_update(config, options).report.to_dict()
        jsonschema.validate(report, SCHEMA)
        return report

    def action(self, report: dict, name: str) -> dict:
        return {c["name"]: c for c in containers_of(report)}[self.name(name)].get("action")


@pytest.fixture
def app(stack):
    made = CliApp(stack)
    yield made
    made.remove()


def test_user_settings_are_kept_image_defaults_follow_the_new_image_and_volume_data_survives(app):
    old = [TRAP, "ENV V=one", "ENV COMMON=x", "LABEL sg.variant=one", "WORKDIR /tmp", "EXPOSE 80", HEALTHY]
    new = [TRAP, "ENV V=two", "ENV COMMON=y", "LABEL sg.variant=two", "WORKDIR /", "EXPOSE 81", HEALTHY]
    old_digest, new_digest = app.stale("web", old, new)
    net = app.client.create_network(app.prefix, driver="bridge")["Id"]
    command = ["/bin/sh", "-c", "trap 'exit 0' TERM; echo started >> /data/log; while true; do sleep 1; done"]
    before = app.run("web", "web:1", network_mode=app.prefix, environment={"MINE": "1"}, command=command,
                     labels={"mine": "yes"}, binds={f"{app.prefix}-data": {"bind": "/data", "mode": "rw"}},
                     restart_policy={"Name": "unless-stopped"},
                     networking_config=app.client.create_networking_config(
                         {app.prefix: app.client.create_endpoint_config(aliases=["webalias"])}))
    app.read("web", "echo kept > /data/file")

    code, report, err = app.update("web")

    assert code == 0, err
    action = app.action(report, "web")
    assert action["action"] == "updated" and action["new_digest"] == new_digest and action["old_digest"] == old_digest
    after = app.inspect("web")
    assert after["Id"] != before and after["State"]["Running"]
    assert new_digest in " ".join(app.client.inspect_image(after["Image"])["RepoDigests"])
    config = after["Config"]
    assert config["Image"] == app.repo("web:1") and config["Cmd"] == command
    assert sorted(config["Env"]) == sorted(["MINE=1", "V=two", "COMMON=y"])  # not V=one, COMMON=x
    assert config["Labels"] == {"mine": "yes", "sg.variant": "two"}
    assert config["WorkingDir"] == "/" and list(config["ExposedPorts"]) == ["81/tcp"]
    assert after["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert "webalias" in after["NetworkSettings"]["Networks"][app.prefix]["Aliases"]
    assert after["NetworkSettings"]["Networks"][app.prefix]["NetworkID"] == net
    assert app.read("web", "read x < /data/file; echo $x") == "kept"
    assert app.ours() == [app.name("web")]


def test_a_new_image_whose_health_check_fails_is_rolled_back_and_nothing_is_left(app):
    app.stale("sick", [TRAP, HEALTHY], [TRAP, UNHEALTHY])
    before = app.run("sick", "sick:1")

    code, report, err = app.update("sick", args=["--health-timeout", "20"])

    assert code == 1, err
    action = app.action(report, "sick")
    assert action["action"] == "rolled-back" and action["reason"] == "unhealthy", action
    after = app.inspect("sick")
    assert after["Id"] == before and after["State"]["Running"]
    assert app.ours() == [app.name("sick")]  # no new container, no aside name


def test_a_new_container_that_exits_is_rolled_back(app):
    app.stale("crash", [TRAP], ['CMD ["/bin/sh", "-c", "exit 3"]'])
    before = app.run("crash", "crash:1")
    code, report, _ = app.update("crash")
    assert code == 1
    assert app.action(report, "crash")["action"] == "rolled-back"
    assert app.action(report, "crash")["reason"] == "exited"
    assert app.inspect("crash")["Id"] == before and app.ours() == [app.name("crash")]


def test_a_dependency_chain_stops_in_reverse_and_starts_in_order(app):
    for name in ("db", "api"):
        app.stale(name, [TRAP, HEALTHY, f"ENV V={name}1"], [TRAP, HEALTHY, f"ENV V={name}2"])
    app.publish("web", [TRAP])
    app.client.create_network(app.prefix, driver="bridge")
    app.run("db", "db:1", network_mode=app.prefix)
    app.run("api", "api:1", network_mode=app.prefix, labels={W + "depends-on": app.name("db")})
    app.run("web", "web:1", network_mode=f"container:{app.name('api')}")  # fresh, but in api's namespace
    since = time.time()

    code, report, err = app.update("db", "api", "web")
    until = time.time() + 1

    assert code == 0, err
    assert [app.action(report, n)["action"] for n in ("db", "api", "web")] == ["updated"] * 3
    events = app.client.events(since=int(since) - 1, until=int(until) + 1, decode=True,
                               filters={"type": "container", "event": ["stop", "start"]})
    seen = [(e["Action"], e["Actor"]["Attributes"]["name"]) for e in events
            if e["Actor"]["Attributes"]["name"].startswith(app.prefix) and e["timeNano"] >= since * 1e9]
    assert [n for a, n in seen if a == "stop"] == [app.name("web"), app.name("api"), app.name("db")]
    assert [n for a, n in seen if a == "start"] == [app.name("db"), app.name("api"), app.name("web")]
    api = app.inspect("api")
    assert app.inspect("web")["HostConfig"]["NetworkMode"] == f"container:{api['Id']}"
    assert app.inspect("web")["State"]["Running"]


def test_hooks_run_once_each_in_order(app):
    app.stale("hooked", [TRAP, HEALTHY, "ENV V=1"], [TRAP, HEALTHY, "ENV V=2"])
    labels = {W + f"lifecycle.{stage}": f"echo {stage} >> /data/hooks"
              for stage in ("pre-check", "pre-update", "post-update", "post-check")}
    app.run("hooked", "hooked:1", labels=labels, binds={f"{app.prefix}-hooks": {"bind": "/data", "mode": "rw"}})

    code, report, err = app.update("hooked")

    assert code == 0, err
    assert app.action(report, "hooked")["action"] == "updated"
    lines = app.read("hooked", "while read l; do echo $l; done < /data/hooks").splitlines()
    assert lines == ["pre-check", "pre-update", "post-update", "post-check"]


def test_a_failing_pre_update_hook_leaves_the_container_untouched(app):
    app.stale("refuses", [TRAP, "ENV V=1"], [TRAP, "ENV V=2"])
    before = app.run("refuses", "refuses:1", labels={W + "lifecycle.pre-update": "exit 1"})

    code, report, err = app.update("refuses")

    action = app.action(report, "refuses")
    assert action["action"] == "skipped" and action["reason"] == "pre-update-hook-failed", action
    after = app.inspect("refuses")
    assert after["Id"] == before and after["State"]["Running"] and after["State"]["StartedAt"]
    assert app.ours() == [app.name("refuses")]


def test_dry_run_changes_nothing_and_monitor_only_and_disabled_are_never_touched(app):
    for name in ("plain", "watched", "off"):
        app.stale(name, [TRAP, "ENV V=1"], [TRAP, "ENV V=2"])
    ids = {"plain": app.run("plain", "plain:1"),
           "watched": app.run("watched", "watched:1", labels={W + "monitor-only": "true"}),
           "off": app.run("off", "off:1", labels={W + "enable": "false"})}
    mark = app.stack.daemon.mark()

    code, report, err = app.update("plain", "watched", "off", args=["--dry-run"])

    assert code == 0, err
    calls = app.stack.daemon.api_calls_since(mark)
    assert calls and {c.method for c in calls} == {"GET"}, calls  # lists and inspects only
    assert app.action(report, "plain")["action"] == "planned"
    assert app.action(report, "watched") == {"action": "skipped", "reason": "monitor-only", "error": None,
                                             "old_digest": None, "new_digest": None, "duration_ms": None}

    code, report, err = app.update("plain", "watched", "off")

    assert code == 0, err
    assert app.action(report, "plain")["action"] == "updated"
    assert app.action(report, "watched")["action"] == "skipped"
    assert app.inspect("watched")["Id"] == ids["watched"] and app.inspect("off")["Id"] == ids["off"]
    assert app.inspect("plain")["Id"] != ids["plain"]


def test_the_engine_api_calls_per_container_are_constant(app):
    groups = (["c1"], ["c2", "c3"], ["c4", "c5", "c6"])
    counts = []
    for group in groups:
        for name in group:
            app.stale(name, [TRAP, HEALTHY, "ENV V=1"], [TRAP, HEALTHY, "ENV V=2"])
            app.run(name, f"{name}:1")
        mark = app.stack.daemon.mark()
        code, report, err = app.update(*group)
        assert code == 0, err
        assert {app.action(report, n)["action"] for n in group} == {"updated"}
        calls = app.stack.daemon.api_calls_since(mark)
        counts.append(len(calls))
    # a fixed cost per run, plus the same number of calls for each container
    assert counts[2] - counts[1] == counts[1] - counts[0] > 0, counts


@pytest.mark.parametrize("rolling", [False, True])
def test_default_order_stops_everything_first_and_rolling_one_container_at_a_time(app, rolling):
    for name in ("r1", "r2"):
        app.stale(name, [TRAP, HEALTHY, "ENV V=1"], [TRAP, HEALTHY, "ENV V=2"])
        app.run(name, f"{name}:1")
    since = time.time()
    code, report, err = app.update("r1", "r2", args=["--rolling"] if rolling else [])
    until = time.time()
    assert code == 0, err
    events = app.client.events(since=int(since) - 1, until=int(until) + 2, decode=True,
                               filters={"type": "container", "event": ["stop", "start"]})
    seen = [e["Action"] for e in events if e["Actor"]["Attributes"]["name"].startswith(app.prefix)
            and e["timeNano"] >= since * 1e9]
    assert seen == (["stop", "start", "stop", "start"] if rolling else ["stop", "stop", "start", "start"])


def test_cleanup_removes_the_old_image_once_nothing_uses_it(app):
    app.stale("tidy", [TRAP, "ENV V=1"], [TRAP, "ENV V=2"])
    app.stale("kept", [TRAP, "ENV V=1"], [TRAP, "ENV V=2"])
    app.run("tidy", "tidy:1")
    app.run("kept", "kept:1")
    app.run("kept-too", "kept:1", start=False)  # a stopped container still holds kept's old image
    old_tidy, old_kept = app.inspect("tidy")["Image"], app.inspect("kept")["Image"]

    code, report, err = app.update("tidy", "kept", args=["--cleanup"])

    assert code == 0, err
    assert app.action(report, "tidy")["action"] == app.action(report, "kept")["action"] == "updated"
    assert old_tidy not in {image["Id"] for image in app.client.images(all=True)}
    assert old_kept in {image["Id"] for image in app.client.images(all=True)}


class Terminal(io.StringIO):
    """A stream that says it is a terminal (an interactive run)."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("answer", ["n\n", "y\n"])
def test_an_interactive_run_shows_the_plan_and_does_only_what_the_answer_says(app, answer):
    app.stale("asked", [TRAP, "ENV V=1"], [TRAP, "ENV V=2"])
    before = app.run("asked", "asked:1")
    out, err = io.StringIO(), Terminal()
    code = main(["update", "--output", "json", *app.stack.scan_args(), app.name("asked")], env=app.stack.env(),
                stdout=out, stderr=err, stdin=Terminal(answer), home=Path(app.stack.workdir))
    assert code == 0, err.getvalue()
    assert f"1. {app.name('asked')} (update)" in err.getvalue() and "Apply this plan? [y/N]" in err.getvalue()
    action = app.action(json.loads(out.getvalue()), "asked")
    if answer == "n\n":
        assert action["action"] == "planned" and app.inspect("asked")["Id"] == before
    else:
        assert action["action"] == "updated" and app.inspect("asked")["Id"] != before


@pytest.mark.parametrize("rolling", [False, True])
def test_a_time_limit_updates_what_fits_and_leaves_what_does_not_untouched(app, rolling):
    # quick has no health check: it needs its stop (1 s) + the 2 s settle + margins, about 9 s; slow
    # has one: it needs 60 s for it alone. 40 s leave room for the scan and quick, never for slow.
    app.stale("quick", [TRAP, "ENV V=1"], [TRAP, "ENV V=2"])
    app.stale("slow", [TRAP, HEALTHY, "ENV V=1"], [TRAP, HEALTHY, "ENV V=2"])
    quick, slow = app.run("quick", "quick:1"), app.run("slow", "slow:1")
    mark = app.stack.daemon.mark()

    report = app.update_within("quick", "slow", options=UpdateOptions(rolling=rolling, stop_timeout=1,
                                                                      health_timeout=60, time_limit=40))

    assert app.action(report, "quick")["action"] == "updated"
    skipped = app.action(report, "slow")
    assert (skipped["action"], skipped["reason"]) == ("skipped", "no-time-left"), skipped
    assert app.inspect("quick")["Id"] != quick and app.inspect("quick")["State"]["Running"]
    assert app.inspect("slow")["Id"] == slow and app.inspect("slow")["State"]["Running"]
    assert app.ours() == [app.name("quick"), app.name("slow")]  # nothing aside
    touched = [c for c in app.stack.daemon.api_calls_since(mark) if slow[:12] in c.path or app.name("slow") in c.path]
    assert all(c.method == "GET" for c in touched), touched  # slow was only looked at
