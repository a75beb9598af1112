"""Fixtures for the dashboard tests: a real plan (two local repositories, one asset) backed up by the real CLI, an
htpasswd file, and the environment the dashboard needs to open the plan's repositories in this process."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cli"))

from cli_harness import Cli, private_env
from dr_plan import KDF, write_plan

from sauvegarde.server.auth import add_user

ODD_NAME = b'caf\xe9 "odd";\r\nname.txt'  # Latin-1, not UTF-8; quotes, a semicolon and CR LF for the header
# several blobs, streamed in chunks; text, so the ransomware guard has nothing to say about it (its summary naming a
# non-UTF-8 file cannot be stored in the state database yet: a guard bug, reported)
ODD_CONTENT = b"".join(b"%08d the quick brown fox jumps over the lazy dog\n" % i for i in range(60_000))
USER, PASSWORD = "admin", "s3cret-dashboard"


@dataclass
class Site:
    tmp: Path
    plan: Path
    data: Path
    cli: Cli
    htpasswd: Path

    def snapshot_parts(self) -> list[bytes]:
        """The path of the data directory inside a snapshot, as name segments."""
        return [os.fsencode(p) for p in str(self.data).split("/") if p]


def make_site(tmp: Path) -> Site:
    base = tmp / "env"
    base.mkdir()
    cli = Cli(private_env(base, tmp / "repo"), tmp)
    plan = write_plan(tmp)
    data = tmp / "data"
    with open(os.path.join(os.fsencode(data), ODD_NAME), "wb") as f:
        f.write(ODD_CONTENT)
    cli.run("plan", "init", "--plan", plan, *KDF)
    cli.run("run", "--plan", plan, "--once")
    htpasswd = tmp / "htpasswd"
    add_user(str(htpasswd), USER, PASSWORD, cost=4)
    return Site(tmp, plan, data, cli, htpasswd)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return make_site(tmp_path_factory.mktemp("site"))


@pytest.fixture
def site_env(site: Site, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """The site, with this process's environment set as the CLI's (password, XDG state directory)."""
    for key in [k for k in os.environ if k.startswith(("SAUVEGARDE_", "XDG_"))]:
        monkeypatch.delenv(key)
    for key, value in site.cli.env.items():
        if key.startswith(("SAUVEGARDE_", "XDG_")) or key == "HOME":
            monkeypatch.setenv(key, value)
    yield site
