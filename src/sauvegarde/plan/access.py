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


def password_file_path(plan: Plan, repo: RepositoryPlan) -> str | None:
    if not repo.password_file:
        return None
    path = os.path.expanduser(repo.password_file)
    return path if os.path.isabs(path) else os.path.join(os.path.dirname(plan.source or "."), path)


def repository_password(plan: Plan, name: str) -> bytes:
    repo = plan.repositories[name]
    path = password_file_path(plan, repo)
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                pw = f.readline().rstrip("\r\n")
        except OSError as exc:
            raise PasswordUnavailable(f"repository {name}: cannot read password file {path}: {exc.strerror}") from None
    elif repo.password_command:
        try:
            res = subprocess.run(shlex.split(repo.password_command), capture_output=True, text=True, timeout=60)
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            raise PasswordUnavailable(f"repository {name}: password command failed: {exc}") from None
        if res.returncode != 0:
            raise PasswordUnavailable(f"repository {name}: password command exited with status {res.returncode}")
        pw = res.stdout.splitlines()[0] if res.stdout else ""
    else:
        pw = os.environ.get(repo.password_env or "", "")
    if not pw:
        raise PasswordUnavailable(f"repository {name}: empty password from its password source")
    return pw.encode()


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
