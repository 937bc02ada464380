"""One update run on one endpoint: recover, scan, plan, confirm, execute, report.

Outline:
    list containers; finish or reverse any interrupted update (engine/recover.py)
    → the scan (the caller's: the same options and collaborators as `spyglass scan`)
    → plan from its stale containers and the list (engine/plan.py); one inspect per step and per
      distinct image, side by side, which also tells volumes_from (then the order is planned again)
    → dry run: each step "planned"; refused at the prompt: nothing done
    → execute (engine/apply.py), with what is left of options.time_limit (counted from this run's start,
      so the recovery and the scan spend it first)
    → the scan's report with an Action on every container the run touched, planned or skipped
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from .apply import PullAuth, UpdateOptions, execute, side_by_side
from .authn import ANONYMOUS_KEYCHAIN, Keychain
from .clock import Clock, Deadline, SystemClock
from .engineapi import EngineApi, EngineCallError
from .name import Reference
from .plan import Known, Plan, make_plan
from .recover import recover
from .report import SKIPPED, Action, ContainerResult, Report
from .selection import Selection


@dataclass(frozen=True)
class UpdateRun:
    report: Report  # the scan's, each touched container with its action
    plan: Plan
    confirmed: bool  # False: a dry run, or refused at the prompt (nothing was changed)


def update(api: EngineApi, run_scan: Callable[[], Report], options: UpdateOptions, *,
           selection: Selection = Selection(), dry_run: bool = False, confirm: Callable[[Plan], bool] | None = None,
           keychain: Keychain = ANONYMOUS_KEYCHAIN, clock: Clock | None = None) -> UpdateRun:
    """The whole run; raises DaemonError only when the endpoint cannot be listed."""
    clock = clock or SystemClock()
    run_limit = Deadline(clock, options.time_limit)
    known = _known(api)
    recovered = {} if dry_run else recover(api, known)
    report = run_scan()
    if recovered:
        known = _known(api)
    plan, inspects, images = _planned(api, report, known, selection, options.pull_concurrency)
    if dry_run or (confirm is not None and not confirm(plan)):
        actions = {s.name: Action("planned", s.kind, None, s.old_digest, s.new_digest) for s in plan.steps}
        return UpdateRun(_annotated(report, {**recovered, **actions}, plan, known), plan, confirmed=False)
    done = execute(api, plan, replace(options, time_limit=run_limit.remaining()), inspects, images,
                   {k.id: k.name for k in known}, auth=pull_auth(keychain), clock=clock)
    for name, found in recovered.items():  # reversed, then updated: the report says both
        if name in done and done[name].reason is None:
            done[name] = replace(done[name], reason=found.reason)
    return UpdateRun(_annotated(report, {**recovered, **done}, plan, known), plan, confirmed=True)


def _known(api: EngineApi) -> tuple[Known, ...]:
    return tuple(Known.from_summary(summary) for summary in api.list_containers())


def _planned(api: EngineApi, report: Report, known: tuple[Known, ...], selection: Selection,
             concurrency: int) -> tuple[Plan, dict[str, dict], dict[str, dict]]:
    """The plan, with each step's container inspect and each distinct image's inspect."""
    dependents = replace(selection, names=frozenset())  # a dependent need not be named to be restarted
    plan = make_plan(report.containers, known, dependents)
    inspects: dict[str, dict] = {}
    for _ in range(2):  # volumes_from is known only from inspects; planning again may add a step
        missing = [step for step in plan.steps if step.name not in inspects]
        answers = side_by_side(lambda step: _inspected(api.inspect_container, step.id), missing, concurrency)
        inspects.update({step.name: answer for step, answer in zip(missing, answers)})
        volumes_from = {name: tuple((i.get("HostConfig") or {}).get("VolumesFrom") or ())
                        for name, i in inspects.items() if i}
        plan = make_plan(report.containers, known, dependents, volumes_from)
    image_ids = sorted({i.get("Image") for i in inspects.values() if i.get("Image")})
    answers = side_by_side(lambda image_id: _inspected(api.inspect_image, image_id), image_ids, concurrency)
    return plan, inspects, {image_id: answer for image_id, answer in zip(image_ids, answers) if answer}


def _inspected(call, ident: str) -> dict:
    try:
        return call(ident)
    except EngineCallError:
        return {}  # apply.py reports the step failed with inspect-failed


def pull_auth(keychain: Keychain) -> PullAuth:
    """The daemon's X-Registry-Auth content for a reference, from the scan's keychain."""
    def auth(reference: Reference):
        credential = keychain.resolve(reference.registry, reference.repository)
        if credential is None or not credential.usable:
            return None
        if credential.identity_token:
            return {"identitytoken": credential.identity_token, "serveraddress": reference.registry.name}
        return {"username": credential.username, "password": credential.password,
                "serveraddress": reference.registry.name}
    return auth


def _annotated(report: Report, actions: dict[str, Action], plan: Plan, known: tuple[Known, ...]) -> Report:
    """Each action on its container; a skip from the plan too; a container the scan did not show
    (a restarted dependent outside the names given) is added as skipped, not-selected. The report
    is the scan of this one endpoint (a fleet of one)."""
    actions = {**{s.name: Action("skipped", s.reason, s.detail or None) for s in plan.skipped}, **actions}
    endpoints = []
    for endpoint in report.endpoints:
        containers = [replace(c, action=actions.pop(c.name)) if c.name in actions else c for c in endpoint.containers]
        endpoints.append(replace(endpoint, containers=tuple(containers)))
    by_name = {k.name: k for k in known}
    extra = []
    for name, action in sorted(actions.items()):
        k = by_name.get(name)
        extra.append(ContainerResult(k.id if k else "", name, k.image if k else "", SKIPPED, "not-selected",
                                     action=action))
    if extra and endpoints:
        endpoints[0] = replace(endpoints[0], containers=endpoints[0].containers + tuple(extra))
    return replace(report, endpoints=tuple(endpoints))
