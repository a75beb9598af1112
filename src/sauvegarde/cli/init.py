"""``sauvegarde init``: create a repository."""

from __future__ import annotations

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.crypto import KdfParams
from sauvegarde.errors import UsageError
from sauvegarde.repository import Repository
from sauvegarde.repository.config import RepoConfig


@click.command("init")
@click.option(
    "--kdf-memory",
    type=click.IntRange(64),
    default=KdfParams().memory_kib,
    show_default=True,
    metavar="KIB",
    help="Argon2id memory cost of the key file, in KiB.",
)
@click.option(
    "--kdf-iterations",
    type=click.IntRange(1),
    default=KdfParams().iterations,
    show_default=True,
    metavar="N",
    help="Argon2id time cost of the key file.",
)
@click.option(
    "--copy-chunker-params",
    is_flag=True,
    help="Use the chunker parameters of --from-repo, so that data copied from it deduplicates with new backups.",
)
@click.option("--from-repo", metavar="LOCATION", envvar="SAUVEGARDE_FROM_REPOSITORY", help="Source repository.")
@click.option("--from-password-file", metavar="FILE", help="Password file of --from-repo.")
@click.option("--from-password-command", metavar="CMD", help="Command printing the password of --from-repo.")
@click.option(
    "--immutable-days",
    type=click.IntRange(1),
    metavar="N",
    help="S3 only: retain every object (but locks) with Object Lock for N days, extended while still needed.",
)
@click.option(
    "--lock-mode",
    type=click.Choice(["compliance", "governance"]),
    help="Object Lock mode for --immutable-days (default compliance: nobody can shorten or remove it).",
)
@pass_app
def command(
    app: AppContext,
    kdf_memory: int,
    kdf_iterations: int,
    copy_chunker_params: bool,
    from_repo: str | None,
    from_password_file: str | None,
    from_password_command: str | None,
    immutable_days: int | None,
    lock_mode: str | None,
) -> None:
    """Create a new repository at --repo."""
    config: RepoConfig | None = None
    if copy_chunker_params:
        if not from_repo:
            raise UsageError("--copy-chunker-params needs --from-repo")
        from sauvegarde.cli.copy import open_source, source_password

        src = open_source(app, from_repo, source_password(from_password_file, from_password_command))
        try:
            config = RepoConfig.generate(src.config.chunker)
        finally:
            src.close()
    storage = app.storage()
    if lock_mode and not immutable_days:
        raise UsageError("--lock-mode needs --immutable-days")
    if immutable_days:
        from sauvegarde.engine.retention_lock import prepare_immutable
        from sauvegarde.storage.capabilities import RetentionPolicy

        policy = RetentionPolicy(immutable_days, lock_mode or "compliance")
        config, warnings = prepare_immutable(storage, config or RepoConfig.generate(), policy)
        for warning in warnings:
            app.warn(f"warning: {warning}")
    kdf = KdfParams(memory_kib=kdf_memory, iterations=kdf_iterations, lanes=min(4, max(1, kdf_memory // 8)))
    repo = Repository.init(storage, app.password(prompt="new repository password: ", confirm=True), kdf, config)
    try:
        if app.json:
            app.emit_json({"message": "initialized", "id": repo.config.repo_id, "repository": storage.location})
        else:
            app.out(f"created repository {repo.config.repo_id[:8]} at {storage.location}")
            if repo.config.immutability is not None:
                p = repo.config.immutability
                app.out(f"every object is retained for {p.days} day(s) in {p.mode} mode (Object Lock)")
            app.out("Keep the password safe: without it the data cannot be recovered.")
    finally:
        repo.close()
