"""``sauvegarde dump``: write one file of a snapshot to standard output."""

from __future__ import annotations

import sys

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.selection import filter_options, make_filter
from sauvegarde.engine.find import find_snapshot
from sauvegarde.engine.walk import TreeLoader, resolve
from sauvegarde.errors import UsageError
from sauvegarde.repository.tree import FILE


@click.command("dump")
@click.argument("snapshot")
@click.argument("file")
@filter_options
@pass_app
def command(
    app: AppContext, snapshot: str, file: str, hosts: tuple[str, ...], paths: tuple[str, ...], tags: tuple[str, ...]
) -> None:
    """Write FILE from SNAPSHOT to standard output."""
    repo = app.open_repository(lock=None)
    snap = find_snapshot(repo, snapshot, make_filter(hosts, paths, tags))
    node, _ = resolve(TreeLoader(repo), bytes.fromhex(snap.tree), file)
    if node is None or node.type != FILE:
        raise UsageError(f"{file}: not a regular file in snapshot {snap.short_id}")
    out = sys.stdout.buffer
    for blob_id in node.content:
        out.write(repo.load_blob(blob_id))
    out.flush()
