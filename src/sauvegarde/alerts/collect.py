"""From plan, observed state and state database to alerts: failed or partial steps, missed schedules, the findings
of ``plan check`` (RPO breaches, check errors, failed drills...), slow drills and suspicious snapshots.

Pure apart from reading the state database; each alert's key is stable while the problem lasts, so the notifier can
leave out what was already said.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sauvegarde.alerts.message import Alert
from sauvegarde.plan.model import Plan, format_duration
from sauvegarde.plan.observed import Observation
from sauvegarde.plan.rules import Finding
from sauvegarde.state.db import DrillRecord, StateDB, Step
from sauvegarde.state.peers import GuardVerdict, guard_verdicts


def _when(ts: float, plan: Plan) -> str:
    return f"{datetime.fromtimestamp(ts, plan.tz()):%Y-%m-%d %H:%M}"


def latest_steps(plan: Plan, db: StateDB) -> list[Step]:
    """The latest recorded step of every kind the plan runs, per asset and repository (and maintenance)."""
    out = []
    for name, asset in plan.assets.items():
        first, others = asset.repositories[0], asset.repositories[1:]
        wanted = [("backup", first)] + [("copy", r) for r in others] + [("forget", r) for r in asset.repositories]
        for kind, repo in wanted:
            step = db.last_step(kind, repository=repo, asset=name, outcomes=("ok", "partial", "failed"))
            if step is not None:
                out.append(step)
    for repo in plan.repositories:
        for kind in ("prune", "check"):
            step = db.last_step(kind, repository=repo, outcomes=("ok", "partial", "failed"))
            if step is not None:
                out.append(step)
    return out


def step_alerts(plan: Plan, db: StateDB) -> list[Alert]:
    out = []
    for s in latest_steps(plan, db):
        if s.outcome not in ("failed", "partial"):
            continue
        subject = f"{s.kind} of asset {s.asset} to repository {s.repository}" if s.asset else s.repository
        subject = subject if s.asset else f"{s.kind} of repository {s.repository}"
        severity = "fail" if s.outcome == "failed" else "warn"
        problems = "unreadable file(s)" if s.kind == "backup" else "problem(s)"  # prune: damaged copies it kept around
        what = "failed" if s.outcome == "failed" else f"finished with {s.errors} {problems}"
        out.append(
            Alert(
                f"step:{s.kind}:{s.asset or ''}:{s.repository}",
                severity,
                subject,
                f"{what} at {_when(s.started, plan)}: {s.message}",
                "see `sauvegarde status`; run `sauvegarde run --once` after fixing the cause",
            )
        )
    return out


def missed_schedule_alerts(plan: Plan, db: StateDB, now: datetime, grace: timedelta) -> list[Alert]:
    """A backup whose schedule fired more than ``grace`` ago without an attempt since: is the daemon running?"""
    out = []
    tz = plan.tz()
    for name, asset in plan.assets.items():
        fired = asset.schedule.previous_at_or_before(now.astimezone(tz), tz)
        if now - fired <= grace + plan.settings.jitter:
            continue
        last = db.last_step("backup", asset=name, outcomes=("ok", "partial", "failed", "skipped"))
        if last is None or last.started < fired.timestamp():
            since = "never attempted" if last is None else f"last attempt {_when(last.started, plan)}"
            out.append(
                Alert(
                    f"missed:{name}",
                    "warn",
                    f"asset {name}",
                    f"the backup scheduled for {fired:%Y-%m-%d %H:%M} ({asset.schedule}) did not run; {since}",
                    "is `sauvegarde daemon` running (systemctl status sauvegarde)? `sauvegarde run` catches up",
                )
            )
    return out


def finding_alerts(findings: list[Finding]) -> list[Alert]:
    return [
        Alert(f"finding:{f.rule}:{f.subject}", f.severity, f.subject, f"[{f.rule}] {f.message}", f.fix)
        for f in findings
        if f.severity in ("fail", "warn", "info")
    ]


def drill_alerts(plan: Plan, db: StateDB) -> list[Alert]:
    """The latest drill per asset and repository: failed, or slower than the asset's RTO (measured or estimated
    for the full asset)."""
    latest: dict[tuple[str, str], DrillRecord] = {}
    for d in db.drills():
        latest[(d.asset, d.repository)] = d
    out = []
    for (name, repo), d in latest.items():
        asset = plan.assets.get(name)
        if asset is None:
            continue
        when = _when(d.started, plan)
        if not d.passed:
            out.append(
                Alert(
                    f"drill:{name}:{repo}",
                    "fail",
                    f"asset {name} in repository {repo}",
                    f"the restore drill of {when} failed: {d.message or d.outcome}",
                    "look at the drill's report; run the drill again once fixed",
                )
            )
            continue
        full = d.estimated_full_s if d.estimated_full_s is not None else d.duration_s
        if full > asset.rto.total_seconds():
            took = format_duration(timedelta(seconds=int(full)))
            out.append(
                Alert(
                    f"drill-slow:{name}:{repo}",
                    "warn",
                    f"asset {name} in repository {repo}",
                    f"the restore drill of {when} shows a full restore takes about {took}, longer than the RTO of "
                    f"{format_duration(asset.rto)}",
                    "restore from a faster repository first, or agree a longer RTO",
                )
            )
    return out


def guard_alerts(plan: Plan, db: StateDB) -> list[Alert]:
    """The latest guard verdict per asset and repository, when it is suspicious."""
    latest: dict[tuple[str, str], GuardVerdict] = {}
    for v in guard_verdicts(db):
        latest[(v.asset, v.repository)] = v
    out = []
    for v in latest.values():
        if not v.suspicious:
            continue
        out.append(
            Alert(
                f"guard:{v.asset}:{v.repository}:{v.snapshot_id}",
                "fail",
                f"asset {v.asset} in repository {v.repository}",
                f"snapshot {v.snapshot_id[:8]} looks like ransomware at work ({v.verdict}): {v.message}",
                "do not prune; look at the files changed in that snapshot (`sauvegarde diff`) and restore from an "
                "earlier one",
            )
        )
    return out


def collect(plan: Plan, obs: Observation, findings: list[Finding], db: StateDB) -> list[Alert]:
    """Every current alert whose severity the plan's ``alerts.on`` asks for, one per key."""
    on = set(plan.alerts.on) if plan.alerts else {"fail"}
    grace = plan.alerts.missed_after if plan.alerts else timedelta(hours=1)
    alerts = [
        *step_alerts(plan, db),
        *missed_schedule_alerts(plan, db, obs.now, grace),
        *finding_alerts(findings),
        *drill_alerts(plan, db),
        *guard_alerts(plan, db),
    ]
    seen: dict[str, Alert] = {}
    for a in alerts:
        if a.severity in on:
            seen.setdefault(a.key, a)
    return list(seen.values())
