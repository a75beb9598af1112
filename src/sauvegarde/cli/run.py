"""``sauvegarde run``: one pass of the plan's work (backups, copies, retention, prune and check when due)."""

from __future__ import annotations

from datetime import datetime

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.planfile import clock, load, open_state, plan_options
from sauvegarde.errors import EXIT_FATAL, UsageError


@click.command("run")
@plan_options
@click.option("--asset", "assets", multiple=True, metavar="NAME", help="Only this asset (repeatable).")
@click.option("--once", is_flag=True, help="Back up the selected assets now, even if their schedule says not yet.")
@click.pass_context
@pass_app
def command(
    app: AppContext,
    ctx: click.Context,
    plan_path: str | None,
    now: datetime | None,
    assets: tuple[str, ...],
    once: bool,
) -> None:
    """Back up each due asset to its first repository, copy it to the others, apply its retention, then prune and
    check the repositories when due. Every step is recorded in the state database; exit 1 if any step failed."""
    from sauvegarde.plan.run import PlanRunner

    plan = load(plan_path)
    unknown = [a for a in assets if a not in plan.assets]
    if unknown:
        raise UsageError(f"no asset {', '.join(unknown)} in the plan (assets: {', '.join(plan.assets)})")
    with open_state(plan) as db:
        runner = PlanRunner(plan, db, clock(now), say=app.out)
        report = runner.run(list(assets) or None, force=once)
        if plan.alerts is not None:
            from sauvegarde.alerts.hook import safe_notify_after_run

            for line in safe_notify_after_run(plan, db, runner.clock()):
                app.warn(line)
    if app.json:
        app.emit_json(report.as_dict())
    failures = report.failures
    if failures:
        app.warn(f"{len(failures)} step(s) failed:")
        for s in failures:
            app.warn(f"  {s.kind} {s.asset or ''} {s.repository}: {s.message}")
        ctx.exit(EXIT_FATAL)
    if not report.steps:
        app.out("nothing was due")
