"""Notifications by Apprise URL (Slack, Teams, Discord, Telegram, Matrix, ntfy, Gotify, e-mail, webhooks...).

    redact   what of a URL may be shown, and every secret of it taken out of free text
    message  the title, the body grouped by image, cut to a service's length
    send     one report to every URL within a deadline; an Outcome of what was sent and what failed

The policy (always, stale, change) is handler.outcome's, the same as for SNS; the CLI and the
Action apply it through handler.delivery and keep `change`'s state in handler.statefile.
"""
from __future__ import annotations

from .redact import Redactor, describe
from .send import Failure, Outcome, load_apprise, send

__all__ = ["Failure", "Outcome", "Redactor", "describe", "load_apprise", "send"]
