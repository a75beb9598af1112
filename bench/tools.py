"""The three tools: their command lines (init, backup, restore, check), installing the missing ones, their versions.

A repository is a location string: a local path, or an ``s3:http://HOST:PORT/BUCKET/PREFIX`` URL (sauvegarde and
restic only; borg has no S3 backend). Settings: restic ``init --repository-version 2`` (compression ``auto``), borg
``init -e repokey-blake2`` and ``create --compression zstd,3``, sauvegarde ``init`` defaults; ``-q`` for sauvegarde
and restic.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.measure import GNU_TIME

TOOLS = ("sauvegarde", "restic", "borg")
S3_TOOLS = ("sauvegarde", "restic")  # borg 1.2 has no S3 backend


def sauvegarde_command() -> list[str]:
    script = Path(sys.executable).parent / "sauvegarde"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "sauvegarde"]


class Commands:
    """Command lines per tool; remembers the name of the last borg archive created in each repository."""

    def __init__(self) -> None:
        self.sauvegarde = sauvegarde_command()
        self.borg_archive: dict[str, str] = {}
        self.borg_counter = 0

    def init(self, tool: str, repo: str) -> list[str]:
        if tool == "sauvegarde":
            return [*self.sauvegarde, "-q", "-r", repo, "init"]
        if tool == "restic":
            return ["restic", "-q", "-r", repo, "init", "--repository-version", "2"]
        return ["borg", "init", "-e", "repokey-blake2", repo]

    def backup(self, tool: str, repo: str, path: Path) -> list[str]:
        if tool == "sauvegarde":
            return [*self.sauvegarde, "-q", "-r", repo, "backup", "--guard", "warn", str(path)]
        if tool == "restic":
            return ["restic", "-q", "-r", repo, "backup", str(path)]
        self.borg_counter += 1
        name = f"bench-{self.borg_counter}"
        self.borg_archive[repo] = name
        return ["borg", "create", "--compression", "zstd,3", f"{repo}::{name}", str(path)]

    def restore(self, tool: str, repo: str, target: Path) -> tuple[list[str], Path | None]:
        """The command and the directory to run it in (borg extracts into its working directory)."""
        if tool == "sauvegarde":
            return [*self.sauvegarde, "-q", "-r", repo, "restore", "latest", "--target", str(target)], None
        if tool == "restic":
            return ["restic", "-q", "-r", repo, "restore", "latest", "--target", str(target)], None
        return ["borg", "extract", f"{repo}::{self.borg_archive[repo]}"], target

    def check(self, tool: str, repo: str) -> list[str]:
        """A full check that reads and authenticates all data."""
        if tool == "sauvegarde":
            return [*self.sauvegarde, "-q", "-r", repo, "check", "--read-data"]
        if tool == "restic":
            return ["restic", "-q", "-r", repo, "check", "--read-data"]
        return ["borg", "check", "--verify-data", repo]

    def version(self, tool: str) -> list[str]:
        return {
            "sauvegarde": [*self.sauvegarde, "--version"],
            "restic": ["restic", "version"],
            "borg": ["borg", "--version"],
        }[tool]


def ensure_tools(tools: Sequence[str], need_time: bool) -> None:
    missing = [pkg for tool, pkg in (("restic", "restic"), ("borg", "borgbackup")) if tool in tools]
    missing = [pkg for pkg in missing if shutil.which("borg" if pkg == "borgbackup" else pkg) is None]
    if need_time and not os.access(GNU_TIME, os.X_OK):
        missing.append("time")
    if not missing:
        return
    print(f"installing with apt-get: {' '.join(missing)}", flush=True)
    cmd = ["apt-get", "install", "-y", *missing]
    if subprocess.run(cmd, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], check=False)
        subprocess.run(cmd, check=True)
