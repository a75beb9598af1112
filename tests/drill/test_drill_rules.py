"""The RTO and 3-2-1-1-0 rules over recorded drills, as pure functions of hand-built observed state."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "plan"))

from plan_helpers import NOW, make_plan, observed

from sauvegarde.plan.model import Drill, Plan
from sauvegarde.plan.observed import DrillFact
from sauvegarde.plan.rules import rule_3_2_1_1_0, rule_rto


def _fact(age: timedelta = timedelta(hours=1), repo: str = "cloud", **kw: object) -> DrillFact:
    fields: dict[str, object] = {"ok": True, "estimated_full_s": 600.0, "throughput": 1e6, "ttfb_s": 0.2}
    fields.update(kw)
    return DrillFact(NOW - age, repo, 1.0, 1_000_000, **fields)  # type: ignore[arg-type]


def _with_drill(plan: Plan, schedule: str = "monthly 1 09:00", repo: str = "cloud") -> Plan:
    return plan.model_copy(update={"drills": [Drill(asset="data", repository=repo, schedule=schedule)]})


def _rto(plan: Plan, *drills: DrillFact) -> list[tuple[str, str]]:
    obs = observed(plan)
    obs.assets["data"].drills = list(drills)
    return [(f.severity, f.message) for f in rule_rto(plan, obs)]


def test_no_drill_is_info() -> None:
    ((severity, message),) = _rto(make_plan(rto="1h"))
    assert severity == "info" and message.startswith("no drill yet")


def test_estimate_within_and_over_the_rto() -> None:
    plan = make_plan(rto="1h")
    assert [s for s, _ in _rto(plan, _fact(estimated_full_s=3599))] == ["ok"]
    ((severity, message),) = _rto(plan, _fact(estimated_full_s=3601))
    assert severity == "fail" and "longer than the RTO of 1h" in message


def test_the_latest_drill_counts_not_an_older_good_one() -> None:
    plan = make_plan(rto="1h")
    old_good, new_slow = _fact(timedelta(days=3)), _fact(estimated_full_s=7200, ok=False)
    assert [s for s, _ in _rto(plan, old_good, new_slow)] == ["fail"]
    assert [s for s, _ in _rto(plan, new_slow, _fact())] == ["ok"]


def test_drill_errors_fail_rto_and_the_zero_errors_rule() -> None:
    plan = make_plan(rto="1h")
    bad = _fact(ok=False, errors=2, reasons="/data/a: blob damaged")
    ((severity, message),) = _rto(plan, bad)
    assert severity == "fail" and "found 2 error(s)" in message
    obs = observed(plan)
    obs.assets["data"].drills = [bad]
    findings = rule_3_2_1_1_0(plan, obs)
    assert [(f.severity, f.message) for f in findings] == [("fail", "the latest restore drill found 2 error(s)")]
    assert "/data/a" in findings[0].evidence


def test_drill_recorded_without_an_estimate_uses_its_rate() -> None:
    plan = make_plan(rto="1h")  # the helper's asset is 10 MB
    assert [s for s, _ in _rto(plan, _fact(estimated_full_s=None))] == ["ok"]  # 1 MB/s: 10 s
    slow = DrillFact(NOW, "cloud", duration_s=1000, bytes=1000, ok=True)  # 1 B/s
    assert [s for s, _ in _rto(plan, slow)] == ["fail"]


def test_overdue_scheduled_drill_warns() -> None:
    plan = _with_drill(make_plan(rto="1h"))  # NOW is 2025-03-10: due since 2025-03-01 09:00
    fresh = _fact(timedelta(days=5))
    assert [s for s, _ in _rto(plan, fresh)] == ["ok"]
    stale = _fact(timedelta(days=12))
    findings = _rto(plan, stale)
    assert [s for s, _ in findings] == ["ok", "warn"] and "overdue" in findings[1][1]
    other_repo = _fact(timedelta(days=1), repo="nas")  # recent, but not from the repository the plan names
    assert [s for s, _ in _rto(plan, other_repo)] == ["ok", "warn"]


def test_drill_just_due_is_not_yet_overdue() -> None:
    plan = _with_drill(make_plan(rto="1h"), schedule="daily 11:00")  # fired an hour before NOW
    assert [s for s, _ in _rto(plan, _fact(timedelta(hours=20)))] == ["ok"]
    assert [s for s, _ in _rto(plan, _fact(timedelta(hours=26)))] == ["ok", "warn"]
