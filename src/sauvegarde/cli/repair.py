"""``sauvegarde repair index|snapshots``: rebuild the index from packs; save readable copies of damaged snapshots."""

from __future__ import annotations

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.selection import filter_options, make_filter
from sauvegarde.engine.check import ReadSubset
from sauvegarde.engine.find import filter_snapshots, find_snapshot
from sauvegarde.engine.repair import repair_index, repair_snapshots


@click.group("repair")
def command() -> None:
    """Repair a damaged repository."""


@command.command("index")
@click.option("-n", "--dry-run", is_flag=True, help="Only read the pack headers and report.")
@pass_app
def index_command(app: AppContext, dry_run: bool) -> None:
    """Rebuild the index from the headers of the packs in storage."""
    repo = app.open_repository(lock="exclusive", load_index=False)
    result = repair_index(repo, dry_run)
    if app.json:
        app.emit_json({"dry_run": dry_run, **result.as_dict()})
        return
    for pid, error in result.packs_unreadable.items():
        app.warn(f"pack {pid}: header unreadable, left out of the index: {error}")
    verb = "would index" if dry_run else "indexed"
    app.out(f"{verb} {result.packs_indexed} pack(s) holding {result.blobs} blob(s)")
    if not dry_run:
        app.out(f"wrote {result.indexes_written} index object(s), deleted {result.indexes_deleted} old one(s)")


@command.command("snapshots")
@click.argument("snapshot_ids", nargs=-1)
@filter_options
@click.option("--read-data", is_flag=True, help="Also read every pack, to find damaged blobs, not only missing ones.")
@click.option("--forget", is_flag=True, help="Remove the damaged snapshots once their repaired copies are saved.")
@click.option("-n", "--dry-run", is_flag=True, help="Only say what would be removed.")
@pass_app
def snapshots_command(
    app: AppContext,
    snapshot_ids: tuple[str, ...],
    hosts: tuple[str, ...],
    paths: tuple[str, ...],
    tags: tuple[str, ...],
    read_data: bool,
    forget: bool,
    dry_run: bool,
) -> None:
    """Save copies of snapshots without the files whose data is lost (tagged "repaired")."""
    repo = app.open_repository(lock="exclusive" if forget else "shared", load_index=False)
    flt = make_filter(hosts, paths, tags)
    snaps = repo.snapshots()
    if snapshot_ids:
        snaps = [find_snapshot(repo, sid, flt, snaps) for sid in snapshot_ids]
    else:
        snaps = filter_snapshots(snaps, flt)
    results = repair_snapshots(repo, snaps, ReadSubset() if read_data else None, dry_run, forget)
    if app.json:
        app.emit_json([r.as_dict() for r in results])
        return
    damaged = [r for r in results if r.removed_count]
    for r in damaged:
        if r.new_snapshot:
            app.out(f"snapshot {r.snapshot[:8]}: saved as {r.new_snapshot[:8]} without {r.removed_count} path(s):")
        else:
            app.out(f"snapshot {r.snapshot[:8]}: {r.removed_count} path(s) lost:")
        for p in r.removed[:20]:
            app.out(f"    {p}")
        if len(r.removed) > 20:
            app.out(f"    ... and {r.removed_count - 20} more (--json lists them)")
    app.out(f"{len(damaged)} of {len(results)} snapshot(s) {'need' if dry_run else 'needed'} repair")
