"""``sauvegarde backup``: save files and directories (or standard input) as a new snapshot."""

from __future__ import annotations

import sys
from datetime import datetime

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.progress import Progress, start_scanner, wanted
from sauvegarde.engine.backup import Backup, BackupOptions, BackupSummary
from sauvegarde.engine.events import Event, FileError
from sauvegarde.errors import EXIT_PARTIAL, EXIT_SUSPICIOUS, UsageError
from sauvegarde.source import Excluder
from sauvegarde.util.units import human_bytes, human_duration


@click.command("backup")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("-e", "--exclude", multiple=True, metavar="PATTERN", help="Exclude paths matching PATTERN.")
@click.option("--exclude-file", multiple=True, metavar="FILE", help="Read exclude patterns from FILE.")
@click.option("-x", "--one-file-system", is_flag=True, help="Do not cross file-system boundaries.")
@click.option("--tag", multiple=True, metavar="TAG", help="Add TAG to the snapshot (repeatable, or comma list).")
@click.option("--host", metavar="HOST", help="Hostname recorded in the snapshot (default: this host).")
@click.option("--parent", metavar="SNAPSHOT", help="Compare with this snapshot instead of the latest one.")
@click.option("-f", "--force", is_flag=True, help="Re-read every file, ignoring the parent snapshot.")
@click.option("--stdin", "use_stdin", is_flag=True, help="Back up standard input as one file.")
@click.option("--stdin-filename", default="stdin", show_default=True, help="File name for --stdin.")
@click.option(
    "--time",
    "snapshot_time",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]),
    hidden=True,
    help="Record this local time as the snapshot time instead of now (for imports and tests).",
)
@click.option(
    "--guard",
    "guard_mode",
    type=click.Choice(["off", "warn", "enforce"]),
    default="enforce",
    show_default=True,
    help="Ransomware guard: enforce exits 4 when the backup looks suspicious; warn only reports; off skips it.",
)
@click.option("--canary", multiple=True, metavar="PATH", help="A canary file that must never change (repeatable).")
@click.pass_context
@pass_app
def command(
    app: AppContext,
    ctx: click.Context,
    paths: tuple[str, ...],
    exclude: tuple[str, ...],
    exclude_file: tuple[str, ...],
    one_file_system: bool,
    tag: tuple[str, ...],
    host: str | None,
    parent: str | None,
    force: bool,
    use_stdin: bool,
    stdin_filename: str,
    snapshot_time: datetime | None,
    guard_mode: str,
    canary: tuple[str, ...],
) -> None:
    """Back up PATHS (or standard input with --stdin) into a new snapshot."""
    if use_stdin and paths:
        raise UsageError("--stdin takes no paths")
    if not use_stdin and not paths:
        raise UsageError("nothing to back up: give at least one path, or --stdin")
    opts = BackupOptions(
        paths=list(paths),
        excluder=Excluder.from_files(exclude, exclude_file),
        one_file_system=one_file_system,
        tags=[t for item in tag for t in item.split(",") if t],
        parent=parent,
        force=force,
        stdin=sys.stdin.buffer if use_stdin else None,
        stdin_filename=stdin_filename,
        time=snapshot_time,
    )
    if guard_mode != "off" and not use_stdin:
        from sauvegarde.guard.guard import Guard

        opts.observer = Guard(guard_mode, canary)
    if host:
        opts.hostname = host
    repo = app.open_repository(lock="shared")

    def report(event: Event) -> None:
        kind = "error" if isinstance(event, FileError) else "warning"
        if not app.quiet or kind == "error":
            app.warn(f"{kind}: {event.path}: {event.message}")

    job = Backup(repo, opts, report)
    show = wanted(app.quiet, app.json)
    if show and not use_stdin:
        start_scanner(paths, opts.excluder, job.counters)
    with Progress(job.counters, "backup", show):
        snap = job.run()
    guard = snap.extra.get("guard")
    _print_summary(app, job.summary, guard)
    if isinstance(guard, dict):
        from sauvegarde.cli.guard import record_verdict

        record_verdict(app, snap)
        if guard.get("verdict") != "clean":
            app.warn(f"{guard.get('summary')} (snapshot {snap.short_id} kept as evidence; see `guard show`)")
            if guard_mode == "enforce":
                ctx.exit(EXIT_SUSPICIOUS)
    if job.summary.errors:
        ctx.exit(EXIT_PARTIAL)


def _print_summary(app: AppContext, s: BackupSummary, guard: object = None) -> None:
    if app.json:
        app.emit_json({"message_type": "summary", **s.as_dict()} | ({"guard": guard} if guard else {}))
        return
    if s.parent:
        app.out(f"using parent snapshot {s.parent[:8]}")
    app.out(f"Files:  {s.files_new} new, {s.files_changed} changed, {s.files_unmodified} unmodified")
    app.out(f"Dirs:   {s.dirs}")
    app.out(f"Added to the repository: {human_bytes(s.bytes_added)}")
    app.out(
        f"processed {s.files_new + s.files_changed + s.files_unmodified} files, "
        f"{human_bytes(s.bytes_processed)} in {human_duration(s.duration_s)}"
    )
    if s.errors:
        app.warn(f"{len(s.errors)} file(s) could not be read; the snapshot is saved without them")
    if isinstance(guard, dict) and guard.get("verdict") == "clean":
        app.out(f"guard: clean ({guard.get('stats', {}).get('files_checked', 0)} changed file(s) checked)")
    app.out(f"snapshot {s.snapshot_id[:8]} saved")
