"""``sauvegarde copy``: copy snapshots from another repository (with its own password and keys) into --repo."""

from __future__ import annotations

import getpass
import os
import sys

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.password import read_password_file, run_password_command
from sauvegarde.cli.progress import Progress, wanted
from sauvegarde.cli.selection import filter_options, make_filter
from sauvegarde.engine.copy import Copier, CopyResult, oldest_first
from sauvegarde.engine.find import filter_snapshots, find_snapshot
from sauvegarde.errors import RepositoryNotFound, SauvegardeError, UsageError, WrongPassword
from sauvegarde.repository import Repository, Snapshot
from sauvegarde.storage import open_storage
from sauvegarde.util.units import human_bytes


def source_password(password_file: str | None, password_command: str | None) -> bytes:
    """The source repository's password: the --from-password-* options, then SAUVEGARDE_FROM_* variables, then a
    prompt on a terminal (the same order as for --repo's password)."""
    pw: str | None = None
    pfile = password_file or os.environ.get("SAUVEGARDE_FROM_PASSWORD_FILE")
    pcmd = password_command or os.environ.get("SAUVEGARDE_FROM_PASSWORD_COMMAND")
    if pfile:
        pw = read_password_file(pfile)
    elif pcmd:
        pw = run_password_command(pcmd)
    else:
        pw = os.environ.get("SAUVEGARDE_FROM_PASSWORD") or None
    if pw is None:
        if not sys.stdin.isatty():
            raise SauvegardeError(
                "no password given for the source repository: set SAUVEGARDE_FROM_PASSWORD, "
                "--from-password-file or --from-password-command"
            )
        pw = getpass.getpass("source repository password: ")
    if not pw:
        raise UsageError("an empty password is not allowed")
    return pw.encode()


def open_source(app: AppContext, location: str, password: bytes) -> Repository:
    """Open and lock the source repository; errors name it as the source."""
    storage = open_storage(location)
    if not storage.exists():
        raise RepositoryNotFound(f"no source repository at {storage.location}")
    try:
        repo = Repository.open(storage, password)
    except WrongPassword:
        raise WrongPassword(
            f"wrong password for the source repository {storage.location} (--from-password-*, SAUVEGARDE_FROM_*)"
        ) from None
    except RepositoryNotFound as exc:
        raise RepositoryNotFound(f"source repository: {exc}") from None
    try:
        if not app.no_lock:
            repo.lock(exclusive=False)
    except BaseException:
        repo.close()
        raise
    return repo


def result_line(r: CopyResult, snaps: dict[str, Snapshot]) -> str:
    when = snaps[r.source_id].datetime.strftime("%Y-%m-%d %H:%M:%S") if r.source_id in snaps else r.time
    if r.copied:
        return (
            f"snapshot {r.source_id[:8]} of {when} copied as {r.dest_id[:8]} "
            f"({r.blobs_added} blobs, {human_bytes(r.bytes_added)} added)"
        )
    return f"snapshot {r.source_id[:8]} of {when} skipped (already in destination as {r.dest_id[:8]})"


@click.command("copy")
@click.argument("snapshots", nargs=-1, metavar="[SNAPSHOT]...")
@click.option(
    "--from-repo",
    envvar="SAUVEGARDE_FROM_REPOSITORY",
    required=True,
    metavar="LOCATION",
    help="Source repository path or URL (or SAUVEGARDE_FROM_REPOSITORY).",
)
@click.option(
    "--from-password-file",
    metavar="FILE",
    help="Read the source password from FILE (or SAUVEGARDE_FROM_PASSWORD_FILE).",
)
@click.option(
    "--from-password-command", metavar="CMD", help="Run CMD and use its first output line as the source password."
)
@filter_options
@pass_app
def command(
    app: AppContext,
    snapshots: tuple[str, ...],
    from_repo: str,
    from_password_file: str | None,
    from_password_command: str | None,
    hosts: tuple[str, ...],
    paths: tuple[str, ...],
    tags: tuple[str, ...],
) -> None:
    """Copy snapshots from --from-repo into --repo (all of them unless SNAPSHOT IDs are given).

    The repositories may have different passwords and keys: every blob is re-encrypted and every tree rewritten
    for the destination. Snapshots already copied (in either direction) are skipped, so running the command again
    copies only what is new. Content keeps the source's chunking.
    """
    src = open_source(app, from_repo, source_password(from_password_file, from_password_command))
    try:
        try:
            dst = app.open_repository(lock="shared")
        except WrongPassword as exc:
            raise WrongPassword(f"destination repository: {exc}") from None
        flt = make_filter(hosts, paths, tags)
        available = src.snapshots()
        if snapshots:
            chosen = {s.id: s for s in (find_snapshot(src, sel, flt, available) for sel in snapshots)}
            selected = list(chosen.values())
        else:
            selected = filter_snapshots(available, flt)
        by_id = {s.id: s for s in selected}
        copier = Copier(src, dst)
        results = []
        for snap in oldest_first(selected):
            # one progress line per snapshot, gone before the snapshot's result is printed on stdout
            with Progress(copier.counters, "copy", wanted(app.quiet, app.json)):
                result = copier.copy_snapshot(snap)
            results.append(result)
            app.out(result_line(result, by_id))
    finally:
        src.close()
    if app.json:
        app.emit_json([r.as_dict() for r in results])
    elif not selected:
        app.out("no snapshot to copy")
