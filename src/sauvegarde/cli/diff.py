"""``sauvegarde diff``: what changed between two snapshots."""

from __future__ import annotations

from collections.abc import Iterator

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.engine.diff import Change, diff_snapshots
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
    changes = (c for c in diff_snapshots(repo, a, b) if metadata or c.kind != "U")
    counts = dict.fromkeys("+-MU", 0)

    def counted() -> Iterator[Change]:  # written as they come: a diff of a million files is never held whole
        for c in changes:
            counts[c.kind] += 1
            yield c

    if app.json:
        app.emit_json_list(
            {"first": a.id, "second": b.id},
            "changes",
            ({"path": c.path, "change": c.kind} for c in counted()),
            lambda: {"added": counts["+"], "removed": counts["-"], "modified": counts["M"]},
        )
        return
    app.out(f"comparing snapshot {a.short_id} to {b.short_id}:")
    for c in counted():
        app.out(f"{c.kind}    {c.path}")
    app.out(
        f"\n{counts['+']} added, {counts['-']} removed, {counts['M']} modified"
        + (f", {counts['U']} metadata only" if metadata else "")
    )
