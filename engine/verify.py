"""Is a just-started container up? Watched from the daemon's event stream: one call, however long.

    health check (its own or its image's)   healthy within the limit → up; unhealthy → not
    none                                     no exit within the settle window → up
    either                                   die (exit, OOM kill) or restart → not up
The stream is opened before the start (so no event is missed) and closed at the limit.
"""
from __future__ import annotations

import threading

from .clock import Clock

UNHEALTHY, EXITED, RESTARTING, NOT_HEALTHY_IN_TIME = "unhealthy", "exited", "restart-loop", "health-timeout"


def has_health_check(inspect: dict) -> bool:
    test = ((inspect.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
    return bool(test) and test[0] != "NONE"


def watch(stream, *, healthy_needed: bool, limit: float, clock: Clock) -> tuple[str | None, str | None]:
    """(None, None) when the container is up; else (reason, detail). ``stream`` yields decoded events."""
    timer = threading.Timer(limit, stream.close)
    timer.daemon = True
    started = clock.monotonic()
    timer.start()
    try:
        for event in stream:
            verdict = _verdict(event)
            if verdict == "healthy" and healthy_needed:
                return None, None
            if verdict not in (None, "healthy"):
                return verdict, _detail(verdict, event)
    except Exception:  # noqa: BLE001 # nosec B110 # the stream closed under the reader at the limit: judged below
        pass
    finally:
        timer.cancel()
    if healthy_needed:
        return NOT_HEALTHY_IN_TIME, f"not healthy within {limit:g} s"
    if clock.monotonic() - started < limit * 0.9:  # the stream ended early: the daemon went away
        return "watch-lost", "the daemon's event stream ended before the settle window"
    return None, None


def _verdict(event: dict) -> str | None:
    action = event.get("Action") or event.get("status") or ""
    if action == "health_status: healthy":
        return "healthy"
    if action == "health_status: unhealthy":
        return UNHEALTHY
    if action in ("die", "oom"):
        return EXITED
    if action == "restart":
        return RESTARTING
    return None


def _detail(verdict: str, event: dict) -> str:
    code = ((event.get("Actor") or {}).get("Attributes") or {}).get("exitCode")
    if verdict == EXITED and code is not None:
        return f"exited with code {code}"
    return {UNHEALTHY: "the health check failed", RESTARTING: "restarted after an exit"}.get(verdict, verdict)
