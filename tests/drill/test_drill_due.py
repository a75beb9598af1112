"""Which of the plan's drills are due: never run, run since the schedule fired, or fired again since."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from drill_helpers import NOW, plan_text

from sauvegarde.drill.plan import DrillTarget, due_drills, targets
from sauvegarde.plan.load import load_plan
from sauvegarde.state.db import DrillRecord, StateDB

DRILL = '[[drills]]\nasset = "data"\nrepository = "offsite"\nschedule = "monthly 1 09:00"\nsample = "10%"\n'


def test_due_drills_follow_the_schedule(tmp_path: Path) -> None:
    (tmp_path / "plan.toml").write_text(plan_text(tmp_path, tmp_path / "data", drills=DRILL))
    plan = load_plan(str(tmp_path / "plan.toml"))
    with StateDB(":memory:") as db:
        assert due_drills(plan, db, NOW) == [DrillTarget("data", "offsite", 0.1)]  # never drilled
        assert due_drills(plan, db, NOW, ["other"]) == []
        db.record_drill(DrillRecord("data", "local", NOW.timestamp(), 1.0, 1, 1, "pass"))  # not the planned repo
        assert len(due_drills(plan, db, NOW)) == 1
        db.record_drill(DrillRecord("data", "offsite", NOW.timestamp(), 1.0, 1, 1, "fail"))
        assert due_drills(plan, db, NOW + timedelta(days=5)) == []  # done since 1 March 09:00
        assert len(due_drills(plan, db, datetime(2025, 4, 1, 9, 1, tzinfo=UTC))) == 1  # fired again


def test_targets_defaults_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "plan.toml").write_text(plan_text(tmp_path, tmp_path / "data", drills=DRILL))
    plan = load_plan(str(tmp_path / "plan.toml"))
    assert targets(plan) == [DrillTarget("data", "offsite", 0.1)]  # the declared drill
    assert targets(plan, "data", sample=1.0) == [DrillTarget("data", "offsite", 1.0)]
    assert targets(plan, "data", "local") == [DrillTarget("data", "local", 1.0)]  # undeclared: full by default
    (tmp_path / "plan.toml").write_text(plan_text(tmp_path, tmp_path / "data"))
    bare = load_plan(str(tmp_path / "plan.toml"))
    assert targets(bare) == [DrillTarget("data", "offsite", 1.0)]  # every asset, from its last repository
