"""``sauvegarde init``: create a repository."""

from __future__ import annotations

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.crypto import KdfParams
from sauvegarde.repository import Repository


@click.command("init")
@click.option(
    "--kdf-memory",
    type=click.IntRange(64),
    default=KdfParams.memory_kib,
    show_default=True,
    metavar="KIB",
    help="Argon2id memory cost of the key file, in KiB.",
)
@click.option(
    "--kdf-iterations",
    type=click.IntRange(1),
    default=KdfParams.iterations,
    show_default=True,
    metavar="N",
    help="Argon2id time cost of the key file.",
)
@pass_app
def command(app: AppContext, kdf_memory: int, kdf_iterations: int) -> None:
    """Create a new repository at --repo."""
    storage = app.storage()
    kdf = KdfParams(memory_kib=kdf_memory, iterations=kdf_iterations, lanes=min(4, max(1, kdf_memory // 8)))
    repo = Repository.init(storage, app.password(prompt="new repository password: ", confirm=True), kdf)
    try:
        if app.json:
            app.emit_json({"message": "initialized", "id": repo.config.repo_id, "repository": storage.location})
        else:
            app.out(f"created repository {repo.config.repo_id[:8]} at {storage.location}")
            app.out("Keep the password safe: without it the data cannot be recovered.")
    finally:
        repo.close()
