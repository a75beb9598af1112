"""``sauvegarde retention extend``: keep Object Lock retention ahead of time on an immutable repository."""

from __future__ import annotations

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.engine.retention_lock import maintain


@click.group("retention")
def command() -> None:
    """Object Lock retention of an immutable repository (init --immutable-days)."""


@command.command("extend")
@pass_app
def extend(app: AppContext) -> None:
    """Extend the retention of every object still needed; purge old versions whose retention ended.

    An object's retain-until date moves to now + N days once less than N/2 days remain. Run it (or prune) more
    often than every N/2 days so that protection never lapses.
    """
    repo = app.open_repository(lock="exclusive")
    report = maintain(repo)
    if app.json:
        app.emit_json(report.as_dict())
        return
    app.out(
        f"checked {report.checked} object(s) still needed: extended {report.extended}, "
        f"{report.recent} written recently enough to need nothing"
    )
    purge = report.purge
    if purge.versions_purged or purge.versions_waiting:
        app.out(
            f"purged {purge.versions_purged} old version(s) of deleted objects; "
            f"{purge.versions_waiting} wait for their retention to end"
        )
