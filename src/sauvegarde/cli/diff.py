"""``sauvegarde diff``: what changed between two snapshots."""

from __future__ import annotations

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.engine.diff import diff_snapshots
from sauvegarde.engine.find import find_snapshot


@click.command("diff")
@click.argument("first")
@click.argument("second")
@click.option("--metadata", is_flag=True, help="Also report entries whose metadata alone changed.")
@pass_app
def command(app: AppContext, first: str, second: str, metadata: bool) -> None:
    """Show files added (+), removed (-) and modified (M) from FIRST to SECOND; U is metadata only."""
    repo = app.open_repository(lock=None)
    snaps = repo.snapshots()
    a = find_snapshot(repo, first, snaps=snaps)
    b = find_snapshot(repo, second, snaps=snaps)
    changes = [c for c in diff_snapshots(repo, a, b) if metadata or c.kind != "U"]
    if app.json:
        app.emit_json(
            {
                "first": a.id,
                "second": b.id,
                "changes": [{"path": c.path, "change": c.kind} for c in changes],
                "added": sum(c.kind == "+" for c in changes),
                "removed": sum(c.kind == "-" for c in changes),
                "modified": sum(c.kind == "M" for c in changes),
            }
        )
        return
    app.out(f"comparing snapshot {a.short_id} to {b.short_id}:")
    for c in changes:
        app.out(f"{c.kind}    {c.path}")
    counts = {k: sum(c.kind == k for c in changes) for k in "+-MU"}
    app.out(
        f"\n{counts['+']} added, {counts['-']} removed, {counts['M']} modified"
        + (f", {counts['U']} metadata only" if metadata else "")
    )
