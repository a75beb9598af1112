"""``status`` in data: per asset, the newest good snapshot in each repository and its age against the RPO.

Colours: green while the age is within 80% of the RPO, amber from there up to the RPO (about to breach), red past the
RPO or with no good snapshot (or an unreadable repository).
"""

from __future__ import annotations

from sauvegarde.plan.model import Plan, format_duration
from sauvegarde.plan.observed import DrillFact, Observation
from sauvegarde.plan.rules import Finding

AMBER_FROM = 0.8


def colour(age_s: float | None, rpo_s: float) -> str:
    if age_s is None or age_s > rpo_s:
        return "red"
    return "amber" if age_s > AMBER_FROM * rpo_s else "green"


def drill_status(d: DrillFact) -> dict[str, object]:
    """The facts of one drill for display: verdict, where from, how much, how fast, the extrapolation."""
    return {
        "time": d.time.isoformat(),
        "repository": d.repository,
        "verdict": "pass" if d.ok else "fail",
        "sample": d.sample,
        "bytes": d.bytes,
        "seconds": d.duration_s,
        "errors": d.errors,
        "ttfb_s": d.ttfb_s,
        "throughput": d.throughput,
        "estimated_full_s": d.estimated_full_s,
        "reasons": d.reasons,
    }


def asset_status(plan: Plan, obs: Observation, findings: list[Finding]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for name, asset in plan.assets.items():
        repos = []
        for r in asset.repositories:
            state = obs.repository(r)
            newest = state.newest_good(name) if state.reachable else None
            age = (obs.now - newest.time).total_seconds() if newest else None
            repos.append(
                {
                    "repository": r,
                    "reachable": state.reachable,
                    "error": state.error,
                    "last_good": newest.time.isoformat() if newest else None,
                    "age_s": round(age) if age is not None else None,
                    "colour": colour(age, asset.rpo.total_seconds()),
                }
            )
        drills = obs.asset(name).drills
        mine = [f for f in findings if f.severity != "ok" and f.subject.split(" in ")[0] == f"asset {name}"]
        out.append(
            {
                "asset": name,
                "criticality": asset.criticality,
                "rpo": format_duration(asset.rpo),
                "rto": format_duration(asset.rto),
                "schedule": str(asset.schedule),
                "repositories": repos,
                "last_drill": drills[-1].time.isoformat() if drills else None,
                "drill": drill_status(drills[-1]) if drills else None,
                "findings": [f.as_dict() for f in mine],
            }
        )
    return out
