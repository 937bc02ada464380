"""engine.apply's time limit (engine/timebox.py): a step that could not finish in what is left is not started,
in both orders, with a fake clock and a fake engine that takes the time each case gives its calls."""
from __future__ import annotations

import contextlib

import pytest

from engine.apply import UpdateOptions, execute
from engine.aside import aside_name
from engine.clock import FakeClock
from engine.plan import make_plan
from engine.timebox import STEP_MARGIN, StepNeed, TimeBox
from tests.unit.test_update_plan import W, known, stale

HEALTH = {"Test": ["CMD", "true"]}
STOP, VERIFY = 5, 10.0  # --stop-timeout, --health-timeout of every case
NEED = STOP + STEP_MARGIN + VERIFY + STEP_MARGIN  # one step with a health check and no hooks


class TimedEngine:
    """A daemon whose containers each take `stop_takes` to stop and `verify_takes` to turn healthy,
    on the fake clock; it keeps the containers by name, so what is left stopped or aside shows."""

    def __init__(self, clock: FakeClock, names, *, stop_takes=0.0, verify_takes=0.0):
        self.clock, self.stop_takes, self.verify_takes = clock, stop_takes, verify_takes
        self.running = {f"{n}-id": True for n in names}
        self.names = {f"{n}-id": n for n in names}
        self.created = 0
        self.calls: list[tuple[str, str]] = []

    def pull(self, repository, digest, auth):
        pass

    def tag(self, source, repository, tag):
        pass

    def exec(self, ident, argv, timeout):
        self.calls.append(("exec", self.names[ident]))
        return 0, ""

    def stop(self, ident, timeout):
        self.calls.append(("stop", self.names[ident]))
        self.clock.advance(self.stop_takes)
        self.running[ident] = False

    def rename(self, ident, name):
        self.names[ident] = name

    def create(self, name, body):
        self.created += 1
        ident = f"new{self.created}"
        self.names[ident], self.running[ident] = name, False
        return ident

    def connect(self, network, ident, endpoint):
        pass

    def inspect_container(self, ident):
        return {"Id": ident, "Image": "sha256:new", "Config": {"Healthcheck": HEALTH}}

    @contextlib.contextmanager
    def events(self, ident):
        def stream():
            self.clock.advance(self.verify_takes)
            yield {"Action": "health_status: healthy"}
        yield stream()

    def start(self, ident):
        self.calls.append(("start", self.names[ident]))
        self.running[ident] = True

    def remove_container(self, ident):
        del self.names[ident], self.running[ident]

    def left_aside_or_stopped(self):
        return sorted(n for i, n in self.names.items() if n.endswith(aside_name("")) or not self.running[i])


def run(names, time_limit, *, rolling=False, concurrency=4, labels=None, stop_takes=0.0, verify_takes=0.0):
    """{name: (action, reason)} after an update of the stale `names` with this limit, and the engine."""
    labels = labels or {}
    plan = make_plan(tuple(stale(n) for n in names), tuple(known(n, labels=labels.get(n)) for n in names))
    inspects = {s.name: {"Id": s.id, "Name": f"/{s.name}", "Image": "sha256:old", "HostConfig": {},
                         "Config": {"Healthcheck": HEALTH, "Labels": labels.get(s.name) or {}}} for s in plan.steps}
    clock = FakeClock()
    engine = TimedEngine(clock, names, stop_takes=stop_takes, verify_takes=verify_takes)
    options = UpdateOptions(rolling=rolling, health_timeout=VERIFY, stop_timeout=STOP, pull_concurrency=concurrency,
                            time_limit=time_limit)
    done = execute(engine, plan, options, inspects, {"sha256:old": {}}, {}, clock=clock)
    assert engine.left_aside_or_stopped() == []  # whatever the limit, nothing is left stopped or aside
    return {n: (a.action, a.reason) for n, a in done.items()}, engine


UPDATED, NO_TIME = ("updated", None), ("skipped", "no-time-left")


@pytest.mark.parametrize("time_limit, expected", [
    (None, [UPDATED, UPDATED]),
    (2 * NEED + 2, [UPDATED, UPDATED]),  # the first takes 2 s (stop 1, healthy 1): the second still fits
    (NEED, [UPDATED, NO_TIME]),  # the first fits exactly; after its 2 s the second does not
    (NEED - 0.1, [NO_TIME, NO_TIME]),
    (0, [NO_TIME, NO_TIME]),
])
def test_rolling_starts_a_step_only_when_its_stop_and_start_fit(time_limit, expected):
    actions, engine = run(["a", "b"], time_limit, rolling=True, stop_takes=1, verify_takes=1)
    assert [actions["a"], actions["b"]] == expected
    skipped = [n for n, action in zip("ab", expected) if action == NO_TIME]
    assert not [c for c in engine.calls if c[1] in skipped]  # nothing of a skipped step is touched


@pytest.mark.parametrize("concurrency, time_limit, expected", [
    (4, NEED, [UPDATED, UPDATED]),  # both start side by side: the level takes one start
    (1, NEED, [UPDATED, NO_TIME]),  # one at a time: the second's start comes after the first's
    (1, STOP + STEP_MARGIN + 2 * (VERIFY + STEP_MARGIN), [UPDATED, UPDATED]),
    (4, NEED - 0.1, [NO_TIME, NO_TIME]),
])
def test_default_order_counts_the_starts_of_a_level_by_the_threads_that_run_them(concurrency, time_limit, expected):
    actions, _ = run(["a", "b"], time_limit, concurrency=concurrency)
    assert [actions["a"], actions["b"]] == expected


CHAIN = {"api": {W + "depends-on": "db"}}  # db starts first, so api is stopped first


@pytest.mark.parametrize("time_limit, expected", [
    (NEED, {"api": UPDATED, "db": NO_TIME}),  # db alone would fit, but api's start still has to come after its own
    (STOP + STEP_MARGIN + 2 * (VERIFY + STEP_MARGIN), {"api": UPDATED, "db": UPDATED}),
    (NEED - 0.1, {"api": NO_TIME, "db": NO_TIME}),
])
def test_default_order_admits_a_stop_only_if_every_start_still_to_come_fits(time_limit, expected):
    actions, engine = run(["api", "db"], time_limit, labels=CHAIN)
    assert actions == expected
    assert [n for call, n in engine.calls if call == "stop"] == [n for n in ("api", "db") if expected[n] == UPDATED]


@pytest.mark.parametrize("rolling", [False, True])
@pytest.mark.parametrize("time_limit", [NEED, 1.5 * NEED, 2 * NEED, 2.5 * NEED, 3 * NEED, 4 * NEED])
def test_with_every_call_at_its_worst_the_run_ends_within_the_limit(rolling, time_limit):
    names = ["api", "db", "web", "x"]
    labels = {"api": {W + "depends-on": "db"}, "web": {W + "depends-on": "api"}}
    actions, engine = run(names, time_limit, rolling=rolling, concurrency=1, labels=labels,
                          stop_takes=STOP, verify_takes=VERIFY)
    assert engine.clock.monotonic() <= time_limit
    assert UPDATED in actions.values() and set(actions.values()) <= {UPDATED, NO_TIME}


def test_hook_timeouts_are_part_of_what_a_step_needs():
    hooks = {W + "lifecycle.pre-update": "true", W + "lifecycle.post-update": "true"}  # a minute each
    actions, engine = run(["a", "b"], NEED + 60, rolling=True, labels={"a": hooks})
    assert actions == {"a": NO_TIME, "b": UPDATED}
    assert ("exec", "a") not in engine.calls  # not even its pre-update hook ran
    actions, _ = run(["a"], NEED + 120, rolling=True, labels={"a": hooks})
    assert actions == {"a": UPDATED}


def test_a_skip_says_what_was_needed_and_what_was_left():
    box = TimeBox(FakeClock(), 10.0)
    assert box.admit_alone(StepNeed(4, 6)) is None
    assert box.admit_alone(StepNeed(4, 7)) == "needs up to 11.0 s; 10.0 s left of the time limit"
    assert "with the starts still to come" in box.admit_before_starts(StepNeed(4, 7), level=0)
    assert TimeBox(FakeClock(), None).admit_before_starts(StepNeed(1e9, 1e9), level=0) is None
