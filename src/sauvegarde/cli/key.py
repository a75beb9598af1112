"""``sauvegarde key``: manage the passwords (key files) that open a repository."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.password import read_password_file
from sauvegarde.crypto import KdfParams
from sauvegarde.errors import SauvegardeError, UsageError
from sauvegarde.repository import Repository


def _new_password(app: AppContext, new_password_file: str | None) -> bytes:
    if new_password_file:
        pw = read_password_file(new_password_file)
        if not pw:
            raise UsageError("an empty password is not allowed")
        return pw.encode()
    import getpass
    import sys

    if not sys.stdin.isatty():
        raise UsageError("give the new password with --new-password-file")
    first = getpass.getpass("new password: ")
    if first != getpass.getpass("again: "):
        raise UsageError("the two passwords differ")
    if not first:
        raise UsageError("an empty password is not allowed")
    return first.encode()


def _find_key(repo: Repository, prefix: str) -> bytes:
    hits = [k.key_id for k in repo.list_keys() if k.key_id.hex().startswith(prefix.lower())]
    if len(hits) != 1:
        raise SauvegardeError(f"key {prefix}: {'no match' if not hits else 'ambiguous'}")
    return hits[0]


@click.group("key")
def command() -> None:
    """Add, list, remove or change the passwords of the repository."""


F = TypeVar("F", bound=Callable[..., Any])


def _with_opts(f: F) -> F:
    f = click.option(
        "--kdf-memory",
        type=click.IntRange(64),
        default=KdfParams().memory_kib,
        metavar="KIB",
        help="Argon2id memory cost of the new key file, in KiB.",
    )(f)
    return click.option("--new-password-file", metavar="FILE", help="Read the new password from FILE.")(f)


@command.command("list")
@pass_app
def list_keys(app: AppContext) -> None:
    """List key files; * marks the one that opened the repository."""
    repo = app.open_repository(lock=None, load_index=False)
    keys = repo.list_keys()
    if app.json:
        app.emit_json(
            [
                {
                    "id": k.key_id.hex(),
                    "current": k.key_id == repo.key_id,
                    "created": k.created,
                    "hostname": k.hostname,
                    "username": k.username,
                }
                for k in keys
            ]
        )
        return
    for k in keys:
        mark = "*" if k.key_id == repo.key_id else " "
        app.out(f"{mark}{k.key_id.hex()[:8]}  {k.created}  {k.username}@{k.hostname}")


@command.command("add")
@_with_opts
@pass_app
def add_key(app: AppContext, new_password_file: str | None, kdf_memory: int) -> None:
    """Add a password that opens the repository."""
    repo = app.open_repository(lock=None, load_index=False)
    kid = repo.add_key(_new_password(app, new_password_file), KdfParams(memory_kib=kdf_memory))
    if app.json:
        app.emit_json({"added": kid.hex()})
    else:
        app.out(f"added key {kid.hex()[:8]}")


@command.command("remove")
@click.argument("key_id")
@pass_app
def remove_key(app: AppContext, key_id: str) -> None:
    """Remove the key KEY_ID (not the one in use)."""
    repo = app.open_repository(lock=None, load_index=False)
    kid = _find_key(repo, key_id)
    if kid == repo.key_id:
        raise SauvegardeError("refusing to remove the key in use; open the repository with another password")
    repo.remove_key(kid)
    if app.json:
        app.emit_json({"removed": kid.hex()})
    else:
        app.out(f"removed key {kid.hex()[:8]}")


@command.command("passwd")
@_with_opts
@pass_app
def passwd(app: AppContext, new_password_file: str | None, kdf_memory: int) -> None:
    """Change the password: add a key for the new one, then remove the current key."""
    repo = app.open_repository(lock=None, load_index=False)
    kid = repo.add_key(_new_password(app, new_password_file), KdfParams(memory_kib=kdf_memory))
    repo.remove_key(repo.key_id)
    if app.json:
        app.emit_json({"added": kid.hex(), "removed": repo.key_id.hex()})
    else:
        app.out(f"password changed: key {kid.hex()[:8]} replaces {repo.key_id.hex()[:8]}")


@command.command("export")
@pass_app
def export_key(app: AppContext) -> None:
    """Print a recovery sheet: repository ID, location and the master key for paper (standard output only).

    Whoever holds the sheet can read every backup without a password: print it, keep it in a safe away from the
    protected site, and do not leave copies in files or logs.
    """
    import time

    from sauvegarde.repository.recovery import encode_master_key, recovery_sheet

    repo = app.open_repository(lock=None, load_index=False)
    created = time.strftime("%Y-%m-%d %H:%M")
    if app.json:
        app.emit_json(
            {
                "repository_id": repo.config.repo_id,
                "location": repo.storage.location,
                "master_key": encode_master_key(repo.master),
            }
        )
        return
    click.echo(recovery_sheet(repo.master, repo.config.repo_id, repo.storage.location, created))


@command.command("recover")
@_with_opts
@pass_app
def recover_key(app: AppContext, new_password_file: str | None, kdf_memory: int) -> None:
    """Add a password to the repository from the master key of a recovery sheet (read from standard input)."""
    import sys

    from sauvegarde.repository.recovery import add_key_from_master, decode_master_key

    storage = app.storage()
    if sys.stdin.isatty():
        click.echo("type the master key groups from the recovery sheet, then an empty line:", err=True)
    lines = []
    for line in sys.stdin:
        if not line.strip():
            break
        lines.append(line)
    master = decode_master_key("".join(lines))
    kid = add_key_from_master(storage, master, _new_password(app, new_password_file), KdfParams(memory_kib=kdf_memory))
    if app.json:
        app.emit_json({"added": kid.hex()})
    else:
        app.out(f"added key {kid.hex()[:8]}: the new password opens the repository")
