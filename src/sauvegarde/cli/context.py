"""What every command shares: global options, password sources, opening the repository, and output."""

from __future__ import annotations

import contextlib
import getpass
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from sauvegarde.cli.password import password_from_sources
from sauvegarde.errors import SauvegardeError, UsageError
from sauvegarde.util import xdg

if TYPE_CHECKING:
    from sauvegarde.repository import Repository
    from sauvegarde.storage import Storage

# The repository and storage packages are imported when a repository is opened, not with this module.


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

    def close(self) -> None:
        for repo in self._opened:
            with contextlib.suppress(SauvegardeError):
                repo.close()
        self._opened.clear()

    # ---- password -------------------------------------------------------------------------------------

    def password(self, prompt: str = "repository password: ", confirm: bool = False) -> bytes:
        pw = password_from_sources(self.password_file, self.password_command, self.uses_default_repository)
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

    # ---- output ---------------------------------------------------------------------------------------

    def out(self, text: str = "") -> None:
        """Human output on stdout; silent with --quiet or --json."""
        if not self.quiet and not self.json:
            click.echo(text)

    def emit_json(self, value: Any) -> None:
        click.echo(json.dumps(value, default=_json_default))

    def emit_json_list(
        self,
        head: dict[str, Any],
        key: str,
        items: Iterable[Any],
        tail: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        """``emit_json({**head, key: list(items), **tail()})``, the same line, written as the items come (a listing
        of a million entries is never held whole); ``tail`` is called once the items are written (counts of them)."""
        start = json.dumps(head, default=_json_default)
        click.echo(f"{start[:-1]}{', ' if head else ''}{json.dumps(key)}: [", nl=False)
        encode = json.JSONEncoder(default=_json_default).encode
        parts: list[str] = []
        written = False

        def flush() -> None:  # a thousand items a write: one write per item cost a third more time
            nonlocal written
            if parts:
                click.echo((", " if written else "") + ", ".join(parts), nl=False)
                written = True
                parts.clear()

        for item in items:
            parts.append(encode(item))
            if len(parts) == 1024:
                flush()
        flush()
        end = json.dumps(tail(), default=_json_default) if tail is not None else "{}"
        click.echo("]" + (", " + end[1:] if end != "{}" else "}"))

    def warn(self, text: str) -> None:
        """Warnings and errors go to stderr, even with --json or --quiet."""
        click.echo(text, err=True)


def _json_default(o: object) -> object:
    if isinstance(o, bytes):
        return o.hex()
    if hasattr(o, "as_dict"):
        return o.as_dict()
    raise TypeError(f"cannot serialize {type(o).__name__}")


pass_app = click.make_pass_decorator(AppContext)
