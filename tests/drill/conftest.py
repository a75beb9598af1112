"""Fixtures for drill tests: a small plan with a local and an "off-site" repository, backed up and copied once."""

from __future__ import annotations

from pathlib import Path

import pytest
from drill_helpers import NOW, PASSWORD_ENV, DrillEnv, make_tree, plan_text

from sauvegarde.crypto import KdfParams
from sauvegarde.plan.access import init_repository, opened
from sauvegarde.plan.load import load_plan
from sauvegarde.plan.run import PlanRunner


@pytest.fixture
def drill_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DrillEnv:
    """Both repositories created (cheap KDF), one backup copied to the off-site one; the cache dir is private."""
    monkeypatch.setenv(PASSWORD_ENV, "drill test password")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = tmp_path / "data"
    make_tree(data)
    path = tmp_path / "plan.toml"
    path.write_text(plan_text(tmp_path, data))
    plan = load_plan(str(path))
    init_repository(plan, "local", KdfParams.cheap())
    with opened(plan, "local", lock=None, load_index=False) as first:
        init_repository(plan, "offsite", KdfParams.cheap(), first)
    env = DrillEnv(tmp_path, data, path, plan)
    with env.db() as db:
        report = PlanRunner(plan, db, lambda: NOW).run(force=True)
    assert not report.failures, report.failures
    return env
