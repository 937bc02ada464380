"""Running one lifecycle hook (engine/lifecycle.py reads them) as exec in a container."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from .engineapi import EngineApi, EngineCallError
from .lifecycle import EX_TEMPFAIL, Hook
from .text import one_line

log = logging.getLogger("spyglass.update")


@dataclass(frozen=True)
class HookOutcome:
    ok: bool
    reason: str | None = None  # <stage>-hook-failed, -declined (exit 75) or -timeout
    detail: str | None = None


def run_hook(api: EngineApi, container: str, hook: Hook) -> HookOutcome:
    """The hook's command in the container; a failure is an outcome, never an exception."""
    try:
        code, last_line = api.exec(container, hook.argv(), hook.timeout)
    except EngineCallError as exc:
        return HookOutcome(False, f"{hook.stage}-hook-failed", str(exc))
    if code is None:
        return HookOutcome(False, f"{hook.stage}-hook-timeout", f"{hook.stage} hook ran past {hook.timeout:g} s")
    if code == 0:
        log.info("%s hook of %s done", hook.stage, container)
        return HookOutcome(True)
    slug = "declined" if code == EX_TEMPFAIL else "failed"
    detail = f"{hook.stage} hook exited {code}" + (f": {one_line(last_line, 120)}" if last_line else "")
    return HookOutcome(False, f"{hook.stage}-hook-{slug}", detail)
