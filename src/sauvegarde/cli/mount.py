"""``sauvegarde mount``: browse every snapshot as a read-only file system (FUSE), until unmounted."""

from __future__ import annotations

import os

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.errors import UsageError


@click.command("mount")
@click.argument("mountpoint", type=click.Path(file_okay=False, path_type=str))
@click.option("--allow-other", is_flag=True, help="Let other users access the mount (needs user_allow_other).")
@click.option(
    "--refresh",
    type=click.FloatRange(0),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="How often to look for new snapshots.",
)
@click.option("--debug", is_flag=True, help="Print every FUSE request (libfuse debug output).")
@pass_app
def command(app: AppContext, mountpoint: str, allow_other: bool, refresh: float, debug: bool) -> None:
    """Mount the repository's snapshots read-only at MOUNTPOINT, in the foreground.

    The tree has snapshots/<time>/ (and a `latest` link), ids/<id>/, hosts/<host>/<time>/ and tags/<tag>/<time>/.
    Stop with Ctrl-C or `fusermount3 -u MOUNTPOINT`.
    """
    from sauvegarde.engine.browse import Browser
    from sauvegarde.mount import load_fuse, serve

    load_fuse()  # before asking for a password: fail fast when FUSE is missing
    if not os.path.isdir(mountpoint):
        raise UsageError(f"mount point {mountpoint} is not a directory")
    if os.path.ismount(mountpoint):
        raise UsageError(f"{mountpoint} is already a mount point")
    repo = app.open_repository(lock="shared")
    browser = Browser(repo, refresh_interval=refresh)
    app.out(
        f"repository {repo.config.repo_id[:8]} ({len(browser.snapshots)} snapshots) mounted at {mountpoint}; "
        f"Ctrl-C or `fusermount3 -u {mountpoint}` to unmount"
    )
    serve(browser, mountpoint, allow_other=allow_other, debug=debug)
    app.out("unmounted")
