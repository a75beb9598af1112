"""The weekly digest: proof that all is well (or the list of what is not), asset by asset."""

from __future__ import annotations

from datetime import datetime, timedelta

from sauvegarde.alerts.message import Alert, Message, worst
from sauvegarde.plan.model import Plan, format_duration
from sauvegarde.plan.observed import Observation
from sauvegarde.state.db import StateDB

WEEK = timedelta(days=7)


def _ago(now: datetime, then: datetime) -> str:
    return format_duration(timedelta(seconds=max(0, int((now - then).total_seconds()) // 60 * 60)))


def digest_message(plan: Plan, obs: Observation, alerts: list[Alert], db: StateDB) -> Message:
    """Title says all is well or counts the problems; the text gives, per asset, the newest good snapshot in every
    repository and the week's steps."""
    org = plan.organisation.name
    now = obs.now
    since = (now - WEEK).timestamp()
    steps = db.steps_since(since)
    failed = sum(1 for s in steps if s.outcome == "failed")
    lines = []
    if alerts:
        lines.append(f"{len(alerts)} open problem(s):")
        lines += [f"  - {a.line()}" for a in alerts]
    else:
        lines.append("All is well: every asset is within its RPO in every repository and nothing failed.")
    lines.append("")
    lines.append(f"Last 7 days: {len(steps)} step(s), {failed} failed.")
    for name, asset in plan.assets.items():
        lines.append(f"\n{name} ({asset.criticality}; RPO {format_duration(asset.rpo)}, schedule {asset.schedule})")
        for r in asset.repositories:
            state = obs.repository(r)
            newest = state.newest_good(name) if state.reachable else None
            if newest is None:
                what = "unreadable" if not state.reachable else "no good snapshot"
            else:
                what = f"newest good snapshot {newest.time:%Y-%m-%d %H:%M}, {_ago(now, newest.time)} old"
            lines.append(f"  {r}: {what}")
        drills = obs.asset(name).drills
        if drills:
            d = drills[-1]
            lines.append(f"  last drill {d.time:%Y-%m-%d} from {d.repository}: {'ok' if d.ok else 'FAILED'}")
    severity = worst(alerts) if alerts else "ok"
    title = f"[sauvegarde] {org}: weekly digest, " + (
        "all is well" if not alerts else f"{len(alerts)} problem(s) ({severity})"
    )
    return Message("digest", org, title, "\n".join(lines) + "\n", severity, list(alerts))


def trial_message(plan: Plan) -> Message:
    org = plan.organisation.name
    return Message(
        "test",
        org,
        f"[sauvegarde] {org}: test message",
        "This is a test of Sauvegarde's alerts (`sauvegarde alerts test`). If you read this, the channel works.\n",
        "info",
    )
