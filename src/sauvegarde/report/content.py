"""What the disaster-recovery document says, as plain data: organisation and call list, inventory, where every copy
lives, schedules and retention, keys, compliance findings, drills and guard verdicts.

Gathered from the plan, one observation of the repositories (:func:`sauvegarde.plan.observe.observe`) and the
state database. Nothing secret is read: a password source is described by where it is (a file's path, a command, a
variable's name), never by its content, and URLs lose any password they carry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from sauvegarde.errors import SauvegardeError
from sauvegarde.plan.access import password_file_path
from sauvegarde.plan.model import Asset, Plan, RepositoryPlan, format_duration
from sauvegarde.plan.observe import drill_fact
from sauvegarde.plan.observed import Observation
from sauvegarde.plan.rules import Finding, asset_size, drill_estimate, retention_history
from sauvegarde.plan.status import colour
from sauvegarde.state.db import StateDB
from sauvegarde.state.peers import guard_verdicts
from sauvegarde.storage import open_storage
from sauvegarde.util.units import human_bytes
from sauvegarde.util.urls import redact_url


def password_source(plan: Plan, repo: RepositoryPlan) -> str:
    """Where the repository's password comes from on the protected host, never the password."""
    if repo.password_file:
        return f"file {password_file_path(plan, repo)}"
    if repo.password_command:
        return f"output of the command `{repo.password_command}`"
    return f"environment variable ${repo.password_env}"


def retention_text(asset: Asset) -> str:
    r = asset.retention
    parts = [
        f"{label} {n if n != -1 else 'unlimited'}"
        for label, n in (
            ("last", r.keep_last),
            ("hourly", r.keep_hourly),
            ("daily", r.keep_daily),
            ("weekly", r.keep_weekly),
            ("monthly", r.keep_monthly),
            ("yearly", r.keep_yearly),
        )
        if n
    ]
    if r.keep_within:
        parts.append(f"everything within {r.keep_within}")
    return ", ".join(parts)


def history_text(asset: Asset) -> str:
    h = retention_history(asset)
    return "unlimited" if h == timedelta.max else f"about {format_duration(h)}"


def age_text(d: timedelta) -> str:
    minutes = max(0, int(d.total_seconds()) // 60)
    return format_duration(timedelta(minutes=minutes)) if minutes else "under 1m"


@dataclass(frozen=True)
class Contact:
    order: int
    name: str
    role: str
    phone: str
    email: str
    provider: bool = False


@dataclass(frozen=True)
class Copy:
    """One planned copy of an asset: which repository, how it gets there, how fresh it is."""

    repository: str
    role: str  # "backup" (first repository) or "copy"
    snapshots: int
    newest: str  # time of the newest good snapshot, or "none"
    age: str
    colour: str  # green / amber / red against the RPO


@dataclass(frozen=True)
class AssetRow:
    name: str
    description: str
    kind: str  # "paths" or "command"
    what: list[str]  # the paths, or the command and the name of its output in the snapshot
    exclude: list[str]
    criticality: str
    rpo: str
    rto: str
    size: int
    size_text: str
    schedule: str
    retention: str
    history: str
    copies: list[Copy]
    drills: list[str]  # the plan's drills of this asset, as text


@dataclass(frozen=True)
class RepositoryRow:
    name: str
    url: str
    failure_domain: str
    medium: str
    immutable: bool
    immutable_days: int | None
    offline: bool
    reachable: bool
    error: str
    snapshots: int
    stored: int | None  # bytes the repository occupies, when it could be listed
    stored_text: str
    password_source: str
    key_escrow: str
    check: str
    prune: str
    last_check: str
    assets: list[str]

    @property
    def protection(self) -> str:
        marks = []
        if self.immutable:
            marks.append(f"immutable ({self.immutable_days} days)" if self.immutable_days else "immutable")
        if self.offline:
            marks.append("offline")
        return ", ".join(marks) or "-"


@dataclass(frozen=True)
class DrillRow:
    time: str
    asset: str
    repository: str
    sample: str
    restored: str
    duration: str
    estimate: str
    rto: str
    verdict: str
    reasons: str


@dataclass(frozen=True)
class GuardRow:
    time: str
    asset: str
    repository: str
    snapshot: str
    verdict: str
    message: str
    released: bool


@dataclass
class Content:
    organisation: str
    generated: str
    timezone: str
    plan_path: str
    version: str
    overall: str  # worst severity of the findings
    counts: dict[str, int]
    contacts: list[Contact]
    assets: list[AssetRow]
    repositories: list[RepositoryRow]
    findings: list[Finding]  # fail, warn, info
    holding: list[Finding]  # the rules that hold, with their evidence
    drills: list[DrillRow]
    guard: list[GuardRow]
    alerts: list[str]  # where alerts go (no secrets: webhook URLs reduced to their host)
    min_history: str


def _when(dt: datetime, tz: tzinfo | None) -> str:
    return f"{dt.astimezone(tz):%Y-%m-%d %H:%M}"


def _seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1:
        return f"{s:.2f}s"
    return f"{s:.1f}s" if s < 60 else format_duration(timedelta(seconds=round(s)))


def contacts(plan: Plan) -> list[Contact]:
    org = plan.organisation
    out = [Contact(i + 1, c.name, c.role, c.phone, c.email) for i, c in enumerate(org.contacts)]
    if org.provider is not None:
        p = org.provider
        out.append(Contact(len(out) + 1, p.name, p.role or "IT provider", p.phone, p.email, provider=True))
    return out


def stored_bytes(url: str) -> int | None:
    """The bytes a repository occupies (every object listed), or None when it cannot be listed."""
    try:
        storage = open_storage(url)
        try:
            return sum(
                o.size for prefix in ("config", "keys/", "data/", "index/", "snapshots/") for o in storage.list(prefix)
            )
        finally:
            storage.close()
    except (SauvegardeError, OSError):
        return None
    except Exception:  # a backend's own error (missing credentials...): the size is unknown, the report goes on
        return None


def asset_rows(plan: Plan, obs: Observation) -> list[AssetRow]:
    tz = plan.tz()
    out = []
    for name, asset in plan.assets.items():
        copies = []
        for i, r in enumerate(asset.repositories):
            state = obs.repository(r)
            newest = state.newest_good(name) if state.reachable else None
            age = obs.now - newest.time if newest else None
            copies.append(
                Copy(
                    r,
                    "backup" if i == 0 else "copy",
                    len(state.snapshots.get(name, [])),
                    _when(newest.time, tz) if newest else ("unreadable" if not state.reachable else "none"),
                    age_text(age) if age is not None else "-",
                    colour(age.total_seconds() if age is not None else None, asset.rpo.total_seconds()),
                )
            )
        if asset.command is not None:
            what = [asset.command, f"saved as /{asset.filename or name}"]
        else:
            what = list(asset.paths or [])
        size = asset_size(name, plan, obs)
        drills = [f"from {d.repository}, {d.schedule}, sample {d.sample}" for d in plan.drills if d.asset == name]
        out.append(
            AssetRow(
                name,
                asset.description,
                "command" if asset.command is not None else "paths",
                what,
                list(asset.exclude),
                asset.criticality,
                format_duration(asset.rpo),
                format_duration(asset.rto),
                size,
                human_bytes(size) if size else "unknown",
                str(asset.schedule),
                retention_text(asset),
                history_text(asset),
                copies,
                drills,
            )
        )
    return out


def repository_rows(plan: Plan, obs: Observation, measure: bool = True) -> list[RepositoryRow]:
    tz = plan.tz()
    out = []
    for name, repo in plan.repositories.items():
        state = obs.repository(name)
        stored = stored_bytes(repo.url) if measure and state.reachable else None
        check = state.last_check
        last_check = (
            f"{_when(check.time, tz)}, {check.errors} error(s)" if check is not None else "never (not recorded)"
        )
        check_when = str(repo.check) if repo.check is not None else "never"
        if repo.check is not None and repo.check_read_data_subset:
            check_when += f", reading {repo.check_read_data_subset} of the data"
        out.append(
            RepositoryRow(
                name,
                redact_url(repo.url),
                repo.failure_domain,
                repo.medium,
                repo.immutable,
                state.immutable_days,
                repo.offline,
                state.reachable,
                redact_url(state.error),
                sum(len(v) for v in state.snapshots.values()),
                stored,
                human_bytes(stored) if stored is not None else "unknown",
                password_source(plan, repo),
                repo.key_escrow or "NOT RECORDED: the key exists only on this host",
                check_when,
                f"{repo.prune}, leaving at most {repo.max_unused:.0%} unused" if repo.prune is not None else "never",
                last_check,
                [a for a, asset in plan.assets.items() if name in asset.repositories],
            )
        )
    return out


def drill_rows(plan: Plan, obs: Observation, db: StateDB, limit: int = 20) -> list[DrillRow]:
    tz = plan.tz()
    rows = []
    for d in db.drills()[-limit:]:
        if d.asset not in plan.assets:
            continue
        estimate = drill_estimate(d.asset, plan, obs, drill_fact(d))
        rto = d.rto_s if d.rto_s is not None else plan.assets[d.asset].rto.total_seconds()
        rows.append(
            DrillRow(
                _when(datetime.fromtimestamp(d.started, tz), tz),
                d.asset,
                d.repository,
                "full" if d.sample >= 1 else f"{d.sample:.0%}",
                f"{d.files} file(s), {human_bytes(d.bytes)}",
                _seconds(d.duration_s),
                _seconds(estimate.total_seconds()) if estimate is not None else "-",
                _seconds(rto),
                "pass" if d.passed else "fail",
                redact_url(d.message),
            )
        )
    return list(reversed(rows))


def guard_rows(plan: Plan, db: StateDB, limit: int = 15) -> list[GuardRow]:
    tz = plan.tz()
    verdicts = guard_verdicts(db)
    alarming = [v for v in verdicts if v.verdict.lower() != "clean"]
    chosen = (alarming or verdicts)[-limit:]
    return [
        GuardRow(
            _when(datetime.fromtimestamp(v.time, tz), tz),
            v.asset,
            v.repository,
            v.snapshot_id[:8],
            v.verdict,
            redact_url(v.message),
            v.released,
        )
        for v in reversed(chosen)
    ]


def alert_channels(plan: Plan) -> list[str]:
    """Where alerts go: email addresses, and each webhook's kind and host (the URL itself can be a credential)."""
    a = plan.alerts
    if a is None:
        return []
    out = [f"email to {addr}" for addr in a.email]
    if a.email:
        smtp = a.smtp
        login = f", login {smtp.username}" if smtp.username else ""
        tls = ", STARTTLS" if smtp.starttls else ""
        out.append(f"mail server {smtp.host}:{smtp.port}{tls}{login}")
    for hook in a.webhook:
        host = re.sub(r"^https?://([^/@]*@)?([^/?#]*).*$", r"\2", hook.url)
        out.append(f"{hook.format} webhook on {host}")
    severities = ", ".join(a.on)
    out.append(f"severities sent: {severities}; the same problem repeated after {format_duration(a.repeat_after)}")
    if a.digest is not None:
        out.append(f"digest: {a.digest}")
    return out
