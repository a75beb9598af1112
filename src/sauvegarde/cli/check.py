"""``sauvegarde check``: verify the repository's structure and, with --read-data, the content of its packs."""

from __future__ import annotations

import contextlib
import os

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.progress import Progress, wanted
from sauvegarde.engine.check import CheckReport, ReadSubset, check_repository
from sauvegarde.engine.events import Counters
from sauvegarde.errors import EXIT_FATAL, UsageError
from sauvegarde.util import xdg
from sauvegarde.util.units import human_bytes


def _cursor_file(repo_id: str) -> str:
    return os.path.join(xdg.state_dir(), "check", f"{repo_id}.cursor")


def _read_cursor(repo_id: str) -> str:
    try:
        with open(_cursor_file(repo_id), encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""


def _write_cursor(repo_id: str, cursor: str) -> None:
    path = _cursor_file(repo_id)
    with contextlib.suppress(OSError):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(cursor + "\n")
        os.replace(tmp, path)


@click.command("check")
@click.option("--read-data", is_flag=True, help="Download every pack and authenticate every blob.")
@click.option(
    "--read-data-subset",
    metavar="N%|n/m",
    help="Read only a subset of the packs: a rotating N% (successive runs cover everything) or bucket n of m.",
)
@click.pass_context
@pass_app
def command(app: AppContext, ctx: click.Context, read_data: bool, read_data_subset: str | None) -> None:
    """Check the repository for missing or damaged data; exit 1 on any error."""
    if read_data and read_data_subset:
        raise UsageError("--read-data and --read-data-subset exclude each other")
    repo = app.open_repository(lock="shared", load_index=False)
    read: ReadSubset | None = None
    if read_data:
        read = ReadSubset()
    elif read_data_subset:
        read = ReadSubset.parse(read_data_subset, _read_cursor(repo.config.repo_id))
    counters = Counters()
    counters.scan_finished = True
    with Progress(counters, "check", wanted(app.quiet, app.json) and read is not None):
        report = check_repository(repo, read, counters)
    if read is not None and read.percent is not None and report.next_cursor:
        _write_cursor(repo.config.repo_id, report.next_cursor)
    if app.json:
        app.emit_json(report.as_dict())
    else:
        _print_report(app, report)
    if report.errors:
        ctx.exit(EXIT_FATAL)


SHOW_PER_KIND = 20


def _print_report(app: AppContext, r: CheckReport) -> None:
    app.out(f"checked {r.snapshots} snapshot(s), {r.trees} tree(s), {r.blobs_referenced} blob(s), {r.packs} pack(s)")
    if r.packs_read:
        app.out(f"read {r.packs_read} pack(s), {human_bytes(r.bytes_read)}")
    shown: dict[str, int] = {}
    hidden: dict[str, int] = {}
    for p in r.problems:
        if shown.get(p.kind, 0) >= SHOW_PER_KIND:
            hidden[p.kind] = hidden.get(p.kind, 0) + 1
            continue
        shown[p.kind] = shown.get(p.kind, 0) + 1
        line = f"{p.severity}: {p.subject}: {p.message}"
        if p.severity == "error":
            app.warn(line)
            for path in p.paths:
                app.warn(f"    {path}")
        else:
            app.out(line)
    for kind, n in hidden.items():
        app.warn(f"... and {n} more {kind.replace('_', ' ')} problem(s) (--json lists them all)")
    if r.unused_blobs:
        app.out(f"{r.unused_blobs} blob(s) are referenced by no snapshot (prune removes them)")
    if r.duplicate_blobs:
        app.out(f"{r.duplicate_blobs} blob(s) are stored in more than one pack (harmless; prune keeps one copy)")
    errors = len(r.errors)
    if errors:
        app.warn(f"{errors} error(s) found")
    else:
        app.out("no errors were found")
