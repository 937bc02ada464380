"""Carrying out a Plan on one endpoint, container by container, never losing one.

Outline (default order: the steps of one dependency level side by side, up to --concurrency;
--rolling does stop-then-start for one step before the next, each verified first):
    pre-check hooks of every step
    → pull each target by the digest the scan saw, side by side (bounded), and tag it as configured
    → stop level by level, the last level first: with a time limit, a step that could not finish in what is
      left is skipped untouched (no-time-left, engine/timebox.py); pre-update hook (a failure skips the step),
      stop with the container's own signal and timeout, rename it aside (NAME.spyglass-old, engine/aside.py)
    → start level by level, the first first: create NAME from the derived configuration
      (engine/recreate.py), connect its other networks, start it while watching its events
      (engine/verify.py)
        up      → remove the old container, post-update hook: updated
        not up  → remove the new one, rename the old one back, start it: rolled-back
    → post-check hooks of the updated; with cleanup, remove each old image nothing uses now
Engine API calls per step, whatever the fleet: inspect container and image, pull and tag (once per
distinct target), stop, rename, create, connect (per network after the first), inspect, events,
start, remove; three per hook; a rollback adds remove, rename, start.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Mapping, TypeVar

from .aside import aside_name
from .clock import Clock, SystemClock
from .engineapi import EngineApi, EngineCallError
from .hooks import run_hook
from .lifecycle import Hook
from .name import Reference, parse_reference
from .plan import UPDATE, Plan, Step
from .recreate import CreateSpec, derive
from .report import Action
from .timebox import STEP_MARGIN, StepNeed, TimeBox
from .verify import has_health_check, watch

log = logging.getLogger("spyglass.update")
DEFAULT_STOP_TIMEOUT = 10  # seconds, docker's own default
T, R = TypeVar("T"), TypeVar("R")

# The daemon's X-Registry-Auth for a pull of this reference (None: anonymous).
PullAuth = Callable[[Reference], Mapping[str, str] | None]


@dataclass(frozen=True)
class UpdateOptions:
    rolling: bool = False
    health_timeout: float = 60.0  # seconds a new container has to become healthy
    stop_timeout: int | None = None  # None: the container's own StopTimeout, else docker's 10 s
    cleanup: bool = False
    pull_concurrency: int = 4
    settle: float = 2.0  # seconds a container without a health check must stay up (at most health_timeout)
    # Seconds the run may take from the start of the call it is given to (update() or execute()); a step
    # that could not finish within what is left is not started (engine/timebox.py). None: no limit.
    time_limit: float | None = None


@dataclass
class _Work:
    """One step's progress within a run."""

    step: Step
    started: float
    inspect: dict = field(default_factory=dict)
    spec: CreateSpec | None = None
    old_image: str = ""
    new_image: str = ""
    new_id: str = ""
    action: Action | None = None


def execute(api: EngineApi, plan: Plan, options: UpdateOptions, inspects: Mapping[str, dict],
            images: Mapping[str, dict], names_by_id: Mapping[str, str], *, auth: PullAuth = lambda ref: None,
            clock: Clock | None = None) -> dict[str, Action]:
    """Every step carried out; its Action by container name. Only unexpected bugs raise."""
    clock = clock or SystemClock()
    works = [_Work(step, clock.monotonic()) for step in plan.steps]
    box = TimeBox(clock, options.time_limit, concurrency=options.pull_concurrency)
    runner = _Runner(api, options, clock)
    for work in works:
        runner.prepare(work, inspects, images, names_by_id)
        if work.action is None:
            runner.hook(work, "pre-check", work.inspect["Id"])
    runner.pull_all([w for w in works if w.action is None and w.step.kind == UPDATE], auth)
    active = [w for w in works if w.action is None]
    if options.rolling:
        for work in active:
            if runner.stop(work, box.admit_alone):
                runner.start(work)
    else:
        # Every level's stops come before any start: a step is admitted only if the starts of every
        # step admitted before it (of this level and the ones stopped earlier) and its own still fit
        # after the latest stop, so the start phase that follows never runs out of time.
        levels = _levels(active)
        stopped: set[int] = set()
        for depth in reversed(range(len(levels))):
            stop = partial(runner.stop, admit=partial(box.admit_before_starts, level=depth))
            level = levels[depth]
            stopped |= {id(w) for w, ok in zip(level, side_by_side(stop, level, options.pull_concurrency)) if ok}
        for level in levels:
            side_by_side(runner.start, [w for w in level if id(w) in stopped], options.pull_concurrency)
    for work in works:
        if work.action is not None and work.action.action == "updated":
            runner.hook(work, "post-check", work.new_id)
    if options.cleanup:
        runner.clean_up(works)
    return {w.step.name: w.action or Action("failed", "not-run") for w in works}


def _hook_timeout(hooks: Mapping[str, Hook], stage: str) -> float:
    return hooks[stage].timeout if stage in hooks else 0.0


def _levels(works: list[_Work]) -> list[list[_Work]]:
    """Steps grouped by depth in the dependency order: a level needs only the levels before it."""
    depth: dict[str, int] = {}
    for work in works:  # in start order, so every dependency's depth is known first
        depth[work.step.name] = 1 + max((depth.get(name, -1) for name in work.step.after), default=-1)
    levels: list[list[_Work]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for work in works:
        levels[depth[work.step.name]].append(work)
    return levels


def side_by_side(work: Callable[[T], R], items: list[T], concurrency: int) -> list[R]:
    """work(item) for each item, up to concurrency at once; the results in the items' order."""
    if len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max(1, min(concurrency, len(items))), thread_name_prefix="spyglass-update") as pool:
        return list(pool.map(work, items))


class _Runner:
    def __init__(self, api: EngineApi, options: UpdateOptions, clock: Clock):
        self.api, self.options, self.clock = api, options, clock

    def finish(self, work: _Work, action: str, reason: str | None = None, error: str | None = None) -> None:
        step = work.step
        took = round((self.clock.monotonic() - work.started) * 1000)
        work.action = Action(action, reason, error, step.old_digest, step.new_digest, took)
        log.log(logging.INFO if action == "updated" else logging.WARNING, "%s: %s", step.name, work.action.text())

    def prepare(self, work: _Work, inspects: Mapping[str, dict], images: Mapping[str, dict],
                names_by_id: Mapping[str, str]) -> None:
        work.inspect = inspects.get(work.step.name) or {}
        image = images.get(work.inspect.get("Image", ""))
        if not work.inspect or image is None:
            self.finish(work, "failed", "inspect-failed", f"inspect {work.step.name}: no answer from the daemon")
            return
        work.old_image = work.inspect["Image"]
        work.spec = derive(work.inspect, image, dict(names_by_id))

    def hook(self, work: _Work, stage: str, container: str) -> bool:
        hook = work.step.hooks.get(stage)
        if hook is None:
            return True
        outcome = run_hook(self.api, container, hook)
        if not outcome.ok:
            log.warning("%s: %s", work.step.name, outcome.detail)
            if stage == "pre-update":
                self.finish(work, "skipped", outcome.reason, outcome.detail)
            elif work.action is not None and stage == "post-update":
                work.action = Action(**{**work.action.to_dict(), "error": outcome.detail})
        return outcome.ok

    def pull_all(self, works: list[_Work], auth: PullAuth) -> None:
        """Each distinct target once, up to pull_concurrency at a time; a failure fails its steps."""
        targets: dict[tuple[str, str], list[_Work]] = {}
        for work in works:
            targets.setdefault((work.step.image, work.step.new_digest or ""), []).append(work)
        with ThreadPoolExecutor(max(1, self.options.pull_concurrency), thread_name_prefix="spyglass-pull") as pool:
            errors = dict(zip(targets, pool.map(lambda key: self._pull(*key, auth), targets)))
        for key, error in errors.items():
            for work in targets[key] if error else ():
                self.finish(work, "failed", "pull-failed", error)

    def _pull(self, image: str, digest: str, auth: PullAuth) -> str | None:
        try:
            reference = parse_reference(image)
            if not digest or reference.tag is None:
                return f"pull {image}: no digest or no tag to move"
            self.api.pull(reference.repository_name, digest, auth(reference))
            self.api.tag(f"{reference.repository_name}@{digest}", reference.repository_name, reference.tag)
        except EngineCallError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - an invalid reference or a credential helper's failure
            return f"pull {image}: {exc}"
        return None

    def stop(self, work: _Work, admit: Callable[[StepNeed], str | None]) -> bool:
        """Admitted in time, pre-update hook, stop, rename aside; False (with the step's action) when it did not happen."""
        refused = admit(self.need(work))
        if refused:
            self.finish(work, "skipped", "no-time-left", refused)
            return False
        old = work.inspect["Id"]
        if not self.hook(work, "pre-update", old):
            return False
        try:
            self.api.stop(old, self._stop_timeout(work))
        except EngineCallError as exc:
            self.finish(work, "failed", "stop-failed", str(exc))
            return False
        try:
            self.api.rename(old, aside_name(work.step.name))
        except EngineCallError as exc:
            self._restart_old(work)
            self.finish(work, "failed", "rename-failed", str(exc))
            return False
        return True

    def need(self, work: _Work) -> StepNeed:
        """The most the step may take. The health check is judged by the old container (its image's
        included): a new image that adds one is the one case the settle time under-reserves."""
        hooks = work.step.hooks
        verify = self._verify_limit(has_health_check(work.inspect))
        return StepNeed(stop=_hook_timeout(hooks, "pre-update") + self._stop_timeout(work) + STEP_MARGIN,
                        start=verify + _hook_timeout(hooks, "post-update") + STEP_MARGIN)

    def _stop_timeout(self, work: _Work) -> int:
        timeout = self.options.stop_timeout
        if timeout is None:
            timeout = (work.inspect.get("Config") or {}).get("StopTimeout") or DEFAULT_STOP_TIMEOUT
        return int(timeout)

    def _verify_limit(self, health: bool) -> float:
        return self.options.health_timeout if health else min(self.options.settle, self.options.health_timeout)

    def start(self, work: _Work) -> None:
        """Create, connect, start and watch the new container; roll back when it is not up."""
        try:
            work.new_id = self.api.create(work.spec.name, work.spec.body)
        except EngineCallError as exc:
            self.roll_back(work, "create-failed", str(exc))
            return
        try:
            for network, endpoint in work.spec.networks:
                self.api.connect(network, work.new_id, endpoint)
            created = self.api.inspect_container(work.new_id)
            work.new_image = created.get("Image", "")
            health = has_health_check(created)
            limit = self._verify_limit(health)
            with self.api.events(work.new_id) as stream:
                self.api.start(work.new_id)
                reason, detail = watch(stream, healthy_needed=health, limit=limit, clock=self.clock)
        except EngineCallError as exc:
            reason, detail = "start-failed", str(exc)
        if reason:
            self.roll_back(work, reason, detail)
            return
        error = None
        try:
            self.api.remove_container(work.inspect["Id"])
        except EngineCallError as exc:
            error = f"the old container stays as {aside_name(work.step.name)}: {exc}"
        self.finish(work, "updated", error=error)
        self.hook(work, "post-update", work.new_id)

    def roll_back(self, work: _Work, reason: str, detail: str | None) -> None:
        """The new container gone, the old one back under its name and running."""
        try:
            if work.new_id:
                self.api.remove_container(work.new_id)
            self.api.rename(work.inspect["Id"], work.step.name)
            self.api.start(work.inspect["Id"])
        except EngineCallError as exc:
            self.finish(work, "failed", reason, f"{detail}; rolling back failed: {exc} (the old container is "
                                                f"{aside_name(work.step.name)} unless renamed back)")
            return
        work.new_id = ""
        self.finish(work, "rolled-back", reason, detail)

    def _restart_old(self, work: _Work) -> None:
        try:
            self.api.start(work.inspect["Id"])
        except EngineCallError as exc:
            log.error("%s: restarting the old container failed: %s", work.step.name, exc)

    def clean_up(self, works: list[_Work]) -> None:
        """Each replaced image, once; the daemon refuses (409) while a container still uses it."""
        replaced = {w.old_image for w in works if w.action is not None and w.action.action == "updated"
                    and w.old_image and w.new_image and w.old_image != w.new_image}
        for image in sorted(replaced):
            try:
                self.api.remove_image(image)
            except EngineCallError as exc:
                log.info("old image %s kept: %s", image[:19], exc)
