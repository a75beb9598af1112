"""Each compliance rule, passing and failing, as pure functions over hand-built observed state."""

from __future__ import annotations

from datetime import timedelta

from plan_helpers import NOW, make_plan, observed

from sauvegarde.plan.observed import DrillFact, RepositoryState
from sauvegarde.plan.rules import (
    evaluate,
    rule_3_2_1_1_0,
    rule_key_escrow,
    rule_object_lock,
    rule_retention,
    rule_rpo,
    rule_rto,
    rule_same_disk,
    rule_schedule,
    worst,
)


def _severities(findings: list) -> list[str]:  # type: ignore[type-arg]
    return [f.severity for f in findings]


def test_3_2_1_1_0_passes_with_nas_and_immutable_cloud() -> None:
    plan = make_plan()
    assert _severities(rule_3_2_1_1_0(plan, observed(plan))) == ["ok"]


def test_3_2_1_1_0_one_local_copy_fails_every_part() -> None:
    plan = make_plan(["local"])
    messages = [f.message for f in rule_3_2_1_1_0(plan, observed(plan)) if f.severity == "fail"]
    assert len(messages) == 4
    assert messages[0].startswith("2 copies counting the original")
    assert any("same kind of medium" in m for m in messages)
    assert any("off-site" in m for m in messages)
    assert any("immutable or offline" in m for m in messages)


def test_3_2_1_1_0_counts_only_repositories_holding_a_good_snapshot() -> None:
    plan = make_plan()
    obs = observed(plan)
    obs.repositories["cloud"] = RepositoryState("cloud")
    fails = [f for f in rule_3_2_1_1_0(plan, obs) if f.severity == "fail"]
    assert fails and "planned but holding no good snapshot: cloud" in fails[0].evidence
    assert "run `sauvegarde run`" in fails[0].fix


def test_3_2_1_1_0_zero_errors_part() -> None:
    plan = make_plan()
    assert any("found 3 error(s)" in f.message for f in rule_3_2_1_1_0(plan, observed(plan, errors=3)))
    never = rule_3_2_1_1_0(plan, observed(plan, checked=False))
    assert "warn" in _severities(never) and "fail" not in _severities(never)
    obs = observed(plan)
    obs.assets["data"].drills = [DrillFact(NOW, "nas", 10, 100, ok=False)]  # too slow for the RTO: not an error
    assert _severities(rule_3_2_1_1_0(plan, obs)) == ["ok"]
    obs.assets["data"].drills = [DrillFact(NOW, "nas", 10, 100, ok=False, errors=2)]
    assert any(f.message == "the latest restore drill found 2 error(s)" for f in rule_3_2_1_1_0(plan, obs))


def test_rpo_pass_and_fail() -> None:
    plan = make_plan()
    assert _severities(rule_rpo(plan, observed(plan, age=timedelta(hours=20)))) == ["ok", "ok"]
    late = rule_rpo(plan, observed(plan, age=timedelta(days=2)))
    assert _severities(late) == ["fail", "fail"]
    assert "2d old" in late[0].evidence


def test_rpo_fails_without_snapshot_or_when_unreadable() -> None:
    plan = make_plan()
    obs = observed(plan)
    obs.repositories["nas"] = RepositoryState("nas")
    obs.repositories["cloud"] = RepositoryState("cloud", reachable=False, error="403 Forbidden")
    findings = rule_rpo(plan, obs)
    assert _severities(findings) == ["fail", "fail"]
    assert "no good snapshot" in findings[0].message
    assert findings[1].evidence == "403 Forbidden"


def test_rpo_ignores_snapshots_with_unreadable_files() -> None:
    from sauvegarde.plan.observed import SnapshotFact

    plan = make_plan(["nas"])
    obs = observed(plan, age=timedelta(days=3))
    obs.repositories["nas"].snapshots["data"].append(SnapshotFact(NOW - timedelta(hours=1), good=False))
    assert _severities(rule_rpo(plan, obs)) == ["fail"]


def test_schedule_pass_warn_fail() -> None:
    plan = make_plan(rpo="1d", schedule="daily 02:00")
    obs = observed(plan)
    assert _severities(rule_schedule(plan, obs)) == ["ok"]
    obs.assets["data"].last_backup_duration_s = 600
    assert _severities(rule_schedule(plan, obs)) == ["warn"]
    weekly = make_plan(rpo="1d", schedule="weekly sun 03:00")
    fail = rule_schedule(weekly, observed(weekly))
    assert _severities(fail) == ["fail"] and "up to 7d between runs" in fail[0].evidence


def test_schedule_cron_with_gap_over_the_weekend() -> None:
    plan = make_plan(rpo="1d", schedule="0 9-17 * * 1-5")
    assert _severities(rule_schedule(plan, observed(plan))) == ["fail"]


def test_rto_info_without_drill_then_measured() -> None:
    plan = make_plan(rto="1h")
    obs = observed(plan)
    assert [(f.severity, f.message.startswith("no drill yet")) for f in rule_rto(plan, obs)] == [("info", True)]
    obs.assets["data"].drills = [DrillFact(NOW, "nas", duration_s=10, bytes=1_000_000, ok=True)]  # 100 kB/s
    assert _severities(rule_rto(plan, obs)) == ["ok"]  # 10 MB at 100 kB/s: 100 s, within the hour
    obs.assets["data"].drills = [DrillFact(NOW, "nas", duration_s=1, bytes=1, ok=True)]  # 1 B/s: far too slow
    assert _severities(rule_rto(plan, obs)) == ["fail"]
    obs.assets["data"].drills = [DrillFact(NOW, "nas", duration_s=1, bytes=10_000_000, ok=True)]
    assert _severities(rule_rto(plan, obs)) == ["ok"]


def test_key_escrow_pass_and_fail() -> None:
    with_escrow = make_plan()
    assert _severities(rule_key_escrow(with_escrow, observed(with_escrow))) == ["ok", "ok"]
    without = make_plan(escrow=False)
    findings = rule_key_escrow(without, observed(without))
    assert _severities(findings) == ["fail", "fail"]
    assert "sauvegarde key export --repo /mnt/nas/repo" in findings[0].fix


def test_same_disk_pass_and_fail() -> None:
    plan = make_plan(["local", "cloud"])
    same = observed(plan)
    same.repositories["local"].device = 1  # the asset's /data is on device 1
    findings = rule_same_disk(plan, same)
    assert _severities(findings) == ["fail"] and "share device 1" in findings[0].evidence
    other = observed(plan)
    other.repositories["local"].device = 2
    assert _severities(rule_same_disk(plan, other)) == ["ok"]


def test_same_disk_warns_when_offsite_is_a_local_path() -> None:
    plan = make_plan(["nas"])
    plan.repositories["nas"].__dict__["failure_domain"] = "off-site"
    obs = observed(plan, device=7)
    assert _severities(rule_same_disk(plan, obs)) == ["warn"]


def test_retention_pass_and_fail() -> None:
    long = make_plan(retention={"keep_daily": 7, "keep_weekly": 5})
    assert _severities(rule_retention(long, observed(long))) == ["ok"]
    short = make_plan(retention={"keep_daily": 7, "keep_last": 3})
    findings = rule_retention(short, observed(short))
    assert _severities(findings) == ["fail"] and "7d" in findings[0].evidence
    within = make_plan(retention={"keep_within": "1m"})
    assert _severities(rule_retention(within, observed(within))) == ["ok"]
    unlimited = make_plan(retention={"keep_last": -1})
    assert "unlimited" in rule_retention(unlimited, observed(unlimited))[0].evidence


def test_evaluate_sorts_most_severe_first() -> None:
    plan = make_plan(["local"], escrow=False)
    findings = evaluate(plan, observed(plan))
    assert worst(findings) == "fail"
    order = ["fail", "warn", "info", "ok"]
    assert [order.index(f.severity) for f in findings] == sorted(order.index(f.severity) for f in findings)


def _lock_findings(age: timedelta, upkeep: timedelta | None, days: int = 30) -> list:  # type: ignore[type-arg]
    plan = make_plan()
    obs = observed(plan, age=age)
    obs.repositories["cloud"].immutable_days = days
    if upkeep is not None:
        obs.repositories["cloud"].last_upkeep = NOW - upkeep
    return rule_object_lock(plan, obs)


def test_object_lock_upkeep_keeps_protection() -> None:
    (ok,) = _lock_findings(timedelta(days=200), upkeep=timedelta(days=6))  # weekly prune, 30 days: never lapses
    assert (ok.severity, ok.subject) == ("ok", "repository cloud")
    assert "held for 9d" in ok.message and "last extended by prune 6d ago" in ok.evidence


def test_object_lock_lapse_approaching_then_past() -> None:
    (warn,) = _lock_findings(timedelta(days=200), upkeep=timedelta(days=10))  # lapses at upkeep + 15 days
    assert warn.severity == "warn" and "lapses in 5d" in warn.message
    assert "retention extend --repo s3://s3.example/bucket/repo" in warn.fix and "15d" in warn.fix
    (fail,) = _lock_findings(timedelta(days=200), upkeep=timedelta(days=20))
    assert fail.severity == "fail" and "may have lapsed 5d ago" in fail.message


def test_object_lock_never_extended_counts_from_the_oldest_snapshot() -> None:
    assert _severities(_lock_findings(timedelta(days=3), upkeep=None)) == ["ok"]
    assert _severities(_lock_findings(timedelta(days=25), upkeep=None)) == ["warn"]
    (fail,) = _lock_findings(timedelta(days=31), upkeep=None)
    assert fail.severity == "fail" and "never extended; oldest snapshot 31d old" in fail.evidence


def test_object_lock_only_for_immutable_repositories() -> None:
    plan = make_plan()
    assert rule_object_lock(plan, observed(plan, age=timedelta(days=400))) == []  # immutable_days not observed


def test_no_finding_shows_a_password_from_a_repository_url() -> None:
    plan = make_plan(escrow=False)
    repos = dict(plan.repositories)
    repos["cloud"] = repos["cloud"].model_copy(update={"url": "rest:https://alice:s3cret-pw@backup.example:8000/a/r"})
    plan = plan.model_copy(update={"repositories": repos})
    obs = observed(plan, age=timedelta(days=60), checked=False, immutable_days=30)
    findings = evaluate(plan, obs)
    assert {f.rule for f in findings} >= {"key-escrow", "object-lock", "3-2-1-1-0"}
    for f in findings:
        assert "s3cret-pw" not in f"{f.message} {f.evidence} {f.fix}", f
    assert any("--repo rest:https://alice@backup.example:8000/a/r" in f.fix for f in findings)
