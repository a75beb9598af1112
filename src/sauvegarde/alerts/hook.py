"""After a run (``run``, the daemon): evaluate the plan, send what is new, and the digest when it is due.

Alerting never fails the run: problems come back as lines for the caller to show.
"""

from __future__ import annotations

from datetime import datetime

from sauvegarde.alerts.collect import collect
from sauvegarde.alerts.digest import digest_message
from sauvegarde.alerts.notify import DIGEST_KEY, Delivery, Notifier
from sauvegarde.errors import SauvegardeError
from sauvegarde.plan.model import Plan
from sauvegarde.plan.observe import observe
from sauvegarde.plan.rules import evaluate
from sauvegarde.state.db import StateDB


def describe(d: Delivery) -> str:
    if d.skipped:
        return f"alerts {d.channel}: {d.skipped}" + (f" ({d.alerts} waiting)" if d.skipped == "rate limited" else "")
    if d.ok:
        return f"alerts {d.channel}: sent" + (f" {d.alerts} alert(s)" if d.alerts else "")
    return f"alerts {d.channel}: FAILED: {d.error}"


def notify_after_run(plan: Plan, db: StateDB, now: datetime) -> list[Delivery]:
    """Evaluate and send; the digest too when due. Nothing happens without an ``[alerts]`` channel."""
    notifier = Notifier(plan, db)
    if not notifier.channels():
        return []
    obs = observe(plan, db, now)
    alerts = collect(plan, obs, evaluate(plan, obs), db)
    deliveries = notifier.send_alerts(alerts, now)
    if notifier.digest_due(now):
        deliveries += notifier.send_message(digest_message(plan, obs, alerts, db), DIGEST_KEY, now)
    return deliveries


def safe_notify_after_run(plan: Plan, db: StateDB, now: datetime) -> list[str]:
    """:func:`notify_after_run` as lines to show; an error while alerting is one more line, not an exception."""
    try:
        return [describe(d) for d in notify_after_run(plan, db, now) if d.skipped != "nothing new"]
    except (SauvegardeError, OSError) as exc:
        return [f"alerts: could not evaluate or send: {exc}"]
