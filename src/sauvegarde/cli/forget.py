"""``sauvegarde forget``: remove snapshots, named by ID or chosen by a ``--keep-*`` retention policy.

Forgetting deletes snapshot objects only; the data they alone referenced stays until ``prune`` (or ``--prune``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.selection import filter_options, make_filter
from sauvegarde.engine.find import filter_snapshots, find_snapshot
from sauvegarde.engine.retention import (
    Decision,
    Duration,
    GroupKey,
    RetentionPolicy,
    apply_policy,
    group_snapshots,
    parse_group_by,
)
from sauvegarde.errors import UsageError
from sauvegarde.guard.protect import protect_decisions, protected_ids
from sauvegarde.repository import Repository, Snapshot
from sauvegarde.util.timezone import local_timezone


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> Duration | None:
    if value is None:
        return None
    try:
        return Duration.parse(value)
    except UsageError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _count(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """A count of snapshots or periods: 0 and up, or -1 (or ``unlimited``) for no limit."""
    if value is None:
        return None
    if value.strip().lower() == "unlimited":
        return -1
    try:
        n = int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number (or -1 / unlimited)", ctx, param) from None
    if n < -1:
        raise click.BadParameter(f"{n}: use -1 (or unlimited) for no limit, or a count from 0 up", ctx, param)
    return n


DEFAULT_MAX_UNUSED = 0.05  # prune's --max-unused default


def _within_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for period in reversed(("hourly", "daily", "weekly", "monthly", "yearly")):
        f = click.option(
            f"--keep-within-{period}",
            f"within_{period}",
            callback=_duration,
            metavar="DURATION",
            help=f"Keep one {period} snapshot per period within DURATION of the newest snapshot.",
        )(f)
    return f


@click.command("forget")
@click.argument("snapshot_ids", nargs=-1, metavar="[SNAPSHOT_ID]...")
@click.option("-l", "--keep-last", callback=_count, metavar="N", help="Keep the N newest snapshots (-1: all).")
@click.option("--keep-hourly", callback=_count, metavar="N", help="Keep the newest snapshot of N hours.")
@click.option("-d", "--keep-daily", callback=_count, metavar="N", help="Keep the newest snapshot of N days.")
@click.option("-w", "--keep-weekly", callback=_count, metavar="N", help="Keep the newest snapshot of N ISO weeks.")
@click.option("-m", "--keep-monthly", callback=_count, metavar="N", help="Keep the newest snapshot of N months.")
@click.option("-y", "--keep-yearly", callback=_count, metavar="N", help="Keep the newest snapshot of N years.")
@click.option(
    "--keep-within",
    callback=_duration,
    metavar="DURATION",
    help="Keep every snapshot within DURATION (e.g. 1y2m3d4h) of the newest snapshot.",
)
@_within_options
@click.option(
    "--keep-tag",
    "keep_tags",
    multiple=True,
    metavar="TAG[,TAG]",
    help="Keep snapshots with all these tags (repeatable: any of the lists).",
)
@click.option(
    "-g",
    "--group-by",
    default="host,paths",
    show_default=True,
    metavar="FIELDS",
    help="Apply the policy to each group of snapshots sharing these fields (host, paths, tags; '' for one group).",
)
@filter_options
@click.option("-n", "--dry-run", is_flag=True, help="Only show what would be removed.")
@click.option("--prune", is_flag=True, help="Run prune afterwards, to free the space of the removed snapshots.")
@click.option(
    "--force",
    is_flag=True,
    help="Also remove snapshots the ransomware guard protects (suspects and the last clean ones before them).",
)
@pass_app
def command(
    app: AppContext,
    snapshot_ids: tuple[str, ...],
    keep_last: int | None,
    keep_hourly: int | None,
    keep_daily: int | None,
    keep_weekly: int | None,
    keep_monthly: int | None,
    keep_yearly: int | None,
    keep_within: Duration | None,
    within_hourly: Duration | None,
    within_daily: Duration | None,
    within_weekly: Duration | None,
    within_monthly: Duration | None,
    within_yearly: Duration | None,
    keep_tags: tuple[str, ...],
    group_by: str,
    hosts: tuple[str, ...],
    paths: tuple[str, ...],
    tags: tuple[str, ...],
    dry_run: bool,
    prune: bool,
    force: bool,
) -> None:
    """Remove the snapshots SNAPSHOT_ID..., or those a --keep-* policy does not keep.

    With a policy, snapshots are grouped (--group-by) and the policy applies to each group: for each rule, the
    newest snapshot of each hour, day, ISO week, month or year (local time) counts, up to N periods. An empty policy
    is refused. Only snapshot objects are removed; --prune then frees the data no snapshot uses any more.

    While a group holds a snapshot the ransomware guard flagged (and nobody released with `guard release`), the
    policy removes nothing of that group; by ID, flagged snapshots and the last clean ones before them are refused.
    --force overrides both.
    """
    policy = RetentionPolicy(
        keep_last=keep_last,
        keep_hourly=keep_hourly,
        keep_daily=keep_daily,
        keep_weekly=keep_weekly,
        keep_monthly=keep_monthly,
        keep_yearly=keep_yearly,
        keep_within=keep_within,
        keep_within_hourly=within_hourly,
        keep_within_daily=within_daily,
        keep_within_weekly=within_weekly,
        keep_within_monthly=within_monthly,
        keep_within_yearly=within_yearly,
        keep_tags=keep_tags,
    )
    if snapshot_ids and not policy.is_empty:
        raise UsageError("give snapshot IDs or --keep-* options, not both")
    if not snapshot_ids:
        policy.validate()  # refuse an empty policy before touching the repository
    fields = parse_group_by(group_by)
    # --prune needs the index (to see which blobs snapshots use); plain forget only touches snapshot objects
    repo = app.open_repository(lock="shared" if dry_run else "exclusive", load_index=prune and not dry_run)
    flt = make_filter(hosts, paths, tags)
    snaps = repo.snapshots()
    if snapshot_ids:
        chosen: dict[str, Snapshot] = {}
        for sel in snapshot_ids:
            s = find_snapshot(repo, sel, flt, snaps)
            chosen[s.id] = s
        if not force:
            _refuse_protected(list(chosen.values()), snaps, fields)
        reports = [_GroupReport(None, [], list(chosen.values()))]
    else:
        app.out(f"Applying policy: {describe_policy(policy)}")
        tz = local_timezone()
        reports = []
        for group in group_snapshots(filter_snapshots(snaps, flt), fields):
            decisions = apply_policy(group.snapshots, policy, tz)
            if not force:
                decisions = protect_decisions(decisions)
            keep = [d for d in decisions if d.keep]
            reports.append(_GroupReport(group.key, keep, [d.snapshot for d in decisions if not d.keep]))

    if not app.json:
        _print_reports(app, reports, by_id=bool(snapshot_ids))
    removed = _remove(app, repo, reports, dry_run)
    if app.json:
        app.emit_json([r.as_json() for r in reports])
    elif dry_run:
        app.out(f"would remove {removed} snapshot(s) (dry run: nothing was removed)")
    else:
        app.out(f"removed {removed} snapshot(s)")
    if prune:
        _prune(app, repo, dry_run)


def _refuse_protected(chosen: list[Snapshot], snaps: list[Snapshot], fields: frozenset[str]) -> None:
    protected = protected_ids(snaps, fields)
    refused = [f"{s.short_id} ({protected[s.id]})" for s in chosen if s.id in protected]
    if refused:
        raise UsageError(
            "refusing to remove snapshots the ransomware guard protects: "
            + "; ".join(refused)
            + " (review with `guard show`, then `guard release`, or use --force)"
        )


def _prune(app: AppContext, repo: Repository, dry_run: bool) -> None:
    """``prune`` after forgetting, with its defaults; imported only when --prune asks for it."""
    if dry_run:
        app.warn("dry run: prune not simulated (what it frees depends on the snapshots removed)")
        return
    from sauvegarde.cli.prune import prune_repository

    app.out()
    prune_repository(app, repo, DEFAULT_MAX_UNUSED, dry_run=False)


class _GroupReport:
    def __init__(self, key: GroupKey | None, keep: list[Decision], remove: list[Snapshot]) -> None:
        self.key = key
        self.keep = keep
        self.remove = remove

    def as_json(self) -> dict[str, object]:
        return {
            "group": self.key.as_dict() if self.key is not None else None,
            "keep": [_snapshot_json(d.snapshot) | {"reasons": list(d.reasons)} for d in self.keep],
            "remove": [_snapshot_json(s) for s in self.remove],
        }


def _snapshot_json(s: Snapshot) -> dict[str, object]:
    return {
        "id": s.id,
        "short_id": s.short_id,
        "time": s.time,
        "hostname": s.hostname,
        "paths": s.paths,
        "tags": s.tags,
    }


def _remove(app: AppContext, repo: Repository, reports: list[_GroupReport], dry_run: bool) -> int:
    count = 0
    for report in reports:
        for s in report.remove:
            if not dry_run:
                repo.delete_snapshot(s.id)
                if app.verbose:
                    app.out(f"removed snapshot {s.short_id}")
            count += 1
    return count


def describe_policy(p: RetentionPolicy) -> str:
    """``keep 2 last snapshots, 7 daily snapshots, all within 1y, tagged prod``, in the words of the options."""
    items = [f"{'all' if n == -1 else n} {name} snapshots" for name, n in p.counts() if n]
    if p.keep_within is not None and not p.keep_within.is_zero:
        items.append(f"all within {p.keep_within}")
    items += [f"{name} within {d}" for name, d in p.withins() if d is not None and not d.is_zero]
    items += [f"tagged {t}" for t in p.keep_tags if t]
    return "keep " + ", ".join(items)


def _print_reports(app: AppContext, reports: list[_GroupReport], by_id: bool) -> None:
    for report in reports:
        if report.key is not None:
            app.out()
            app.out(f"snapshots for {report.key.describe()}:")
        if not by_id:
            app.out(f"keep {len(report.keep)} snapshot(s):")
            _table(app, [(d.snapshot, ", ".join(d.reasons)) for d in report.keep], reasons=True)
        if report.remove:
            app.out(f"remove {len(report.remove)} snapshot(s):")
            _table(app, [(s, "") for s in report.remove], reasons=False)


def _table(app: AppContext, entries: list[tuple[Snapshot, str]], reasons: bool) -> None:
    if not entries:
        return
    header = ["ID", "Time", "Host", "Tags", *(["Reasons"] if reasons else []), "Paths"]
    rows = [header]
    for s, why in entries:
        row = [s.short_id, s.datetime.strftime("%Y-%m-%d %H:%M:%S"), s.hostname, ",".join(s.tags)]
        rows.append([*row, *([why] if reasons else []), ", ".join(s.paths)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for i, r in enumerate(rows):
        app.out("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            app.out("-" * (sum(widths) + 2 * (len(widths) - 1)))
    app.out()
