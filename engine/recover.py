"""Finishing or reversing an update that was cut short (spyglass, the connection or the daemon died).

A container named NAME.spyglass-old (engine/aside.py) is the old container of an interrupted
update. The new container had been started and was still running when the run ended → the update
is finished (the old container removed). Otherwise the new one, if any, is removed, and the old
one gets its name back and is started again (it was running when the update began). Nothing is
removed before the container that replaces it is known to exist.
"""
from __future__ import annotations

import logging
from dataclasses import replace

from .aside import original_name
from .engineapi import EngineApi, EngineCallError
from .plan import Known
from .report import Action, Report

log = logging.getLogger("spyglass.update")
FINISHED, REVERSED = "interrupted-update-finished", "interrupted-update-reversed"


def interrupted(known: tuple[Known, ...]) -> dict[str, Known]:
    """The aside containers by the name they had."""
    return {original_name(k.name): k for k in known if original_name(k.name)}


def recover(api: EngineApi, known: tuple[Known, ...]) -> dict[str, Action]:
    """Every interrupted update finished or reversed; an Action per container name."""
    by_name = {k.name: k for k in known}
    actions = {}
    for name, old in sorted(interrupted(known).items()):
        current = by_name.get(name)
        try:
            if current is not None and current.state == "running":
                api.remove_container(old.id)
                actions[name] = Action("updated", FINISHED)
            else:
                if current is not None:
                    api.remove_container(current.id)
                api.rename(old.id, name)
                api.start(old.id)
                actions[name] = Action("rolled-back", REVERSED)
        except EngineCallError as exc:
            actions[name] = Action("failed", "interrupted-update", str(exc))
        log.warning("%s: a half-done update found: %s", name, actions[name].text())
    return actions


def mark_interrupted(report: Report) -> Report:
    """A scan's report with each aside container marked: an update was cut short there."""
    def marked(c):
        if not original_name(c.name):
            return c
        return replace(c, action=Action("failed", "interrupted-update", f"an update of {original_name(c.name)} was "
                                        "cut short; `spyglass update` finishes or reverses it"))
    return replace(report, endpoints=tuple(replace(e, containers=tuple(map(marked, e.containers)))
                                           for e in report.endpoints))
