"""``sauvegarde quickstart``: the main job on the embedded defaults.

Creates the default repository under ``$XDG_DATA_HOME/sauvegarde/`` (with a generated password kept 0600 under
``$XDG_CONFIG_HOME/sauvegarde/`` unless a password is given), backs up PATH, then proves the backup by restoring it
into a scratch directory and verifying every byte.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.progress import Progress, wanted
from sauvegarde.crypto import KdfParams
from sauvegarde.engine.backup import Backup, BackupOptions
from sauvegarde.engine.events import Event, FileError
from sauvegarde.engine.restore import Restore, RestoreOptions
from sauvegarde.errors import EXIT_FATAL, EXIT_PARTIAL
from sauvegarde.repository import Repository
from sauvegarde.util import xdg
from sauvegarde.util.units import human_bytes, human_duration


def _ensure_repository(app: AppContext) -> tuple[Repository, str | None]:
    """Open the repository, creating it (and, for the default one, its password file) when missing."""
    storage = app.storage()
    if storage.exists() and any(True for _ in storage.list("keys/")):
        return app.open_repository(lock="shared"), None
    created_pw_file = None
    if app.uses_default_repository and app._password_from_sources() is None:
        pw_file = xdg.default_password_file()
        os.makedirs(os.path.dirname(pw_file), mode=0o700, exist_ok=True)
        fd = os.open(pw_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
        created_pw_file = pw_file
    repo = Repository.init(storage, app.password(confirm=True), KdfParams())
    repo.close()
    return app.open_repository(lock="shared"), created_pw_file


@click.command("quickstart")
@click.argument("path", required=False, type=click.Path(exists=True))
@click.pass_context
@pass_app
def command(app: AppContext, ctx: click.Context, path: str | None) -> None:
    """Back up PATH (default: your home directory) to the default repository and prove it restores."""
    path = os.path.abspath(path or os.path.expanduser("~"))
    repo, pw_file = _ensure_repository(app)
    app.out(f"repository: {repo.storage.location}")
    if pw_file:
        app.out(f"password:   generated in {pw_file} (copy it somewhere safe, away from this machine)")

    def report(event: Event) -> None:
        if isinstance(event, FileError) or not app.quiet:
            app.warn(f"{'error' if isinstance(event, FileError) else 'warning'}: {event.path}: {event.message}")

    job = Backup(repo, BackupOptions(paths=[path]), report)
    with Progress(job.counters, "backup", wanted(app.quiet, app.json)):
        snap = job.run()
    s = job.summary
    app.out(
        f"backup:     snapshot {snap.short_id} of {path}: {s.files_new + s.files_changed + s.files_unmodified} "
        f"files, {human_bytes(s.bytes_processed)}, {human_bytes(s.bytes_added)} added, "
        f"{human_duration(s.duration_s)}"
    )
    scratch = tempfile.mkdtemp(prefix="sauvegarde-quickstart-")
    try:
        restore = Restore(repo, snap, RestoreOptions(target=scratch, verify=True), report)
        with Progress(restore.counters, "verify", wanted(app.quiet, app.json)):
            r = restore.run()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ok = not r.errors
    app.out(
        f"restore:    {r.verified} of {r.files} files restored and verified byte for byte, "
        f"{human_duration(r.duration_s)}: {'OK' if ok else 'FAILED'}"
    )
    if app.json:
        app.emit_json(
            {
                "repository": repo.storage.location,
                "password_file": pw_file,
                "snapshot_id": snap.id,
                "backup": s.as_dict(),
                "restore": r.as_dict(),
                "ok": ok and not s.errors,
            }
        )
    if not ok:
        ctx.exit(EXIT_FATAL)
    if s.errors:
        ctx.exit(EXIT_PARTIAL)
