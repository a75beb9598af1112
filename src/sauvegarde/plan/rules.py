"""Compliance rules: pure functions from (plan, observed state) to findings with severity, evidence and a fix.

Severities: ``fail`` (the plan is not met; ``plan check`` exits 1), ``warn`` (at risk), ``info`` (worth knowing,
such as an RTO not yet measured) and ``ok`` (the rule holds; shown so the evidence is on record).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sauvegarde.plan.model import Asset, Plan, format_duration
from sauvegarde.plan.observed import DrillFact, Observation
from sauvegarde.util.units import human_bytes
from sauvegarde.util.urls import redact_url, url_without_password

SEVERITIES = ("fail", "warn", "info", "ok")
ORIGINAL = ("disk", "same-host")  # the data itself: a disk in the protected host
DRILL_GRACE = timedelta(days=1)  # a scheduled drill may run this late (daemon asleep, machine off) before a warning


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    subject: str  # "asset documents", "repository offsite", "asset documents in repository local"
    message: str
    evidence: str = ""
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _age(d: timedelta) -> str:
    return format_duration(timedelta(seconds=max(0, int(d.total_seconds()) // 60 * 60))) if d >= timedelta(0) else "0s"


# ---- 3-2-1-1-0 ------------------------------------------------------------------------------------------


def rule_3_2_1_1_0(plan: Plan, obs: Observation) -> list[Finding]:
    """Per asset: 3 copies counting the original, on 2 media or failure domains, 1 off-site, 1 immutable or offline,
    0 errors in the latest check and drill. Only repositories holding a good snapshot of the asset count."""
    out = []
    for name, asset in plan.assets.items():
        subject = f"asset {name}"
        holding = [r for r in asset.repositories if obs.repository(r).newest_good(name) is not None]
        empty = [r for r in asset.repositories if r not in holding]
        note = f"; planned but holding no good snapshot: {', '.join(empty)}" if empty else ""
        held = f"copies in {', '.join(holding) or 'no repository'}{note}"
        problems: list[Finding] = []
        copies = 1 + len(holding)
        if copies < 3:
            problems.append(
                Finding(
                    "3-2-1-1-0",
                    "fail",
                    subject,
                    f"{copies} cop{'y' if copies == 1 else 'ies'} counting the original; 3 are needed",
                    f"the original on this host, {held}",
                    "add repositories to the asset (another disk or NAS, and one off-site or in the cloud)"
                    if len(asset.repositories) + 1 < 3
                    else "run `sauvegarde run` so every planned repository receives a copy",
                )
            )
        repos = [plan.repositories[r] for r in holding]
        media = {ORIGINAL[0], *(r.medium for r in repos)}
        domains = {ORIGINAL[1], *(r.failure_domain for r in repos)}
        if len(media) < 2 and len(domains) < 2:
            problems.append(
                Finding(
                    "3-2-1-1-0",
                    "fail",
                    subject,
                    "every copy is on the same kind of medium in the same failure domain as the original",
                    f"media {sorted(media)}, failure domains {sorted(domains)}",
                    "keep a copy on another medium (NAS, removable disk, tape, object storage) or in another place",
                )
            )
        if not any(r.failure_domain in ("off-site", "cloud") for r in repos):
            problems.append(
                Finding(
                    "3-2-1-1-0",
                    "fail",
                    subject,
                    "no copy off-site: a fire, flood or theft at the site takes every copy",
                    f"failure domains of the copies: {sorted({r.failure_domain for r in repos}) or 'none'}",
                    "add an off-site or cloud repository (S3, SFTP to another site) to the asset's repositories",
                )
            )
        if not any(r.immutable or r.offline for r in repos):
            problems.append(
                Finding(
                    "3-2-1-1-0",
                    "fail",
                    subject,
                    "no immutable or offline copy: ransomware holding this host's credentials can delete every copy",
                    "no repository holding a copy is marked immutable or offline",
                    "add an S3 repository created with `init --immutable-days N` (immutable = true), or rotate an "
                    "offline disk (offline = true)",
                )
            )
        for r in asset.repositories:
            state = obs.repository(r)
            if state.reachable and state.last_check is None:
                problems.append(
                    Finding(
                        "3-2-1-1-0",
                        "warn",
                        subject,
                        f"repository {r} has never been checked",
                        "no check recorded in the state database",
                        "run `sauvegarde run` (it checks when due), or `check` on "
                        f"{url_without_password(plan.repositories[r].url)}",
                    )
                )
            elif state.last_check is not None and state.last_check.errors:
                problems.append(
                    Finding(
                        "3-2-1-1-0",
                        "fail",
                        subject,
                        f"the latest check of repository {r} found {state.last_check.errors} error(s)",
                        f"check of {state.last_check.time:%Y-%m-%d %H:%M}",
                        "run `sauvegarde check` for details, then `repair index` / `repair snapshots`",
                    )
                )
        drills = obs.asset(name).drills
        if drills and drills[-1].errors:
            last = drills[-1]
            problems.append(
                Finding(
                    "3-2-1-1-0",
                    "fail",
                    subject,
                    f"the latest restore drill found {last.errors} error(s)",
                    f"drill of {last.time:%Y-%m-%d %H:%M} from {last.repository}"
                    + (f": {last.reasons}" if last.reasons else ""),
                    f"run `sauvegarde drill --asset {name} --repo {last.repository}` for the files, then `check "
                    "--read-data` and `repair` that repository",
                )
            )
        if not problems:
            problems.append(
                Finding("3-2-1-1-0", "ok", subject, f"{copies} copies, off-site and immutable/offline ones", held)
            )
        out.extend(problems)
    return out


# ---- RPO and schedule -----------------------------------------------------------------------------------


def rule_rpo(plan: Plan, obs: Observation) -> list[Finding]:
    """Per asset and repository: the newest good snapshot must be younger than the asset's RPO."""
    out = []
    for name, asset in plan.assets.items():
        for r in asset.repositories:
            state = obs.repository(r)
            subject = f"asset {name} in repository {r}"
            if not state.reachable:
                out.append(
                    Finding(
                        "rpo",
                        "fail",
                        subject,
                        "repository cannot be read, so the RPO cannot be shown to hold",
                        state.error,
                        "check the repository's URL, credentials and password source in the plan",
                    )
                )
                continue
            newest = state.newest_good(name)
            if newest is None:
                out.append(
                    Finding(
                        "rpo",
                        "fail",
                        subject,
                        f"no good snapshot; the RPO is {format_duration(asset.rpo)}",
                        "no snapshot without read errors tagged for this asset",
                        "run `sauvegarde run`",
                    )
                )
                continue
            age = obs.now - newest.time
            evidence = f"newest good snapshot {newest.time:%Y-%m-%d %H:%M}, {_age(age)} old"
            if age > asset.rpo:
                out.append(
                    Finding(
                        "rpo",
                        "fail",
                        subject,
                        f"newest good snapshot is older than the RPO of {format_duration(asset.rpo)}",
                        evidence,
                        "see `sauvegarde status` and the state database for failing steps; is the daemon running?",
                    )
                )
            else:
                out.append(Finding("rpo", "ok", subject, f"within the RPO of {format_duration(asset.rpo)}", evidence))
    return out


def rule_schedule(plan: Plan, obs: Observation) -> list[Finding]:
    """Per asset: the longest gap between scheduled runs (plus the last backup's duration) must fit in the RPO."""
    out = []
    for name, asset in plan.assets.items():
        gap = asset.schedule.longest_gap(obs.now.astimezone(plan.tz()))
        duration = obs.asset(name).last_backup_duration_s
        worst = gap + timedelta(seconds=duration or 0)
        evidence = f"schedule {asset.schedule}: up to {format_duration(gap)} between runs" + (
            f", last backup took {format_duration(timedelta(seconds=int(duration)))}" if duration else ""
        )
        subject = f"asset {name}"
        if gap > asset.rpo:
            out.append(
                Finding(
                    "schedule",
                    "fail",
                    subject,
                    f"the schedule cannot meet the RPO of {format_duration(asset.rpo)}",
                    evidence,
                    "schedule backups more often than the RPO, or agree a longer RPO",
                )
            )
        elif worst > asset.rpo:
            out.append(
                Finding(
                    "schedule",
                    "warn",
                    subject,
                    f"with the backup's duration the schedule only just misses the RPO of {format_duration(asset.rpo)}",
                    evidence,
                    "schedule backups a little more often",
                )
            )
        else:
            out.append(
                Finding("schedule", "ok", subject, f"can meet the RPO of {format_duration(asset.rpo)}", evidence)
            )
    return out


# ---- RTO ------------------------------------------------------------------------------------------------


def asset_size(asset_name: str, plan: Plan, obs: Observation) -> int:
    sizes = [s.size for r in plan.assets[asset_name].repositories for s in obs.repository(r).good_snapshots(asset_name)]
    return sizes[-1] if sizes else 0


def drill_estimate(name: str, plan: Plan, obs: Observation, drill: DrillFact) -> timedelta | None:
    """The drill's extrapolated full restore time; for drills recorded without one, its rate times the asset."""
    if drill.estimated_full_s is not None:
        return timedelta(seconds=drill.estimated_full_s)
    if drill.duration_s <= 0 or drill.bytes <= 0:
        return None
    size = asset_size(name, plan, obs) or drill.bytes
    return timedelta(seconds=size * drill.duration_s / drill.bytes)


def _seconds(d: timedelta) -> str:
    return f"{d.total_seconds():.1f}s" if d < timedelta(minutes=1) else _age(d)


def _drill_evidence(d: DrillFact, estimate: timedelta | None) -> str:
    share = "full" if d.sample >= 1 else f"{d.sample:.0%} sample"
    rate = f", {human_bytes(int(d.throughput))}/s" if d.throughput else ""
    ttfb = f", first byte after {d.ttfb_s:.2f}s" if d.ttfb_s is not None else ""
    about = f"; full restore about {_seconds(estimate)}" if estimate is not None else ""
    errors = f", {d.errors} error(s)" if d.errors else ""
    return (
        f"drill of {d.time:%Y-%m-%d %H:%M} from {d.repository} ({share}): {human_bytes(d.bytes)} in "
        f"{d.duration_s:.2f}s{rate}{ttfb}{errors}{about}"
    )


def rule_rto(plan: Plan, obs: Observation) -> list[Finding]:
    """Per asset: the latest drill's extrapolated full restore time against the RTO (and its errors); the plan's
    drill schedules must be kept (a drill more than a day overdue: warn)."""
    out = []
    for name, asset in plan.assets.items():
        subject = f"asset {name}"
        drills = obs.asset(name).drills
        rto = format_duration(asset.rto)
        if not drills:
            out.append(
                Finding(
                    "rto",
                    "info",
                    subject,
                    f"no drill yet: the RTO of {rto} is a promise, not a measurement",
                    "no restore drill recorded",
                    f"run `sauvegarde drill --asset {name}`, and declare a drill for this asset in the plan "
                    "([[drills]]) so `run` and the daemon repeat it",
                )
            )
            continue
        last = drills[-1]
        estimate = drill_estimate(name, plan, obs, last)
        evidence = _drill_evidence(last, estimate)
        if last.errors:
            out.append(
                Finding(
                    "rto",
                    "fail",
                    subject,
                    f"the latest restore drill found {last.errors} error(s): the RTO of {rto} is not shown to hold",
                    evidence + (f"; {last.reasons}" if last.reasons else ""),
                    f"run `sauvegarde drill --asset {name} --repo {last.repository}` to see the files, then "
                    "`check --read-data` and `repair` that repository",
                )
            )
        elif estimate is None:
            out.append(Finding("rto", "info", subject, "the latest drill restored nothing to measure", evidence, ""))
        elif estimate > asset.rto:
            out.append(
                Finding(
                    "rto",
                    "fail",
                    subject,
                    f"a full restore would take longer than the RTO of {rto}",
                    evidence,
                    "restore from a faster repository (local copy first), or agree a longer RTO",
                )
            )
        else:
            out.append(Finding("rto", "ok", subject, f"restore fits the RTO of {rto}", evidence))
        out.extend(_overdue_drills(plan, obs, name))
    return out


def _overdue_drills(plan: Plan, obs: Observation, name: str) -> list[Finding]:
    """A warning per declared drill of the asset whose schedule fired (over a day ago) with no drill since."""
    out = []
    for entry in plan.drills:
        if entry.asset != name:
            continue
        fired = entry.schedule.previous_at_or_before(obs.now - DRILL_GRACE, plan.tz())
        done = [d for d in obs.asset(name).drills if d.repository == entry.repository]
        if done and done[-1].time >= fired:
            continue
        last = f"last drill from {entry.repository}: {done[-1].time:%Y-%m-%d %H:%M}" if done else "never drilled"
        out.append(
            Finding(
                "rto",
                "warn",
                f"asset {name}",
                f"the drill from {entry.repository} is overdue (schedule {entry.schedule})",
                f"due since {fired:%Y-%m-%d %H:%M}; {last}",
                f"run `sauvegarde drill --asset {name} --repo {entry.repository}`, or let `run`/the daemon do it",
            )
        )
    return out


# ---- keys, placement, retention -------------------------------------------------------------------------


def rule_key_escrow(plan: Plan, obs: Observation) -> list[Finding]:
    """Per repository: its data is encrypted, so a copy of the key must be kept away from the protected host."""
    out = []
    for name, repo in plan.repositories.items():
        subject = f"repository {name}"
        if not repo.key_escrow:
            out.append(
                Finding(
                    "key-escrow",
                    "fail",
                    subject,
                    "no recovery key kept away from this host: if the host is lost, the encrypted backups are too",
                    f"key_escrow not set; the password comes from "
                    f"{repo.password_file or repo.password_command or '$' + (repo.password_env or '')}",
                    f"run `sauvegarde key export --repo {url_without_password(repo.url)}` (with the repository's "
                    "password), print the "
                    "sheet, keep it in a safe away from this site, and note where in key_escrow",
                )
            )
        else:
            out.append(Finding("key-escrow", "ok", subject, "encrypted; recovery key in escrow", repo.key_escrow))
    return out


def rule_same_disk(plan: Plan, obs: Observation) -> list[Finding]:
    """Per asset and local repository: a repository on the same disk as the data dies with it."""
    out = []
    for name, asset in plan.assets.items():
        devices = obs.asset(name).devices
        for r in asset.repositories:
            repo, state = plan.repositories[r], obs.repository(r)
            if not repo.is_local:
                continue
            subject = f"asset {name} in repository {r}"
            shared = [p for p, dev in devices.items() if state.device is not None and dev == state.device]
            if shared:
                out.append(
                    Finding(
                        "same-disk",
                        "fail",
                        subject,
                        "the repository is on the same disk as the data it protects",
                        f"{repo.local_path} and {', '.join(shared)} share device {state.device}",
                        "move the repository to another disk, a NAS or off-site; a same-disk copy only protects "
                        "against deleted files",
                    )
                )
            elif repo.failure_domain in ("off-site", "cloud"):
                out.append(
                    Finding(
                        "same-disk",
                        "warn",
                        subject,
                        f"declared {repo.failure_domain} but the repository is a local path",
                        f"url {redact_url(repo.url)}",
                        "make sure the path is a mount of storage in another place, or correct failure_domain",
                    )
                )
            elif state.device is not None and devices:
                out.append(Finding("same-disk", "ok", subject, "on another device than the data", redact_url(repo.url)))
    return out


def retention_history(asset: Asset) -> timedelta:
    """How far back the retention keeps snapshots when backups run on the asset's schedule."""
    p = asset.retention.policy()
    spans = []
    per = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(weeks=1)}
    per |= {"monthly": timedelta(days=30), "yearly": timedelta(days=365)}
    for period, n in p.counts():
        if not n:
            continue
        if n == -1:
            return timedelta.max
        if period == "last":
            gap = asset.schedule.longest_gap(_EPOCH, timedelta(days=8))
            spans.append(gap * n)
        else:
            spans.append(per[period] * n)
    if p.keep_within is not None:
        w = p.keep_within
        spans.append(timedelta(days=365 * w.years + 30 * w.months + w.days, hours=w.hours))
    return max(spans, default=timedelta(0))


def rule_retention(plan: Plan, obs: Observation) -> list[Finding]:
    """Per asset: the retention must reach back at least ``settings.min_history`` (ransomware dwell time)."""
    out = []
    need = plan.settings.min_history
    for name, asset in plan.assets.items():
        history = retention_history(asset)
        subject = f"asset {name}"
        shown = "unlimited" if history == timedelta.max else format_duration(history)
        evidence = f"retention keeps about {shown} of history"
        if history < need:
            out.append(
                Finding(
                    "retention",
                    "fail",
                    subject,
                    f"history shorter than {format_duration(need)}: ransomware that hides longer than that leaves "
                    "only encrypted files in every snapshot",
                    evidence,
                    f"keep daily snapshots for at least {need.days} days (keep_daily = {need.days}) and a few "
                    "weekly and monthly ones",
                )
            )
        else:
            out.append(Finding("retention", "ok", subject, f"history of at least {format_duration(need)}", evidence))
    return out


# ---- Object Lock upkeep ---------------------------------------------------------------------------------

LOCK_WARN_BEFORE = timedelta(days=7)  # warn this long (at most a quarter of the period) before protection may lapse


def rule_object_lock(plan: Plan, obs: Observation) -> list[Finding]:
    """Per immutable repository: retention is extended by prune (or ``retention extend``) to now + N days once less
    than N/2 remain, so after an upkeep at T every object still needed is retained until T + N/2 at least. Without
    an upkeep since, the oldest objects may lose their protection from then on (without any upkeep at all: the
    oldest snapshot's time + N, the config being older still)."""
    out = []
    for name, repo in plan.repositories.items():
        state = obs.repositories.get(name)
        if state is None or not state.reachable or state.immutable_days is None:
            continue
        period = timedelta(days=state.immutable_days)
        subject = f"repository {name}"
        if state.last_upkeep is not None:
            lapse = state.last_upkeep + period / 2
            since = _age(obs.now - state.last_upkeep)
            evidence = f"Object Lock {state.immutable_days} days; retention last extended by prune {since} ago"
        else:
            times = [s.time for snaps in state.snapshots.values() for s in snaps]
            if not times:
                continue
            lapse = min(times) + period
            oldest = _age(obs.now - min(times))
            evidence = (
                f"Object Lock {state.immutable_days} days; retention never extended; oldest snapshot {oldest} old"
            )
        fix = (
            f"run `sauvegarde retention extend --repo {url_without_password(repo.url)}` now, and schedule prune "
            "for this repository "
            f"(repositories.{name}.prune) more often than every {format_duration(period / 2)}"
        )
        if obs.now >= lapse:
            out.append(
                Finding(
                    "object-lock",
                    "fail",
                    subject,
                    f"Object Lock protection of the oldest objects may have lapsed {_age(obs.now - lapse)} ago: "
                    "anyone holding the bucket credentials can delete them",
                    evidence,
                    fix,
                )
            )
        elif obs.now >= lapse - min(LOCK_WARN_BEFORE, period / 4):
            out.append(
                Finding(
                    "object-lock",
                    "warn",
                    subject,
                    f"Object Lock protection of the oldest objects lapses in {_age(lapse - obs.now)} unless "
                    "retention is extended",
                    evidence,
                    fix,
                )
            )
        else:
            out.append(
                Finding(
                    "object-lock",
                    "ok",
                    subject,
                    f"Object Lock retention held for {_age(lapse - obs.now)} at least",
                    evidence,
                )
            )
    return out


RULES: list[Callable[[Plan, Observation], list[Finding]]] = [
    rule_3_2_1_1_0,
    rule_rpo,
    rule_schedule,
    rule_rto,
    rule_key_escrow,
    rule_same_disk,
    rule_retention,
    rule_object_lock,
]


def evaluate(plan: Plan, obs: Observation) -> list[Finding]:
    """Every rule's findings, most severe first (stable within a severity)."""
    findings = [f for rule in RULES for f in rule(plan, obs)]
    return sorted(findings, key=lambda f: SEVERITIES.index(f.severity))


def worst(findings: list[Finding]) -> str:
    return min((f.severity for f in findings), key=SEVERITIES.index, default="ok")


from datetime import UTC, datetime  # noqa: E402

_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
