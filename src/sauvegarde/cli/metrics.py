"""``sauvegarde metrics``: the plan's state in the Prometheus text format, printed or served over HTTP."""

from __future__ import annotations

import signal
import sys
import threading
from datetime import datetime
from types import FrameType

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.planfile import clock, load, open_state, plan_options
from sauvegarde.errors import UsageError


@click.command("metrics")
@plan_options
@click.option(
    "--listen", metavar="HOST:PORT", help="Serve /metrics over HTTP here until SIGTERM, instead of printing once."
)
@click.option("--ttl", type=click.FloatRange(0), default=30.0, show_default=True, help="Seconds a gathering is reused.")
@pass_app
def command(app: AppContext, plan_path: str | None, now: datetime | None, listen: str | None, ttl: float) -> None:
    """Last good snapshot per asset and repository, RPO compliance, snapshot counts, step durations and bytes,
    check errors, findings, and drill and guard results where recorded (Prometheus text format)."""
    from sauvegarde.report.metrics import exposition, gather, serve
    from sauvegarde.util.listen import parse_listen

    plan = load(plan_path)
    when = clock(now)
    with open_state(plan) as db:
        if listen is None:
            sys.stdout.write(exposition(gather(plan, db, when())).decode())
            return
        try:
            host, port = parse_listen(listen)
        except ValueError as exc:
            raise UsageError(f"--listen: {exc}") from None
        stop = threading.Event()

        def on_signal(_signum: int, _frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            server, thread = serve(lambda: gather(plan, db, when()), host, port, ttl)
        except OSError as exc:
            raise UsageError(f"--listen {listen}: {exc.strerror or exc}") from None
        app.warn(f"sauvegarde metrics: serving http://{listen}/metrics")
        stop.wait()
        server.shutdown()
        server.server_close()
        thread.join(5)
