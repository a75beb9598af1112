"""``sauvegarde unlock``: remove stale locks (or every lock with --remove-all)."""

from __future__ import annotations

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.repository.locks import remove_stale_locks


@click.command("unlock")
@click.option("--remove-all", is_flag=True, help="Remove every lock, even those of live processes.")
@pass_app
def command(app: AppContext, remove_all: bool) -> None:
    """Remove locks left by processes that died or stopped refreshing them."""
    repo = app.open_repository(lock=None, load_index=False)
    removed = remove_stale_locks(repo.storage, repo.cipher, remove_all=remove_all)
    if app.json:
        app.emit_json({"removed": [{"name": lk.name, "description": lk.describe()} for lk in removed]})
        return
    for lk in removed:
        app.out(f"removed {lk.describe()}")
    app.out(f"{len(removed)} lock(s) removed")
