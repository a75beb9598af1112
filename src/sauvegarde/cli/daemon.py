"""``sauvegarde daemon``: carry out the plan on its schedules until SIGTERM (or Ctrl-C)."""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.planfile import load, open_state, plan_options
from sauvegarde.errors import UsageError

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from sauvegarde.plan.daemon import RealClock
    from sauvegarde.plan.model import Plan
    from sauvegarde.state.db import StateDB


@click.command("daemon")
@plan_options
@pass_app
def command(app: AppContext, plan_path: str | None, now: datetime | None) -> None:
    """Run each asset when its schedule fires (with the plan's jitter), catching up on runs missed while down.

    On SIGTERM or SIGINT the step in progress finishes and nothing new starts. `install-service` writes a systemd
    unit that runs this command.
    """
    from sauvegarde.plan.daemon import RealClock, Scheduler
    from sauvegarde.plan.run import PlanRunner

    plan = load(plan_path)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        app.warn(f"sauvegarde daemon: {signal.Signals(signum).name}, stopping after the current step")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    real = RealClock()
    with open_state(plan) as db:
        runner = PlanRunner(plan, db, real.now, say=app.out, should_stop=stop.is_set)

        def last_attempt(asset: str) -> datetime | None:
            step = db.last_step("backup", asset=asset, outcomes=("ok", "partial", "failed"))
            return datetime.fromtimestamp(step.started, UTC) if step else None

        def run_asset(asset: str) -> None:
            report = runner.run([asset], force=True, trigger="daemon")
            if report.failures:
                app.warn(f"{asset}: {len(report.failures)} step(s) failed (see `sauvegarde status`)")
            if plan.alerts is not None:
                from sauvegarde.alerts.hook import safe_notify_after_run

                for line in safe_notify_after_run(plan, db, real.now()):
                    app.warn(line)

        scheduler = Scheduler(plan, run_asset, last_attempt, real, say=app.out)
        app.out(f"sauvegarde daemon: plan {plan.source}, {len(plan.assets)} asset(s)")
        metrics = _serve_metrics(app, plan, db, real)
        try:
            scheduler.run_forever(stop)
        finally:
            if metrics is not None:
                metrics.shutdown()
                metrics.server_close()
    app.out("sauvegarde daemon: stopped")


def _serve_metrics(app: AppContext, plan: Plan, db: StateDB, real: RealClock) -> WSGIServer | None:
    """Prometheus /metrics at ``settings.metrics_listen``, when the plan asks for it."""
    if not plan.settings.metrics_listen:
        return None
    from sauvegarde.report.metrics import gather, serve
    from sauvegarde.util.listen import parse_listen

    try:
        host, port = parse_listen(plan.settings.metrics_listen)
        server, _thread = serve(lambda: gather(plan, db, real.now()), host, port)
    except (ValueError, OSError) as exc:
        raise UsageError(f"settings.metrics_listen: {exc}") from None
    app.out(f"sauvegarde daemon: metrics at http://{plan.settings.metrics_listen}/metrics")
    return server
