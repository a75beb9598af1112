"""Helpers for drill tests: a small plan with a local and an "off-site" repository, and a tree to back up."""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sauvegarde.plan.load import load_plan
from sauvegarde.plan.model import Plan
from sauvegarde.state.db import StateDB

NOW = datetime(2025, 3, 10, 10, 30, tzinfo=UTC)
PASSWORD_ENV = "SAUVEGARDE_DRILL_TEST_PASSWORD"


def plan_text(tmp: Path, data: Path, rto: str = "4h", drills: str = "") -> str:
    repos = ""
    for name, domain, medium in (("local", "same-site", "nas"), ("offsite", "cloud", "object-storage")):
        repos += (
            f'[repositories.{name}]\nurl = "{tmp / ("repo-" + name)}"\npassword_env = "{PASSWORD_ENV}"\n'
            f'failure_domain = "{domain}"\nmedium = "{medium}"\nkey_escrow = "safe"\n'
            f"immutable = {'true' if name == 'offsite' else 'false'}\n"
        )
    return f"""
[organisation]
name = "Test"
[settings]
jitter = "0s"
state_dir = "{tmp / "state"}"
{repos}
[assets.data]
paths = ["{data}"]
criticality = "high"
rpo = "1d"
rto = "{rto}"
schedule = "daily 02:00"
retention = {{ keep_daily = 40 }}
repositories = ["local", "offsite"]
{drills}
"""


def make_tree(data: Path) -> None:
    """A dozen files (a few KiB to 300 KiB), a subdirectory with an odd mode, a symlink, an xattr if supported."""
    rng = random.Random(7)
    (data / "sub").mkdir(parents=True)
    for i in range(12):
        size = rng.choice([3000, 40_000, 300_000])
        (data / ("sub" if i % 3 else ".") / f"f{i:02}.bin").write_bytes(rng.randbytes(size))
    (data / "notes.txt").write_text("hello\n")
    os.chmod(data / "notes.txt", 0o640)
    os.symlink("notes.txt", data / "link")
    with contextlib.suppress(OSError):
        os.setxattr(data / "notes.txt", "user.drill", b"yes")
    os.chmod(data / "sub", 0o750)
    os.utime(data / "notes.txt", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))


@dataclass
class DrillEnv:
    tmp: Path
    data: Path
    plan_path: Path
    plan: Plan

    def db(self) -> StateDB:
        return StateDB(str(self.tmp / "state" / "state.db"))

    def reload(self, **kw: str) -> Plan:
        self.plan_path.write_text(plan_text(self.tmp, self.data, **kw))
        self.plan = load_plan(str(self.plan_path))
        return self.plan
