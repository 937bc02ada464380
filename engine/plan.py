"""Which containers an update touches, and in which order (no Engine API call: values in, a Plan out).

Outline:
    the scan's stale containers that are running → candidates; skipped with a reason: monitor-only
      label, swarm task, not running, a half-done update of the same name still aside
    → dependents: a running container that depends on a candidate (network_mode container:X, a
      legacy link, the depends-on label, volumes_from) is recreated after it with its own image
      (its namespace, hosts entries or mounts name the old container); one that may not be
      touched (disabled, monitor-only, outside the selection, swarm) blocks a candidate it shares
      a network namespace with, and is otherwise left alone
    → order: dependencies first (start order); stops run in the reverse; a cycle is skipped
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from .aside import original_name
from .daemon import ContainerInfo
from .lifecycle import HOOKS, Hook, hooks_of
from .report import STALE, ContainerResult
from .selection import Selection, disabled_by_label
from .text import one_line

MONITOR_ONLY_LABEL = "com.centurylinklabs.watchtower.monitor-only"
DEPENDS_ON_LABEL = "com.centurylinklabs.watchtower.depends-on"
_SWARM_LABELS = ("com.docker.swarm.task.id", "com.docker.swarm.service.id")
UPDATE, RESTART = "update", "restart"


@dataclass(frozen=True)
class Known:
    """One container as the daemon's list shows it (the update's own listing)."""

    id: str
    name: str
    state: str
    image: str
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    network_mode: str = ""
    linked_by: tuple[str, ...] = ()  # names of the containers holding a legacy link to this one

    @classmethod
    def from_summary(cls, summary: dict) -> Known:
        names = [n.lstrip("/") for n in summary.get("Names") or []]
        own = next((n for n in names if "/" not in n), summary["Id"][:12])
        return cls(id=summary["Id"], name=own, state=summary.get("State") or "", image=summary.get("Image") or "",
                   labels=dict(summary.get("Labels") or {}),
                   network_mode=(summary.get("HostConfig") or {}).get("NetworkMode") or "",
                   linked_by=tuple(sorted({n.split("/", 1)[0] for n in names if "/" in n})))

    def info(self) -> ContainerInfo:
        return ContainerInfo(self.id, self.name, self.image, "", self.state, self.labels)


@dataclass(frozen=True)
class Step:
    id: str
    name: str
    kind: str  # update (to a new digest) or restart (recreated with its own image, after a dependency)
    image: str  # the configured reference, kept on the new container
    reference: str | None = None  # normalised, for the pull (updates only)
    old_digest: str | None = None
    new_digest: str | None = None
    hooks: dict[str, Hook] = field(default_factory=dict, hash=False)
    after: tuple[str, ...] = ()  # names of steps that start before this one

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "image": self.image, "old_digest": self.old_digest,
                "new_digest": self.new_digest, "after": list(self.after), "hooks": sorted(self.hooks)}


@dataclass(frozen=True)
class Skip:
    id: str
    name: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]  # start order
    skipped: tuple[Skip, ...] = ()


def make_plan(results: tuple[ContainerResult, ...], known: tuple[Known, ...], selection: Selection = Selection(),
              volumes_from: dict[str, tuple[str, ...]] | None = None) -> Plan:
    """The plan for the stale containers among results; ``volumes_from`` maps a name to the
    containers it takes volumes from (only an inspect shows them)."""
    by_name = {k.name: k for k in known}
    needs = _dependencies(known, volumes_from or {})
    steps: dict[str, Step] = {}
    skipped: list[Skip] = []
    aside = {original_name(k.name) for k in known} - {None}
    for result in results:
        if result.status != STALE or result.name not in by_name:
            continue
        reason = _why_not(by_name[result.name], aside)
        if reason:
            skipped.append(Skip(result.id, result.name, reason))
            continue
        steps[result.name] = Step(result.id, result.name, UPDATE, result.image, result.reference,
                                  (result.local_digests or (None,))[0], result.remote_digest,
                                  hooks_of(by_name[result.name].labels))
    _add_dependents(steps, skipped, by_name, needs, selection, aside)
    return _ordered(steps, skipped, needs)


def _why_not(container: Known, aside: set) -> str | None:
    if container.labels.get(MONITOR_ONLY_LABEL, "").strip().lower() == "true":
        return "monitor-only"
    if any(label in container.labels for label in _SWARM_LABELS):
        return "swarm-task"
    if container.state != "running":
        return "not-running"
    if container.name in aside:
        return "interrupted-update"
    return None


def _dependencies(known: tuple[Known, ...], volumes_from: dict[str, tuple[str, ...]]) -> dict[str, set[str]]:
    """Per container name, the names of the containers it needs started before it."""
    by_id = {k.id: k.name for k in known}
    needs: dict[str, set[str]] = {k.name: set() for k in known}
    for k in known:
        if k.network_mode.startswith("container:"):
            target = k.network_mode.split(":", 1)[1]
            needs[k.name].add(by_id.get(target, target))
        needs[k.name] |= {n.strip().lstrip("/") for n in k.labels.get(DEPENDS_ON_LABEL, "").split(",") if n.strip()}
        for holder in k.linked_by:
            needs.setdefault(holder, set()).add(k.name)
        needs[k.name] |= {n.split(":", 1)[0].lstrip("/") for n in volumes_from.get(k.name, ())}
    return needs


def _shares_namespace(dependent: Known, target: Known) -> bool:
    return dependent.network_mode in (f"container:{target.id}", f"container:{target.name}")


def _add_dependents(steps: dict[str, Step], skipped: list[Skip], by_name: dict[str, Known],
                    needs: dict[str, set[str]], selection: Selection, aside: set) -> None:
    """Every running container that needs a step becomes a restart step, transitively."""
    queue = list(steps)
    while queue:
        target = queue.pop()
        for name, wanted in needs.items():
            if target not in wanted or name in steps or name not in by_name:
                continue
            dependent = by_name[name]
            if dependent.state != "running":
                continue
            reason = _why_not(dependent, aside) or (
                "disabled-by-label" if disabled_by_label(dependent.info()) else None) or (
                None if selection.includes(dependent.info()) else "not-selected")
            if reason is None:
                steps[name] = Step(dependent.id, name, RESTART, dependent.image,
                                   hooks=hooks_of(dependent.labels))
                queue.append(name)
            elif _shares_namespace(dependent, by_name[target]) and target in steps:
                blocked = steps.pop(target)
                skipped.append(Skip(blocked.id, target, "dependent-excluded",
                                    f"{name} shares its network namespace and is {reason}"))


def _ordered(steps: dict[str, Step], skipped: list[Skip], needs: dict[str, set[str]]) -> Plan:
    """Kahn's algorithm over the steps' dependencies among themselves; ties in name order."""
    among = {name: sorted(needs.get(name, set()) & set(steps)) for name in steps}
    order: list[Step] = []
    done: set[str] = set()
    while len(done) < len(among):
        ready = sorted(n for n in among if n not in done and all(d in done for d in among[n]))
        if not ready:
            for name in sorted(set(among) - done):
                skipped.append(Skip(steps[name].id, name, "dependency-cycle"))
            break
        for name in ready:
            done.add(name)
            order.append(_with_after(steps[name], among[name]))
    return Plan(tuple(order), tuple(sorted(skipped, key=lambda s: s.name)))


def _with_after(step: Step, after: list[str]) -> Step:
    return replace(step, after=tuple(after))


def describe(plan: Plan) -> str:
    """The plan for a person: start order, what each step moves to, its hooks; then the skips."""
    if not plan.steps:
        lines = ["Nothing to update."]
    else:
        lines = [f"Plan: {len(plan.steps)} container{'s' if len(plan.steps) != 1 else ''}, in start order "
                 "(stopped in the reverse order):"]
    for i, step in enumerate(plan.steps, 1):
        move = (f"{_short(step.old_digest)} -> {step.new_digest}" if step.kind == UPDATE
                else "recreated with its own image")
        extra = [f"after {', '.join(step.after)}"] if step.after else []
        extra += [f"hooks {', '.join(h for h in HOOKS if h in step.hooks)}"] if step.hooks else []
        lines.append(f"  {i}. {one_line(step.name, 60)} ({step.kind}) {one_line(step.image, 100)}: {move}"
                     + (f" [{'; '.join(extra)}]" if extra else ""))
    for skip in plan.skipped:
        detail = f" ({one_line(skip.detail, 160)})" if skip.detail else ""
        lines.append(f"  skipped {one_line(skip.name, 60)}: {skip.reason}{detail}")
    return "\n".join(lines)


def _short(digest: str | None) -> str:
    return digest.split(":", 1)[-1][:12] if digest else "-"
