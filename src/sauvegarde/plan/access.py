"""Opening the plan's repositories: each one's password from its own source (file, command or variable).

A relative ``password_file`` is read relative to the plan file's directory, so a plan and its password files can
move together.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
from collections.abc import Iterator

from sauvegarde.crypto import KdfParams
from sauvegarde.errors import RepositoryNotFound, SauvegardeError, WrongPassword
from sauvegarde.plan.model import Plan, RepositoryPlan
from sauvegarde.repository import Repository
from sauvegarde.repository.config import RepoConfig
from sauvegarde.storage import open_storage


class PasswordUnavailable(SauvegardeError):
    """A repository's password source gave nothing."""


def plan_relative(plan: Plan, path: str) -> str:
    """``path`` with ``~`` expanded, relative to the plan file's directory unless absolute."""
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.join(os.path.dirname(plan.source or "."), path)


def password_file_path(plan: Plan, repo: RepositoryPlan) -> str | None:
    return plan_relative(plan, repo.password_file) if repo.password_file else None


def read_secret(plan: Plan, what: str, file: str | None, command: str | None, env: str | None) -> str:
    """A secret's first line from a file (relative to the plan), a command's output or a variable.

    Errors name ``what`` and the source, never the secret."""
    if file:
        path = plan_relative(plan, file)
        try:
            with open(path, encoding="utf-8") as f:
                secret = f.readline().rstrip("\r\n")
        except OSError as exc:
            raise PasswordUnavailable(f"{what}: cannot read password file {path}: {exc.strerror}") from None
    elif command:
        try:
            res = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=60)
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            raise PasswordUnavailable(f"{what}: password command failed: {exc}") from None
        if res.returncode != 0:
            raise PasswordUnavailable(f"{what}: password command exited with status {res.returncode}")
        secret = res.stdout.splitlines()[0] if res.stdout else ""
    else:
        secret = os.environ.get(env or "", "")
    if not secret:
        raise PasswordUnavailable(f"{what}: empty password from its password source")
    return secret


def repository_password(plan: Plan, name: str) -> bytes:
    repo = plan.repositories[name]
    what = f"repository {name}"
    return read_secret(plan, what, repo.password_file, repo.password_command, repo.password_env).encode()


def open_repository(plan: Plan, name: str, lock: str | None = "shared", load_index: bool = True) -> Repository:
    """Open (and lock: ``shared``, ``exclusive`` or None) the plan's repository ``name``; errors name it."""
    url = plan.repositories[name].url
    storage = open_storage(url)
    try:
        repo = Repository.open(storage, repository_password(plan, name), load_index=load_index)
    except WrongPassword:
        raise WrongPassword(f"repository {name}: wrong password for {url}") from None
    except RepositoryNotFound:
        raise RepositoryNotFound(f"repository {name}: no repository at {url} (create it with `plan init`)") from None
    try:
        if lock:
            repo.lock(exclusive=lock == "exclusive")
    except BaseException:
        repo.close()
        raise
    return repo


@contextlib.contextmanager
def opened(plan: Plan, name: str, lock: str | None = "shared", load_index: bool = True) -> Iterator[Repository]:
    repo = open_repository(plan, name, lock, load_index)
    try:
        yield repo
    finally:
        repo.close()


def repository_exists(plan: Plan, name: str) -> bool:
    storage = open_storage(plan.repositories[name].url)
    return storage.exists() and any(True for _ in storage.list("keys/"))


def init_repository(plan: Plan, name: str, kdf: KdfParams, chunker_from: Repository | None = None) -> str:
    """Create the repository ``name``; with ``chunker_from``, share its chunker parameters (copies deduplicate)."""
    config = RepoConfig.generate(chunker_from.config.chunker) if chunker_from is not None else None
    storage = open_storage(plan.repositories[name].url)
    repo = Repository.init(storage, repository_password(plan, name), kdf, config)
    try:
        return repo.config.repo_id
    finally:
        repo.close()
