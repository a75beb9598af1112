"""Fixtures for end-to-end CLI tests: the real ``sauvegarde`` command, run as a subprocess in a private environment.

Every test gets its own HOME and XDG directories under ``tmp_path``, a password in ``SAUVEGARDE_PASSWORD`` and
``SAUVEGARDE_REPOSITORY`` pointing at ``tmp_path/repo``. The ``repo`` fixture creates that repository with the
cheapest key derivation ``init`` accepts, so tests spend their time on backups, not on Argon2. The runner itself
is in ``cli_harness.py`` (re-exported here for modules that import it from ``conftest``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_harness import CHEAP_KDF, COMMAND, PASSWORD, Cli, private_env

__all__ = ["CHEAP_KDF", "COMMAND", "PASSWORD", "Cli", "private_env"]


@pytest.fixture
def repo_path(tmp_path: Path) -> Path:
    return tmp_path / "repo"


@pytest.fixture
def cli(tmp_path: Path, repo_path: Path) -> Cli:
    base = tmp_path / "env"
    base.mkdir()
    return Cli(private_env(base, repo_path), tmp_path)


@pytest.fixture
def run(cli: Cli) -> Any:
    """``run(*args, input=None, check_exit=0)``: run ``sauvegarde`` and return the CompletedProcess."""
    return cli.run


@pytest.fixture
def repo(cli: Cli, repo_path: Path) -> Iterator[Path]:
    """A fresh, empty repository at ``SAUVEGARDE_REPOSITORY``, with a cheap key derivation."""
    cli.run("init", *CHEAP_KDF)
    yield repo_path
