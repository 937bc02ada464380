"""engine.plan (who, in which order), engine.apply's stop order, engine.lifecycle (hook labels), engine.verify
(the event verdict)."""
from engine.apply import UpdateOptions, execute
from engine.clock import SystemClock
from engine.engineapi import EngineCallError
from engine.lifecycle import hooks_of
from engine.plan import Known, describe, make_plan
from engine.report import FRESH, STALE, ContainerResult
from engine.selection import Selection
from engine.verify import watch

W = "com.centurylinklabs.watchtower."


def known(name, *, state="running", labels=None, network_mode="bridge", names=()):
    return Known.from_summary({"Id": f"{name}-id", "Names": [f"/{name}", *names], "State": state,
                               "Image": f"r/{name}:1", "Labels": labels or {},
                               "HostConfig": {"NetworkMode": network_mode}})


def stale(name):
    return ContainerResult(f"{name}-id", name, f"r/{name}:1", STALE, reference=f"docker.io/r/{name}:1",
                           local_digests=("sha256:" + "a" * 64,), remote_digest="sha256:" + "b" * 64)


def fresh(name):
    return ContainerResult(f"{name}-id", name, f"r/{name}:1", FRESH)


def names(plan):
    return [(s.name, s.kind) for s in plan.steps]


class StopRecorder:
    """An engine that pulls and tags nothing and refuses every stop, recording its order (a refused stop
    ends its step, so nothing is created)."""

    def __init__(self):
        self.stopped = []

    def pull(self, repository, digest, auth):
        pass

    def tag(self, source, repository, tag):
        pass

    def stop(self, ident, timeout):
        self.stopped.append(ident.removesuffix("-id"))
        raise EngineCallError(f"stop {ident}: refused")


def stop_order(plan):
    """The order in which engine.apply.execute stops the plan's containers, one at a time."""
    inspects = {s.name: {"Id": s.id, "Name": f"/{s.name}", "Image": "sha256:old", "Config": {}, "HostConfig": {}}
                for s in plan.steps}
    engine = StopRecorder()
    execute(engine, plan, UpdateOptions(pull_concurrency=1), inspects, {"sha256:old": {}}, {})
    return engine.stopped


def test_only_stale_running_containers_are_planned():
    plan = make_plan((stale("a"), fresh("b"), stale("c")), (known("a"), known("b"), known("c", state="exited")))
    assert names(plan) == [("a", "update")]
    assert [(s.name, s.reason) for s in plan.skipped] == [("c", "not-running")]


def test_monitor_only_and_swarm_tasks_are_skipped_with_a_reason():
    plan = make_plan((stale("m"), stale("s")), (known("m", labels={W + "monitor-only": "true"}),
                                                known("s", labels={"com.docker.swarm.task.id": "x"})))
    assert plan.steps == () and [(s.name, s.reason) for s in plan.skipped] == [("m", "monitor-only"), ("s", "swarm-task")]


def test_dependencies_order_the_start_and_reverse_the_stop():
    listed = (known("web", labels={W + "depends-on": "api"}), known("api", names=("/proxy/backend",)),
              known("proxy"), known("db"))
    plan = make_plan((stale("web"), stale("api"), stale("db"), stale("proxy")), listed,
                     volumes_from={"api": ("db:ro",)})
    order = [s.name for s in plan.steps]
    assert order.index("db") < order.index("api") < order.index("web")
    assert order.index("api") < order.index("proxy")  # proxy links to api
    stopped = stop_order(plan)  # the last dependency level first; web and proxy share one, as they start
    assert set(stopped[:2]) == {"web", "proxy"} and stopped[2:] == ["api", "db"]


def test_a_running_dependent_of_an_updated_container_is_recreated_after_it():
    listed = (known("app"), known("side", network_mode="container:app-id"), known("idle"))
    plan = make_plan((stale("app"), fresh("side")), listed)
    assert names(plan) == [("app", "update"), ("side", "restart")]
    assert plan.steps[1].after == ("app",)


def test_a_namespace_sharing_dependent_that_may_not_be_touched_blocks_the_update():
    listed = (known("app"), known("side", network_mode="container:app-id", labels={W + "enable": "false"}))
    plan = make_plan((stale("app"),), listed)
    assert plan.steps == ()
    assert [(s.name, s.reason) for s in plan.skipped] == [("app", "dependent-excluded")]


def test_a_linked_dependent_outside_the_scope_is_left_alone():
    listed = (known("app", names=("/other/app",)), known("other", labels={W + "scope": "elsewhere"}))
    plan = make_plan((stale("app"),), listed, Selection(scope="here"))
    assert names(plan) == [("app", "update")]


def test_a_cycle_is_skipped():
    listed = (known("a", labels={W + "depends-on": "b"}), known("b", labels={W + "depends-on": "a"}))
    plan = make_plan((stale("a"), stale("b")), listed)
    assert plan.steps == () and {s.reason for s in plan.skipped} == {"dependency-cycle"}


def test_a_container_with_an_update_still_aside_is_not_planned_again():
    plan = make_plan((stale("a"),), (known("a"), known("a.spyglass-old", state="exited")))
    assert [(s.name, s.reason) for s in plan.skipped] == [("a", "interrupted-update")]


def test_the_description_names_order_digests_and_hooks():
    listed = (known("a", labels={W + "lifecycle.pre-update": "true"}),)
    text = describe(make_plan((stale("a"),), listed))
    assert "1. a (update) r/a:1: aaaaaaaaaaaa -> sha256:" + "b" * 64 in text and "hooks pre-update" in text


def test_hook_labels_and_their_timeouts_in_minutes():
    hooks = hooks_of({W + "lifecycle.pre-update": "/stop.sh", W + "lifecycle.pre-update-timeout": "2",
                      W + "lifecycle.post-check": " ", W + "lifecycle.post-update": "x",
                      W + "lifecycle.post-update-timeout": "soon"})
    assert sorted(hooks) == ["post-update", "pre-update"]
    assert hooks["pre-update"].timeout == 120 and hooks["post-update"].timeout == 60
    assert hooks["pre-update"].argv() == ["sh", "-c", "/stop.sh"]


class Stream:
    def __init__(self, events):
        self.events, self.closed = list(events), False

    def __iter__(self):
        return iter(self.events)

    def close(self):
        self.closed = True


def test_verdicts_from_the_event_stream():
    clock = SystemClock()
    assert watch(Stream([{"Action": "start"}, {"Action": "health_status: healthy"}]), healthy_needed=True,
                 limit=5, clock=clock) == (None, None)
    assert watch(Stream([{"Action": "health_status: unhealthy"}]), healthy_needed=True, limit=5,
                 clock=clock)[0] == "unhealthy"
    assert watch(Stream([{"Action": "die", "Actor": {"Attributes": {"exitCode": "3"}}}]), healthy_needed=False,
                 limit=5, clock=clock) == ("exited", "exited with code 3")
    assert watch(Stream([{"Action": "start"}]), healthy_needed=True, limit=5, clock=clock)[0] == "health-timeout"
    assert watch(Stream([]), healthy_needed=False, limit=5, clock=clock)[0] == "watch-lost"
