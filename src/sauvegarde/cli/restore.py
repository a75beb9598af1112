"""``sauvegarde restore``: recreate a snapshot's files under a target directory."""

from __future__ import annotations

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.progress import Progress, wanted
from sauvegarde.cli.selection import filter_options, make_filter
from sauvegarde.engine.events import Event, FileError
from sauvegarde.engine.find import find_snapshot
from sauvegarde.engine.restore import Restore, RestoreOptions
from sauvegarde.errors import EXIT_FATAL
from sauvegarde.source import Excluder
from sauvegarde.storage.capabilities import object_lock_storage
from sauvegarde.util.units import human_bytes, human_duration


@click.command("restore")
@click.argument("snapshot")
@click.option("-t", "--target", required=True, type=click.Path(file_okay=False), help="Directory to restore into.")
@click.option("-i", "--include", multiple=True, metavar="PATTERN", help="Restore only paths matching PATTERN.")
@click.option("-e", "--exclude", multiple=True, metavar="PATTERN", help="Do not restore paths matching PATTERN.")
@click.option(
    "--restore-path",
    "--subpath",
    "subpath",
    metavar="PATH",
    help="Restore only this path of the snapshot (restic's SNAPSHOT:PATH).",
)
@click.option("--verify", is_flag=True, help="Read restored files back and check them against the snapshot.")
@filter_options
@click.pass_context
@pass_app
def command(
    app: AppContext,
    ctx: click.Context,
    snapshot: str,
    target: str,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    subpath: str | None,
    verify: bool,
    hosts: tuple[str, ...],
    paths: tuple[str, ...],
    tags: tuple[str, ...],
) -> None:
    """Restore SNAPSHOT (an ID, a unique prefix, or "latest") under TARGET.

    Files land at their original absolute path below TARGET. --path selects snapshots by their paths, as for
    other commands; --restore-path restores one subtree.
    """
    repo = app.open_repository(lock="shared")
    snap = find_snapshot(repo, snapshot, make_filter(hosts, paths, tags))

    def report(event: Event) -> None:
        kind = "error" if isinstance(event, FileError) else "warning"
        if not app.quiet or kind == "error":
            app.warn(f"{kind}: {event.path}: {event.message}")

    opts = RestoreOptions(
        target=target, include=Excluder(include), exclude=Excluder(exclude), path=subpath, verify=verify
    )
    job = Restore(repo, snap, opts, report)
    with Progress(job.counters, "restore", wanted(app.quiet, app.json)):
        summary = job.run()
    if app.json:
        app.emit_json({"message_type": "summary", "snapshot_id": snap.id, **summary.as_dict()})
    else:
        app.out(
            f"restored snapshot {snap.short_id}: {summary.files} files, {summary.dirs} dirs, "
            f"{human_bytes(summary.bytes)} in {human_duration(summary.duration_s)} to {target}"
        )
        if verify:
            app.out(f"verified {summary.verified} files")
    warn_hidden_reads(app, repo.storage)
    if summary.errors:
        app.warn(f"{len(summary.errors)} error(s) during restore")
        ctx.exit(EXIT_FATAL)


def warn_hidden_reads(app: AppContext, storage: object) -> None:
    """Say so when objects had to be read from retained versions (hidden behind delete markers or overwritten)."""
    ols = object_lock_storage(storage)
    hidden = sorted(set(ols.hidden_reads)) if ols is not None else []
    if hidden:
        app.warn(
            f"warning: {len(hidden)} objects were hidden behind delete markers (tampering?) and were read from "
            "retained versions; run `check`"
        )
