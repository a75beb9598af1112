"""``sauvegarde stats``: sizes, deduplication and compression, for some snapshots or the whole repository."""

from __future__ import annotations

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.selection import filter_options, make_filter
from sauvegarde.engine.find import filter_snapshots, find_snapshot
from sauvegarde.engine.stats import compute_stats
from sauvegarde.util.units import human_bytes


@click.command("stats")
@click.argument("snapshot_ids", nargs=-1)
@filter_options
@click.option("--per-snapshot", is_flag=True, help="Also print one line per snapshot.")
@pass_app
def command(
    app: AppContext,
    snapshot_ids: tuple[str, ...],
    hosts: tuple[str, ...],
    paths: tuple[str, ...],
    tags: tuple[str, ...],
    per_snapshot: bool,
) -> None:
    """Restore size, unique and stored data, and the ratios that relate them (default: every snapshot)."""
    repo = app.open_repository(lock=None)
    flt = make_filter(hosts, paths, tags)
    snaps = repo.snapshots()
    snaps = [find_snapshot(repo, s, flt, snaps) for s in snapshot_ids] if snapshot_ids else filter_snapshots(snaps, flt)
    st = compute_stats(repo, snaps)
    if app.json:
        app.emit_json(st.as_dict())
        return
    if per_snapshot:
        for s in st.snapshots:
            app.out(f"{s.id[:8]}  {s.time[:19]}  {s.files:>9} files  {human_bytes(s.restore_size):>11}")
    app.out(f"snapshots:          {len(st.snapshots)}")
    app.out(f"files:              {st.files}")
    app.out(f"restore size:       {human_bytes(st.restore_size)}")
    app.out(f"unique data:        {human_bytes(st.unique_size)} (+ {human_bytes(st.tree_size)} of directory listings)")
    app.out(f"blobs:              {st.unique_blobs}")
    app.out(f"stored (packed):    {human_bytes(st.stored_size)}")
    app.out(f"repository size:    {human_bytes(st.repository_size)} (all packs, referenced or not)")
    app.out(f"deduplication:      {st.dedup_ratio:.2f}x")
    app.out(f"compression:        {st.compression_ratio:.2f}x")
