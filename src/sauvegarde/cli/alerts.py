"""``sauvegarde alerts``: send a test message to every channel, show what would be sent, send the digest now."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.planfile import clock, load, open_state, plan_options
from sauvegarde.errors import EXIT_FATAL, UsageError

if TYPE_CHECKING:
    from sauvegarde.alerts.notify import Delivery


@click.group("alerts")
def command() -> None:
    """Email and webhook alerts configured in the plan's [alerts] table (docs/plan.md)."""


def _show(app: AppContext, ctx: click.Context, deliveries: list[Delivery]) -> None:
    from sauvegarde.alerts.hook import describe

    for d in deliveries:
        if d.ok:
            app.out(describe(d))
        else:
            app.warn(describe(d))
    if not all(d.ok for d in deliveries):
        ctx.exit(EXIT_FATAL)


@command.command("test")
@plan_options
@click.pass_context
@pass_app
def test(app: AppContext, ctx: click.Context, plan_path: str | None, now: datetime | None) -> None:
    """Send a test message to every configured channel; exit 1 if any could not be reached."""
    from sauvegarde.alerts.digest import trial_message
    from sauvegarde.alerts.notify import Notifier

    plan = load(plan_path)
    if plan.alerts is None or not (plan.alerts.email or plan.alerts.webhook):
        raise UsageError(f"the plan {plan.source} has no [alerts] email or webhook")
    with open_state(plan) as db:
        deliveries = Notifier(plan, db).send_message(trial_message(plan), "test", clock(now)())
    if app.json:
        app.emit_json([d.__dict__ for d in deliveries])
    _show(app, ctx, deliveries)


@command.command("check")
@plan_options
@pass_app
def check(app: AppContext, plan_path: str | None, now: datetime | None) -> None:
    """Show the alerts the plan's state raises now, without sending anything."""
    from sauvegarde.alerts.collect import collect
    from sauvegarde.plan.observe import observe
    from sauvegarde.plan.rules import evaluate

    plan = load(plan_path)
    with open_state(plan) as db:
        obs = observe(plan, db, clock(now)())
        alerts = collect(plan, obs, evaluate(plan, obs), db)
    if app.json:
        app.emit_json([a.as_dict() for a in alerts])
        return
    for a in alerts:
        app.out(a.line())
    app.out(f"{len(alerts)} alert(s)")


@command.command("digest")
@plan_options
@click.pass_context
@pass_app
def digest(app: AppContext, ctx: click.Context, plan_path: str | None, now: datetime | None) -> None:
    """Send the digest (normally weekly, after a run) now."""
    from sauvegarde.alerts.collect import collect
    from sauvegarde.alerts.digest import digest_message
    from sauvegarde.alerts.notify import DIGEST_KEY, Notifier
    from sauvegarde.plan.observe import observe
    from sauvegarde.plan.rules import evaluate

    plan = load(plan_path)
    if plan.alerts is None or not (plan.alerts.email or plan.alerts.webhook):
        raise UsageError(f"the plan {plan.source} has no [alerts] email or webhook")
    with open_state(plan) as db:
        obs = observe(plan, db, clock(now)())
        alerts = collect(plan, obs, evaluate(plan, obs), db)
        deliveries = Notifier(plan, db).send_message(digest_message(plan, obs, alerts, db), DIGEST_KEY, obs.now)
    _show(app, ctx, deliveries)
