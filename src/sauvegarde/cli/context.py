"""What every command shares: global options, password sources, opening the repository, and output."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from sauvegarde.errors import SauvegardeError, UsageError
from sauvegarde.util import xdg

if TYPE_CHECKING:
    from sauvegarde.repository import Repository
    from sauvegarde.storage import Storage

# The repository and storage packages are imported when a repository is opened, not with this module: the key
# derivation can then run first, on a smaller process (derive_ahead).


@dataclass
class AppContext:
    repo: str | None = None
    password_file: str | None = None
    password_command: str | None = None
    json: bool = False
    quiet: bool = False
    verbose: int = 0
    no_lock: bool = False
    _opened: list[Repository] = field(default_factory=list)

    # ---- repository -----------------------------------------------------------------------------------

    @property
    def location(self) -> str:
        return self.repo or xdg.default_repository()

    @property
    def uses_default_repository(self) -> bool:
        return not self.repo

    def storage(self) -> Storage:
        from sauvegarde.storage import open_storage

        return open_storage(self.location)

    def open_repository(self, lock: str | None = "shared", load_index: bool = True) -> Repository:
        """Open the repository; ``lock`` is ``"shared"``, ``"exclusive"`` or ``None``."""
        storage = self.storage()
        if not storage.exists():
            from sauvegarde.errors import RepositoryNotFound

            raise RepositoryNotFound(f"no repository at {storage.location}")
        from sauvegarde.repository import Repository

        repo = Repository.open(storage, self.password(), load_index=load_index)
        self._opened.append(repo)
        if lock and not self.no_lock:
            repo.lock(exclusive=lock == "exclusive")
        return repo

    def derive_ahead(self) -> None:
        """Derive the key of a local repository now, from its first key file and a password from a file or the
        environment, before the command and the repository's modules are loaded: Argon2id's 64 MiB then come on
        top of 16-17 MiB of process rather than 20-21 (sauvegarde.crypto.kdf.derive_ahead); opening the
        repository takes the key instead of deriving it again. Best effort: with a remote repository, a password
        that only a command or a prompt gives, or anything unexpected, the command derives as usual (and reports
        what is wrong)."""
        location = self.location
        if ":" in location and not location.startswith("/"):
            return  # perhaps SCHEME:...; a remote store is opened once, by the command
        try:
            password = self._password_from_sources(run_command=False)
            if not password:
                return
            from sauvegarde.crypto.kdf import derive_ahead
            from sauvegarde.repository import keyfile, layout
            from sauvegarde.storage.local import LocalStorage

            storage = LocalStorage(location)
            names = sorted(info.name for info in storage.list(layout.KEYS))  # the order Repository.open tries
            if names:
                derive_ahead(password.encode(), *keyfile.kdf_inputs(storage.load(names[0])))
        except (SauvegardeError, OSError, ValueError):
            return

    def close(self) -> None:
        for repo in self._opened:
            with contextlib.suppress(SauvegardeError):
                repo.close()
        self._opened.clear()

    # ---- password -------------------------------------------------------------------------------------

    def password(self, prompt: str = "repository password: ", confirm: bool = False) -> bytes:
        pw = self._password_from_sources()
        if pw is None:
            if not sys.stdin.isatty():
                raise SauvegardeError(
                    "no password given: set SAUVEGARDE_PASSWORD, --password-file or --password-command"
                )
            pw = getpass.getpass(prompt)
            if confirm and getpass.getpass("again: ") != pw:
                raise UsageError("the two passwords differ")
        if not pw:
            raise UsageError("an empty password is not allowed")
        return pw.encode()

    def _password_from_sources(self, run_command: bool = True) -> str | None:
        """The password from the first source given; None if none is (or, unless ``run_command``, if it is to
        come from a command)."""
        pfile = self.password_file or os.environ.get("SAUVEGARDE_PASSWORD_FILE")
        if pfile:
            return read_password_file(pfile)
        pcmd = self.password_command or os.environ.get("SAUVEGARDE_PASSWORD_COMMAND")
        if pcmd:
            return run_password_command(pcmd) if run_command else None
        env = os.environ.get("SAUVEGARDE_PASSWORD")
        if env:
            return env
        if self.uses_default_repository and os.path.exists(xdg.default_password_file()):
            return read_password_file(xdg.default_password_file())
        return None

    # ---- output ---------------------------------------------------------------------------------------

    def out(self, text: str = "") -> None:
        """Human output on stdout; silent with --quiet or --json."""
        if not self.quiet and not self.json:
            click.echo(text)

    def emit_json(self, value: Any) -> None:
        click.echo(json.dumps(value, default=_json_default))

    def warn(self, text: str) -> None:
        """Warnings and errors go to stderr, even with --json or --quiet."""
        click.echo(text, err=True)


def read_password_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().rstrip("\r\n")
    except OSError as exc:
        raise UsageError(f"cannot read password file {path}: {exc.strerror}") from None


def run_password_command(cmd: str) -> str:
    try:
        res = subprocess.run(shlex.split(cmd), capture_output=True, text=True, timeout=60, check=False)
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"password command failed: {exc}") from None
    if res.returncode != 0:
        raise UsageError(f"password command exited with status {res.returncode}")
    return res.stdout.splitlines()[0] if res.stdout else ""


def _json_default(o: object) -> object:
    if isinstance(o, bytes):
        return o.hex()
    if hasattr(o, "as_dict"):
        return o.as_dict()
    raise TypeError(f"cannot serialize {type(o).__name__}")


pass_app = click.make_pass_decorator(AppContext)
