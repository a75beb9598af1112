"""``sauvegarde snapshots``: list snapshots."""

from __future__ import annotations

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.selection import filter_options, make_filter
from sauvegarde.engine.find import filter_snapshots
from sauvegarde.repository import Snapshot
from sauvegarde.util.units import human_bytes


def snapshot_json(s: Snapshot) -> dict[str, object]:
    return {
        "id": s.id,
        "short_id": s.short_id,
        "time": s.time,
        "tree": s.tree,
        "paths": s.paths,
        "hostname": s.hostname,
        "username": s.username,
        "tags": s.tags,
        "parent": s.parent,
        "original": s.original,
        "program_version": s.program_version,
        "summary": s.summary,
        **s.extra,
    }


@click.command("snapshots")
@filter_options
@click.option("--latest", type=int, metavar="N", help="Only the N newest snapshots per host and paths.")
@pass_app
def command(
    app: AppContext, hosts: tuple[str, ...], paths: tuple[str, ...], tags: tuple[str, ...], latest: int | None
) -> None:
    """List the snapshots in the repository, oldest first."""
    repo = app.open_repository(lock=None, load_index=False)
    snaps = filter_snapshots(repo.snapshots(), make_filter(hosts, paths, tags))
    if latest is not None:
        groups: dict[tuple[str, tuple[str, ...]], list[Snapshot]] = {}
        for s in snaps:
            groups.setdefault((s.hostname, tuple(sorted(s.paths))), []).append(s)
        keep = {s.id for g in groups.values() for s in g[-latest:]}
        snaps = [s for s in snaps if s.id in keep]
    if app.json:
        app.emit_json([snapshot_json(s) for s in snaps])
        return
    rows = [("ID", "Time", "Host", "Tags", "Size", "Guard", "Paths")]
    for s in snaps:
        size = human_bytes(int(s.summary.get("bytes_processed", 0)))
        rows.append(
            (
                s.short_id,
                s.datetime.strftime("%Y-%m-%d %H:%M:%S"),
                s.hostname,
                ",".join(s.tags),
                size,
                _guard_flag(s),
                "\n".join(s.paths),
            )
        )
    widths = [max(len(line) for r in rows for line in r[i].split("\n")) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        first, *more = r[6].split("\n") if r[6] else [""]
        app.out("  ".join(c.ljust(w) for c, w in zip((*r[:6], first), widths, strict=True)).rstrip())
        for extra in more:
            app.out(" " * (sum(widths[:6]) + 12) + extra)
        if i == 0:
            app.out("-" * (sum(widths) + 12))
    app.out(f"{len(snaps)} snapshot(s)")


def _guard_flag(s: Snapshot) -> str:
    """The guard's verdict as a column: ``ok``, ``SUSPICIOUS``, ``ATTACK``, ``released``, or ``-`` if unchecked."""
    g = s.extra.get("guard")
    if not isinstance(g, dict):
        return "-"
    if g.get("released"):
        return "released"
    v = str(g.get("verdict", "?"))
    return "ok" if v == "clean" else v.upper()
