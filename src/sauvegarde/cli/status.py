"""``sauvegarde status``: per asset, the last good backup in each repository against the RPO, drills, findings."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.planfile import clock, load, open_state, plan_options
from sauvegarde.plan.model import format_duration
from sauvegarde.state.db import StateDB
from sauvegarde.util.units import human_bytes

COLOURS = {"green": "green", "amber": "yellow", "red": "red"}


@click.command("status")
@plan_options
@pass_app
def command(app: AppContext, plan_path: str | None, now: datetime | None) -> None:
    """One block per asset: newest good snapshot per repository and its age (green, amber, red against the RPO),
    the last restore drill, and the open findings of `plan check`."""
    from sauvegarde.plan.observe import observe
    from sauvegarde.plan.rules import evaluate
    from sauvegarde.plan.status import asset_status

    plan = load(plan_path)
    with open_state(plan) as db:
        obs = observe(plan, db, clock(now)())
        guard = {name: guard_line(db, name) for name in plan.assets}
    status = asset_status(plan, obs, evaluate(plan, obs))
    for a in status:
        a["guard"] = guard.get(str(a["asset"]))
    if app.json:
        app.emit_json({"plan": plan.source, "now": obs.now.isoformat(), "assets": status})
        return
    print_status(app, status)


def guard_line(db: StateDB, asset: str) -> str | None:
    """The ransomware guard's state for an asset: an unreleased suspect first, else the latest verdict."""
    records = db.guard_verdicts(asset=asset)
    if not records:
        return None
    suspects = [r for r in records if r.verdict != "clean" and r.released is None]
    if suspects:
        r = suspects[-1]
        return f"UNDER SUSPICION since snapshot {r.snapshot_id[:8]}: {r.summary} (guard show, then guard release)"
    r = records[0]
    return f"{r.verdict} (snapshot {r.snapshot_id[:8]})" + (", released" if r.released else "")


def drill_line(d: object) -> str:
    if not isinstance(d, dict):
        return "none yet"
    share = "full" if float(d["sample"]) >= 1 else f"{float(d['sample']):.0%} sample"
    line = f"{str(d['time'])[:16].replace('T', ' ')} from {d['repository']} ({share}): {str(d['verdict']).upper()}"
    if d["errors"]:
        line += f", {d['errors']} error(s)"
    if d["throughput"]:
        line += f", {human_bytes(int(d['throughput']))}/s"
    if d["ttfb_s"] is not None:
        line += f", first byte {float(d['ttfb_s']):.2f}s"
    if d["estimated_full_s"] is not None:
        line += f", full restore ~{format_duration(timedelta(seconds=round(float(d['estimated_full_s']))))}"
    return line


def print_status(app: AppContext, status: list[dict[str, object]]) -> None:
    color = not app.json and sys.stdout.isatty()
    for a in status:
        app.out(f"{a['asset']} ({a['criticality']}; RPO {a['rpo']}, RTO {a['rto']}, schedule {a['schedule']})")
        for r in a["repositories"]:  # type: ignore[attr-defined]
            mark = str(r["colour"]).upper()
            if color:
                mark = click.style(mark, fg=COLOURS[str(r["colour"])])
            if r["last_good"] is None:
                what = f"unreadable: {r['error']}" if not r["reachable"] else "no good snapshot"
            else:
                age = format_duration(timedelta(seconds=int(r["age_s"]) // 60 * 60))
                what = f"last good {str(r['last_good'])[:16].replace('T', ' ')}, {age} ago"
            app.out(f"  {mark:5} {r['repository']}: {what}")
        app.out(f"  last drill: {drill_line(a['drill'])}")
        if a.get("guard"):
            app.out(f"  guard: {a['guard']}")
        findings = a["findings"]
        assert isinstance(findings, list)
        if findings:
            app.out(f"  open findings ({len(findings)}):")
            for f in findings:
                app.out(f"    {f['severity']}: [{f['rule']}] {f['message']}")
        app.out()
