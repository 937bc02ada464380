"""Watchtower's lifecycle hooks, read from a container's labels (what runs is engine/hooks.py).

    com.centurylinklabs.watchtower.lifecycle.pre-check      before anything, for each planned container
    com.centurylinklabs.watchtower.lifecycle.pre-update     before the container is stopped; a failure
                                                            (any non-zero exit; 75 is Watchtower's
                                                            "skip") leaves the container untouched
    com.centurylinklabs.watchtower.lifecycle.post-update    in the new container, once it is verified
    com.centurylinklabs.watchtower.lifecycle.post-check     after everything, for each planned container
    ...lifecycle.<hook>-timeout                             minutes, as Watchtower reads them (default 1)

Each command runs as ``sh -c COMMAND`` through exec in the container, as Watchtower does.
"""
from __future__ import annotations

from dataclasses import dataclass

PREFIX = "com.centurylinklabs.watchtower.lifecycle."
HOOKS = ("pre-check", "pre-update", "post-update", "post-check")
EX_TEMPFAIL = 75  # Watchtower's "skip this update" exit code of a pre-update command
DEFAULT_TIMEOUT_MINUTES = 1.0


@dataclass(frozen=True)
class Hook:
    stage: str  # one of HOOKS
    command: str
    timeout: float  # seconds

    def argv(self) -> list[str]:
        return ["sh", "-c", self.command]


def hooks_of(labels: dict[str, str]) -> dict[str, Hook]:
    """The container's hooks by stage; a stage without a command is absent."""
    found = {}
    for stage in HOOKS:
        command = (labels.get(PREFIX + stage) or "").strip()
        if command:
            found[stage] = Hook(stage, command, 60.0 * _minutes(labels.get(f"{PREFIX}{stage}-timeout")))
    return found


def _minutes(text: str | None) -> float:
    """Watchtower's timeout label in minutes; absent, unreadable or not positive: the default."""
    try:
        value = float(text) if text is not None else DEFAULT_TIMEOUT_MINUTES
    except ValueError:
        return DEFAULT_TIMEOUT_MINUTES
    return value if 0 < value < 1e6 else DEFAULT_TIMEOUT_MINUTES
