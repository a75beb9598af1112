"""Where the repository password comes from: ``--password-file`` (or SAUVEGARDE_PASSWORD_FILE), then
``--password-command`` (or SAUVEGARDE_PASSWORD_COMMAND), then SAUVEGARDE_PASSWORD, then, for the default
repository, the default password file. Without click: the entry reads it before click is imported
(:mod:`sauvegarde.cli.entry`)."""

from __future__ import annotations

import os

from sauvegarde.errors import UsageError
from sauvegarde.util import xdg


def password_from_sources(
    password_file: str | None, password_command: str | None, default_repository: bool, run_command: bool = True
) -> str | None:
    """The password from the first source given; None if none is (or, unless ``run_command``, if it is to come
    from a command)."""
    pfile = password_file or os.environ.get("SAUVEGARDE_PASSWORD_FILE")
    if pfile:
        return read_password_file(pfile)
    pcmd = password_command or os.environ.get("SAUVEGARDE_PASSWORD_COMMAND")
    if pcmd:
        return run_password_command(pcmd) if run_command else None
    env = os.environ.get("SAUVEGARDE_PASSWORD")
    if env:
        return env
    if default_repository and os.path.exists(xdg.default_password_file()):
        return read_password_file(xdg.default_password_file())
    return None


def read_password_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().rstrip("\r\n")
    except OSError as exc:
        raise UsageError(f"cannot read password file {path}: {exc.strerror}") from None


def run_password_command(cmd: str) -> str:
    import shlex
    import subprocess

    try:
        res = subprocess.run(shlex.split(cmd), capture_output=True, text=True, timeout=60, check=False)
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"password command failed: {exc}") from None
    if res.returncode != 0:
        raise UsageError(f"password command exited with status {res.returncode}")
    return res.stdout.splitlines()[0] if res.stdout else ""
