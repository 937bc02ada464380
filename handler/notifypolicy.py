"""The NOTIFY policy carried out, once for every entry point: the CLI and the Action (handler.delivery,
state in a file), the Lambda's endpoint (handler/aws/lambda_function.py) and the fleet runs
(handler/aws/aggregate.py; both with state in DynamoDB).

    1. nowhere to deliver (no sender given): nothing is decided
    2. with change, the fingerprint last delivered under the report's key, from the store the caller
       opens; a store that cannot be read answers None and says why itself (a repeat beats a loss)
    3. the decision (handler.outcome.decide); when it says no, nothing is sent
    4. SNS, then the notify URLs, each whatever became of the other; a sender that raises ends the
       flow (the Lambda's failed publish fails the invocation, so its retry acts)
    5. with change, the fingerprint recorded only when every target took the report, so a failed one
       is tried again on the next run; a store that cannot record says why (``record_problem``)

What differs between the entry points is passed in: the store, and the senders, which report in
their caller's own terms (``Sent.fields``) and say whether their target took the report.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol

from handler.outcome import Decision, decide


class FingerprintStore(Protocol):
    """Where `change` keeps the fingerprint last delivered under each key (a report's or a fleet's name)."""

    def last(self, key: str) -> str | None:
        """The fingerprint last delivered under key; None when never, or when the store cannot be read
        (having said why)."""

    def record(self, key: str, fingerprint: str) -> str:
        """Store the fingerprint just delivered: "" when stored, else why not (a stored later delivery
        counts as stored)."""


@dataclass(frozen=True)
class Sent:
    """What one sender reports, under its caller's names, and whether its target took the report."""

    fields: Mapping[str, object] = field(default_factory=dict)
    took: bool = True


Sender = Callable[[], Sent]


@dataclass(frozen=True)
class Notified:
    """What became of one report. ``decision`` None: there was nowhere to deliver it."""

    decision: Decision | None = None
    fields: Mapping[str, object] = field(default_factory=dict)  # SNS's, then the notify URLs'
    took: bool = False  # every target sent to took the report
    recorded: bool = False  # the store now holds this report's fingerprint
    record_problem: str = ""


def notify_per_policy(policy: str, status: str, current: str, *, key: str,
                      open_store: Callable[[], FingerprintStore], publish: Sender | None,
                      send_urls: Sender | None) -> Notified:
    """Steps 1 to 5 of the module docstring for a report of ``status`` whose fingerprint is ``current``;
    ``open_store`` is called only under change, and only when there is somewhere to deliver."""
    if publish is None and send_urls is None:
        return Notified()
    store = open_store() if policy == "change" else None
    decision = decide(policy, status, current, store.last(key) if store is not None else None)
    if not decision.notify:
        return Notified(decision)
    sent = [sender() for sender in (publish, send_urls) if sender is not None]
    fields = {name: value for one in sent for name, value in one.fields.items()}
    took = all(one.took for one in sent)
    if store is None or not took:
        return Notified(decision, fields, took)
    problem = store.record(key, current)
    return Notified(decision, fields, took, recorded=not problem, record_problem=problem)
