"""What the guard adds to a backup beyond its per-file work: imports (measured: the plan model, pydantic, was
0.15 s of CPU in every guarded backup before it was imported lazily; see docs/guard.md for the measured cost)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CHECK = """
import sys
import sauvegarde.cli.main, sauvegarde.cli.backup, sauvegarde.engine.backup
import sauvegarde.guard.guard, sauvegarde.cli.guard
from sauvegarde.cli.planfile import state_path
state_path()
heavy = sorted(m for m in ("pydantic", "sauvegarde.plan.model") if m in sys.modules)
assert not heavy, heavy
"""


def test_guarded_backup_without_a_plan_imports_no_plan_model(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SAUVEGARDE_PLAN"}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # no plan file there
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    subprocess.run([sys.executable, "-c", CHECK], env=env, check=True, timeout=120)
