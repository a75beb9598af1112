"""Running the real ``sauvegarde`` command as a subprocess, in a private environment, for end-to-end tests.

The fixtures built on this are in ``conftest.py``; test modules import what they need from here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

PASSWORD = "correct horse battery staple"
CHEAP_KDF = ("--kdf-memory", "64", "--kdf-iterations", "1")
COMMAND = (sys.executable, "-m", "sauvegarde")

Arg = str | os.PathLike[str] | bytes


def private_env(base: Path, repo: Path) -> dict[str, str]:
    """The environment of a CLI run: inherited, minus anything that could point at a real repository or config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAUVEGARDE_", "XDG_"))}
    for name in ("home", "config", "data", "state", "cache"):
        (base / name).mkdir(exist_ok=True)
    env.update(
        HOME=str(base / "home"),
        XDG_CONFIG_HOME=str(base / "config"),
        XDG_DATA_HOME=str(base / "data"),
        XDG_STATE_HOME=str(base / "state"),
        XDG_CACHE_HOME=str(base / "cache"),
        SAUVEGARDE_PASSWORD=PASSWORD,
        SAUVEGARDE_REPOSITORY=str(repo),
        LC_ALL="C.UTF-8",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


class Cli:
    """Runs ``sauvegarde`` with a fixed environment; ``run`` checks the exit code and that nothing crashed."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd

    def _env(self, extra: Mapping[str, str | None] | None) -> dict[str, str]:
        env = dict(self.env)
        for k, v in (extra or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def run(
        self,
        *args: Arg,
        input: bytes | str | None = None,
        check_exit: int | None = 0,
        env: Mapping[str, str | None] | None = None,
        timeout: float = 300,
        prefix: tuple[str, ...] = (),
        **popen: Any,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run the command; ``check_exit`` is the expected exit code (None: any). Output is kept as bytes.

        ``prefix`` goes before the command (a wrapper such as ``unshare``); ``env`` adds to the environment
        (a None value removes the variable).
        """
        data = input.encode() if isinstance(input, str) else input
        res = subprocess.run(
            [*prefix, *COMMAND, *map(os.fsencode, args)],
            input=data,
            stdin=None if data is not None else subprocess.DEVNULL,
            capture_output=True,
            env=self._env(env),
            cwd=self.cwd,
            timeout=timeout,
            check=False,
            **popen,
        )
        assert b"Traceback" not in res.stderr, res.stderr.decode(errors="replace")
        assert b"internal error" not in res.stderr, res.stderr.decode(errors="replace")
        if check_exit is not None and res.returncode != check_exit:
            pytest.fail(
                f"sauvegarde {' '.join(os.fsdecode(a) for a in args)}: exit {res.returncode}, expected {check_exit}\n"
                f"--- stdout\n{res.stdout.decode(errors='replace')[-3000:]}\n"
                f"--- stderr\n{res.stderr.decode(errors='replace')[-3000:]}"
            )
        return res

    def json(self, *args: Arg, **kwargs: Any) -> Any:
        """Run with ``--json`` and parse stdout as one JSON document."""
        res = self.run("--json", *args, **kwargs)
        return json.loads(res.stdout)

    def backup_json(self, *args: Arg, **kwargs: Any) -> dict[str, Any]:
        """Run ``backup --json`` and return its summary (the last line of stdout)."""
        res = self.run("--json", "backup", *args, **kwargs)
        lines = res.stdout.decode().splitlines()
        assert lines, res.stderr.decode(errors="replace")
        docs = [json.loads(line) for line in lines]  # every line is JSON
        summary = docs[-1]
        assert isinstance(summary, dict)
        assert summary.get("message_type") == "summary"
        return summary

    def popen(self, *args: Arg, env: Mapping[str, str | None] | None = None, **popen: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*COMMAND, *map(os.fsencode, args)], env=self._env(env), cwd=self.cwd, **popen)
