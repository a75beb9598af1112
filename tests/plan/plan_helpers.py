"""Building plans and observed states by hand for the rule, status and scheduler tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sauvegarde.plan.model import Plan
from sauvegarde.plan.observed import AssetState, CheckFact, Observation, RepositoryState, SnapshotFact

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)

REPOS: dict[str, dict[str, Any]] = {
    "local": {"url": "/srv/repo", "password_env": "PW", "failure_domain": "same-host", "medium": "disk"},
    "nas": {"url": "/mnt/nas/repo", "password_env": "PW", "failure_domain": "same-site", "medium": "nas"},
    "cloud": {
        "url": "s3://s3.example/bucket/repo",
        "password_env": "PW",
        "failure_domain": "cloud",
        "medium": "object-storage",
        "immutable": True,
    },
}


def make_plan(repos: list[str] | None = None, escrow: bool = True, **asset: Any) -> Plan:
    names = repos or ["nas", "cloud"]
    fields: dict[str, Any] = {
        "paths": ["/data"],
        "criticality": "high",
        "rpo": "1d",
        "rto": "4h",
        "schedule": "daily 02:00",
        "retention": {"keep_daily": 30, "keep_monthly": 6},
        "repositories": names,
    }
    fields.update(asset)
    repositories = {n: dict(REPOS[n]) | ({"key_escrow": "safe"} if escrow else {}) for n in names}
    return Plan.model_validate(
        {"organisation": {"name": "T"}, "repositories": repositories, "assets": {"data": fields}}
    )


def observed(
    plan: Plan, age: timedelta = timedelta(hours=3), checked: bool = True, errors: int = 0, **repo_fields: Any
) -> Observation:
    obs = Observation(now=NOW)
    for name in plan.repositories:
        state = RepositoryState(name, snapshots={"data": [SnapshotFact(NOW - age, size=10_000_000)]})
        if checked:
            state.last_check = CheckFact(NOW - timedelta(hours=1), errors)
        for k, v in repo_fields.items():
            setattr(state, k, v)
        obs.repositories[name] = state
    obs.assets["data"] = AssetState("data", devices={"/data": 1})
    return obs
